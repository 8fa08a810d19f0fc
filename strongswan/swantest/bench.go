package swantest

import (
	"context"
	"testing"
	"time"
)

// Baseline is one proposal set the project measures charon with.
type Baseline struct {
	Name string  // sub-benchmark name
	IKE  string  // IKE proposal
	ESP  string  // ESP proposal
	Key  KeyType // certificates with this key type (auth pubkey); "" for the PSK
}

// NegotiationBaselines are the proposal sets of the negotiation benchmark:
// Main Mode with MODP2048 and with Curve25519, then Quick Mode without PFS, so
// that the Diffie-Hellman group of phase 1 is what differs.
var NegotiationBaselines = []Baseline{
	{Name: "modp2048", IKE: "aes128-sha256-modp2048", ESP: "aes128gcm16"},
	{Name: "curve25519", IKE: "aes128-sha256-curve25519", ESP: "aes128gcm16"},
}

// CertNegotiationBaselines are the negotiation benchmark with certificates
// from a throwaway CA: the same Main Mode and Quick Mode as the modp2048
// baseline, authenticated by RSA-2048 and by ECDSA P-256 signatures.
var CertNegotiationBaselines = []Baseline{
	{Name: "rsa2048", IKE: "aes128-sha256-modp2048", ESP: "aes128gcm16", Key: RSA2048},
	{Name: "ecdsa-p256", IKE: "aes128-sha256-modp2048", ESP: "aes128gcm16", Key: ECDSAP256},
}

// ThroughputBaselines are the ESP transforms of the throughput benchmark:
// AES-GCM-128 and AES-CBC-128 with HMAC-SHA1-96.
var ThroughputBaselines = []Baseline{
	{Name: "aes128gcm16", IKE: "aes128-sha256-modp2048", ESP: "aes128gcm16"},
	{Name: "aes128-sha1", IKE: "aes128-sha256-modp2048", ESP: "aes128-sha1"},
}

// BenchNegotiations measures Main Mode plus Quick Mode negotiations between two
// charon gateways, one after another: each operation initiates the CHILD SA
// from A and deletes the IKE SA again. It reports negotiations/s. With
// Baseline.Key the gateways authenticate with certificates of that key type.
func BenchNegotiations(b *testing.B, bl Baseline) {
	cfg := PairConfig{IKEProposal: bl.IKE, ESPProposal: bl.ESP}
	if bl.Key != "" {
		cfg.Certs = GenerateCerts(b, bl.Key)
	}
	p := StartPair(b, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	b.ResetTimer()
	for range b.N {
		if err := p.Negotiate(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "negotiations/s")
}

// tcpChunk is what one benchmark operation sends.
const tcpChunk = 1 << 20

// BenchTCP measures TCP bulk throughput from a host behind gateway A to a host
// behind gateway B, through the charon kernel-libipsec tunnel between them,
// over one connection. It reports Mbit/s (and MB/s through SetBytes).
func BenchTCP(b *testing.B, bl Baseline) {
	p := StartPair(b, PairConfig{IKEProposal: bl.IKE, ESPProposal: bl.ESP, Hosts: true})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := p.A.Charon.Initiate(ctx, ConnName, ChildName); err != nil {
		b.Fatal(err)
	}
	// The responder installs its SAs on Quick Mode's third message; the echo
	// returns only once both directions work.
	if err := UDPEcho(ctx, p.HostA.Netns, p.HostA.Addr, p.HostB.Netns, p.HostB.Addr, []byte("warm up")); err != nil {
		b.Fatal(err)
	}
	s, err := DialTCPStream(ctx, p.HostA.Netns, p.HostB.Netns, p.HostB.Addr)
	if err != nil {
		b.Fatal(err)
	}
	// Let TCP find the path MTU (libipsec's TUN device has 1400) and open its
	// window before the clock starts.
	if err := s.Send(4 * tcpChunk); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(tcpChunk)
	b.ResetTimer()
	if err := s.Send(int64(b.N) * tcpChunk); err != nil {
		b.Fatal(err)
	}
	got, err := s.Close() // returns once the sink has read everything
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	if want := int64(b.N+4) * tcpChunk; got != want {
		b.Fatalf("sink received %d bytes, want %d", got, want)
	}
	b.ReportMetric(float64(b.N)*tcpChunk*8/1e6/b.Elapsed().Seconds(), "Mbit/s")
}

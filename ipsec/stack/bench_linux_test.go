package stack_test

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ipseclab/ipseclab/ipsec/ike"
	"github.com/ipseclab/ipseclab/ipsec/pki"
	"github.com/ipseclab/ipseclab/ipsec/stack"
	"github.com/ipseclab/ipseclab/strongswan/swantest"
)

// BenchmarkNegotiations measures Main Mode plus Quick Mode negotiations per
// second between two of our stacks in two namespaces, over real sockets, one
// after another (initiate, then terminate, like swantest's charon baseline),
// and beside it charon ↔ charon with the same proposals in the same run. It
// reports both rates and their ratio. The certificate baselines authenticate
// both pairs with signatures of the same key type, from a CA of their own.
func BenchmarkNegotiations(b *testing.B) {
	for _, bl := range append(swantest.NegotiationBaselines, swantest.CertNegotiationBaselines...) {
		b.Run(bl.Name, func(b *testing.B) {
			a, peer := nsPair(b)
			ca := ike.Connection{
				Name: "lab", Role: ike.Initiator, Local: a.outer, Remote: peer.outer, PSK: psk,
				Proposals: ikeProposals(b, bl.IKE),
				Child:     ike.Child{LocalTS: netip.PrefixFrom(a.inner, 32), RemoteTS: netip.PrefixFrom(peer.inner, 32), Proposals: espProposals(b, bl.ESP)},
			}
			cb := ca
			cb.Role, cb.Local, cb.Remote = ike.Responder, peer.outer, a.outer
			cb.Child.LocalTS, cb.Child.RemoteTS = ca.Child.RemoteTS, ca.Child.LocalTS
			if bl.Key != "" {
				ca.PSK, cb.PSK = "", ""
				ca.Auth, cb.Auth = benchCerts(b, pki.KeyType(bl.Key), a.outer, peer.outer)
			}
			sa := benchStack(b, a, ca)
			benchStack(b, peer, cb)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()

			b.ResetTimer()
			for range b.N {
				if err := sa.Initiate(ctx, "lab"); err != nil {
					b.Fatal(err)
				}
				if err := sa.Terminate(ctx, "lab"); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			ours := float64(b.N) / b.Elapsed().Seconds()

			// The baseline, on the same machine at the same moment.
			cfg := swantest.PairConfig{IKEProposal: bl.IKE, ESPProposal: bl.ESP}
			if bl.Key != "" {
				cfg.Certs = swantest.GenerateCerts(b, bl.Key)
			}
			pair := swantest.StartPair(b, cfg)
			n := min(b.N, 100)
			start := time.Now()
			for range n {
				if err := pair.Negotiate(ctx); err != nil {
					b.Fatal(err)
				}
			}
			charon := float64(n) / time.Since(start).Seconds()
			b.ReportMetric(ours, "negotiations/s")
			b.ReportMetric(charon, "charon-negotiations/s")
			b.ReportMetric(ours/charon, "x-charon")
		})
	}
}

// benchCerts is a CA and a certificate of key type kt for each of two
// addresses, as the two sides' authentication.
func benchCerts(b *testing.B, kt pki.KeyType, addrA, addrB netip.Addr) (ike.Auth, ike.Auth) {
	now := time.Now()
	ca, err := pki.NewCA("bench CA", kt, now.Add(-time.Hour), now.Add(24*time.Hour), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	auth := func(cn string, addr netip.Addr) ike.Auth {
		c, err := ca.Issue(pki.IssueRequest{Subject: pkix.Name{CommonName: cn}, IPs: []net.IP{addr.AsSlice()}, KeyType: kt,
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour)}, rand.Reader)
		if err != nil {
			b.Fatal(err)
		}
		return ike.Auth{Method: ike.AuthPubkey, Chain: c.Chain, Key: c.Key, CAs: []*x509.Certificate{ca.Cert}}
	}
	return auth("a", addrA), auth("b", addrB)
}

func benchStack(b testing.TB, n *nsNode, c ...ike.Connection) *stack.Stack {
	s, err := stack.New(stack.Config{Node: n.name, Host: stack.Namespace{Handle: n.h}, Connections: c})
	if err != nil {
		b.Fatal(err)
	}
	if err := s.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

// BenchmarkParallelNegotiations is BenchmarkNegotiations with many
// connections negotiating at once: IPSECLAB_NEG_PARALLEL (default 32)
// initiator addresses on one node, each with a connection of its own to the
// other node, and a goroutine per connection initiating and terminating it
// in a loop. It reports the negotiations per second, the CPU the process
// used over the wall time, in cores (user and system time from getrusage:
// both stacks run in it), and the rate against one connection's, measured
// the same way just before.
func BenchmarkParallelNegotiations(b *testing.B) {
	n := 32
	if v, err := strconv.Atoi(os.Getenv("IPSECLAB_NEG_PARALLEL")); err == nil && v > 0 {
		n = v
	}
	for _, bl := range swantest.NegotiationBaselines {
		b.Run(bl.Name, func(b *testing.B) {
			a, peer := nsPair(b)
			var ca, cb []ike.Connection
			for i := range n {
				local := netip.AddrFrom4([4]byte{192, 0, 2, byte(10 + i)})
				addAddr(b, a.h, "eth0", netip.PrefixFrom(local, 24))
				c := ike.Connection{
					Name: fmt.Sprintf("c%d", i), Role: ike.Initiator, Local: local, Remote: peer.outer, PSK: psk,
					Proposals: ikeProposals(b, bl.IKE),
					Child: ike.Child{
						LocalTS:   netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 1, byte(i), 1}), 32),
						RemoteTS:  netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 2, byte(i), 1}), 32),
						Proposals: espProposals(b, bl.ESP),
					},
				}
				r := c
				r.Role, r.Local, r.Remote = ike.Responder, peer.outer, local
				r.Child.LocalTS, r.Child.RemoteTS = c.Child.RemoteTS, c.Child.LocalTS
				ca, cb = append(ca, c), append(cb, r)
			}
			sa := benchStack(b, a, ca...)
			benchStack(b, peer, cb...)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			negotiate := func(conn string) {
				if err := sa.Initiate(ctx, conn); err != nil {
					b.Fatal(err)
				}
				if err := sa.Terminate(ctx, conn); err != nil {
					b.Fatal(err)
				}
			}

			// One connection alone, for the ratio.
			seq := max(b.N/4, 50)
			start := time.Now()
			for range seq {
				negotiate("c0")
			}
			sequential := float64(seq) / time.Since(start).Seconds()

			var left atomic.Int64
			left.Store(int64(b.N))
			cpu0 := cpuTime(b)
			b.ResetTimer()
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() {
					for left.Add(-1) >= 0 {
						negotiate(fmt.Sprintf("c%d", i))
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			rate := float64(b.N) / b.Elapsed().Seconds()
			b.ReportMetric(rate, "negotiations/s")
			b.ReportMetric((cpuTime(b)-cpu0).Seconds()/b.Elapsed().Seconds(), "cpu-cores")
			b.ReportMetric(rate/sequential, "x-sequential")
		})
	}
}

// cpuTime is the user and system time the process has used.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

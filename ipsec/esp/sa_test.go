package esp

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash"
	"testing"
	"time"
)

type transform struct {
	proto Protocol
	enc   EncAlg
	integ IntegAlg
}

func (tr transform) String() string {
	if tr.proto == ProtoAH {
		return "ah-" + tr.integ.String()
	}
	return fmt.Sprintf("esp-%s-%s", tr.enc, tr.integ)
}

// allTransforms is every ESP and AH combination the data plane offers.
func allTransforms() []transform {
	integs := []IntegAlg{IntegHMACMD5_96, IntegHMACSHA1_96, IntegHMACSHA256_128, IntegHMACSHA384_192, IntegHMACSHA512_256}
	var out []transform
	for _, enc := range []EncAlg{EncNull, EncDES, Enc3DES, EncAESCBC128, EncAESCBC192, EncAESCBC256} {
		for _, integ := range integs {
			out = append(out, transform{ProtoESP, enc, integ})
		}
	}
	for _, enc := range []EncAlg{EncAESGCM16_128, EncAESGCM16_192, EncAESGCM16_256} {
		out = append(out, transform{ProtoESP, enc, IntegNone})
	}
	for _, integ := range integs {
		out = append(out, transform{ProtoAH, 0, integ})
	}
	return out
}

func mustSA(t testing.TB, c SAConfig) *saState {
	t.Helper()
	sa, err := newSA(c, time.Unix(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	return sa
}

// protectPacket runs inner through sa and returns the bytes on the wire.
func protectPacket(t testing.TB, sa *saState, inner []byte) []byte {
	t.Helper()
	buf := make([]byte, Headroom+len(inner)+Tailroom)
	copy(buf[Headroom:], inner)
	s, e, _, r := sa.protect(buf, Headroom, Headroom+len(inner))
	if r != dropNone {
		t.Fatalf("protect: %s", r)
	}
	return bytes.Clone(buf[s:e])
}

// unprotectPacket runs a wire packet through sa.
func unprotectPacket(sa *saState, wire []byte) ([]byte, uint64, dropReason) {
	buf := make([]byte, Headroom+len(wire))
	ihl := 0
	if sa.cfg.Encap == nil {
		ihl = int(wire[0]&0x0f) * 4
	}
	p0, p1, seq, r := sa.unprotect(wire, ihl, buf, nil)
	if r != dropNone {
		return nil, seq, r
	}
	return buf[p0:p1], seq, r
}

func TestRoundTripEveryTransformAndMode(t *testing.T) {
	for _, tr := range allTransforms() {
		for _, mode := range []Mode{Tunnel, Transport} {
			for _, encap := range []bool{false, true} {
				if encap && tr.proto == ProtoAH {
					continue
				}
				name := fmt.Sprintf("%s/%s/udp=%v", tr, mode, encap)
				t.Run(name, func(t *testing.T) {
					oc, ic := saPair(t, tr.proto, mode, tr.enc, tr.integ, encap, 0x1001)
					out, in := mustSA(t, oc), mustSA(t, ic)
					src, dst := "10.1.0.5", "10.2.0.7"
					if mode == Transport {
						src, dst = "192.0.2.1", "192.0.2.2"
					}
					for i, size := range []int{0, 1, 13, 100, 1372} {
						inner := icmpEcho(src, dst, uint32(i), size)
						wire := protectPacket(t, out, inner)
						if n := len(wire) - len(inner); n > out.overhead() {
							t.Fatalf("overhead %d exceeds the computed maximum %d", n, out.overhead())
						}
						if tr.enc != EncNull && tr.proto == ProtoESP && bytes.Contains(wire, inner[20:]) {
							t.Fatalf("payload visible on the wire with %s", tr.enc)
						}
						got, seq, r := unprotectPacket(in, wire)
						if r != dropNone {
							t.Fatalf("packet %d: unprotect: %s", i, r)
						}
						if seq != uint64(i+1) {
							t.Fatalf("sequence number %d, want %d", seq, i+1)
						}
						if mode == Transport && encap {
							// The UDP socket dropped the original header; the
							// rebuilt one carries the same addresses and protocol.
							if !bytes.Equal(got[20:], inner[20:]) || !bytes.Equal(got[12:20], inner[12:20]) || got[9] != inner[9] {
								t.Fatalf("transport/UDP: got %x want %x", got, inner)
							}
							continue
						}
						if !bytes.Equal(got, inner) {
							t.Fatalf("inner packet changed\n got %x\nwant %x", got, inner)
						}
					}
				})
			}
		}
	}
}

func TestConfigValidation(t *testing.T) {
	base, _ := saPair(t, ProtoESP, Tunnel, EncAESCBC128, IntegHMACSHA1_96, false, 0x1001)
	bad := map[string]func(c *SAConfig){
		"reserved SPI":    func(c *SAConfig) { c.SPI = 255 },
		"short key":       func(c *SAConfig) { c.EncKey = c.EncKey[:8] },
		"short integ key": func(c *SAConfig) { c.IntegKey = c.IntegKey[:4] },
		"GCM with integ":  func(c *SAConfig) { c.Enc, c.EncKey, c.Salt = EncAESGCM16_128, make([]byte, 16), make([]byte, 4) },
		"GCM without salt": func(c *SAConfig) {
			c.Enc, c.EncKey, c.Integ, c.IntegKey = EncAESGCM16_128, make([]byte, 16), IntegNone, nil
		},
		"NULL without integ": func(c *SAConfig) { c.Enc, c.EncKey, c.Integ, c.IntegKey = EncNull, nil, IntegNone, nil },
		"AH over UDP": func(c *SAConfig) {
			c.Protocol, c.Enc, c.EncKey, c.Encap = ProtoAH, 0, nil, &UDPEncap{RemotePort: 4500}
		},
		"tunnel without selectors": func(c *SAConfig) { c.LocalTS = TrafficSelector{} },
		"no direction":             func(c *SAConfig) { c.Dir = 0 },
	}
	for name, mutate := range bad {
		c := base
		mutate(&c)
		if _, err := newSA(c, time.Time{}); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := newSA(base, time.Time{}); err != nil {
		t.Fatalf("valid config rejected: %v", err)
	}
}

func TestReplayWindow(t *testing.T) {
	oc, ic := saPair(t, ProtoESP, Tunnel, EncAESGCM16_128, IntegNone, false, 0x2002)
	ic.ReplayWindow = 64
	out, in := mustSA(t, oc), mustSA(t, ic)
	wire := map[uint64][]byte{}
	for i := uint64(1); i <= 1000; i++ {
		wire[i] = protectPacket(t, out, icmpEcho("10.1.0.5", "10.2.0.7", uint32(i), 20))
	}
	expect := func(seq uint64, want dropReason) {
		t.Helper()
		if _, _, r := unprotectPacket(in, wire[seq]); r != want {
			t.Fatalf("seq %d: got %s, want %s", seq, r, want)
		}
	}
	expect(1, dropNone)
	expect(1, dropReplay)  // a duplicate
	expect(100, dropNone)  // beyond the right edge: accepted, the window moves to 100
	expect(36, dropReplay) // 100-36 = 64: just left of the window
	expect(37, dropNone)   // the window's left edge, never seen
	expect(37, dropReplay)
	expect(99, dropNone) // out of order inside the window
	// A packet far right whose ICV fails must not move the window.
	forged := bytes.Clone(wire[900])
	forged[len(forged)-1] ^= 1
	if _, _, r := unprotectPacket(in, forged); r != dropIntegrity {
		t.Fatalf("forged packet: %s", r)
	}
	expect(60, dropNone) // still inside the window that ends at 100
	expect(1000, dropNone)
	expect(900, dropReplay) // 1000-900 > 64: now too old
	expect(999, dropNone)
}

func TestESNAcrossThe32BitBoundary(t *testing.T) {
	for _, tr := range []transform{{ProtoESP, EncAESGCM16_256, IntegNone}, {ProtoESP, EncAESCBC128, IntegHMACSHA256_128}, {ProtoAH, 0, IntegHMACSHA1_96}} {
		t.Run(tr.String(), func(t *testing.T) {
			oc, ic := saPair(t, tr.proto, Tunnel, tr.enc, tr.integ, false, 0x3003)
			oc.ESN, ic.ESN = true, true
			out, in := mustSA(t, oc), mustSA(t, ic)
			out.seq.Store(1<<32 - 4)
			var last uint64
			for i := 0; i < 8; i++ {
				w := protectPacket(t, out, icmpEcho("10.1.0.5", "10.2.0.7", uint32(i), 10))
				if i == 5 {
					continue // a lost packet on the far side of the boundary
				}
				_, seq, r := unprotectPacket(in, w)
				if r != dropNone {
					t.Fatalf("packet %d: %s", i, r)
				}
				last = seq
			}
			if last != 1<<32+4 {
				t.Fatalf("last sequence number %#x, want %#x", last, uint64(1<<32+4))
			}
			// Without ESN on the receiver the high half is lost, so the ICV
			// over the implicit high bits fails.
			ic.ESN = false
			plain := mustSA(t, ic)
			if _, _, r := unprotectPacket(plain, protectPacket(t, out, icmpEcho("10.1.0.5", "10.2.0.7", 9, 10))); r != dropIntegrity {
				t.Fatalf("receiver without ESN: %s, want integrity failure", r)
			}
		})
	}
}

func TestSequenceNumberExhaustion(t *testing.T) {
	oc, _ := saPair(t, ProtoESP, Tunnel, EncAESGCM16_128, IntegNone, false, 0x4004)
	out := mustSA(t, oc)
	out.seq.Store(0xfffffffe)
	protectPacket(t, out, icmpEcho("10.1.0.5", "10.2.0.7", 1, 10)) // 0xffffffff: the last one
	buf := make([]byte, 512)
	inner := icmpEcho("10.1.0.5", "10.2.0.7", 2, 10)
	copy(buf[Headroom:], inner)
	if _, _, _, r := out.protect(buf, Headroom, Headroom+len(inner)); r != dropSeqExhausted {
		t.Fatalf("after 2^32-1: %s, want sequence-exhausted (RFC 4303 §3.3.3: no cycling)", r)
	}
}

func TestInboundPolicyCheck(t *testing.T) {
	oc, ic := saPair(t, ProtoESP, Tunnel, EncAESCBC256, IntegHMACSHA512_256, false, 0x5005)
	oc.RemoteTS = mustTS(t, "10.0.0.0/8") // a peer that protects more than we agreed to
	out, in := mustSA(t, oc), mustSA(t, ic)
	w := protectPacket(t, out, icmpEcho("10.1.0.5", "10.9.9.9", 1, 10))
	if _, _, r := unprotectPacket(in, w); r != dropPolicy {
		t.Fatalf("inner packet outside the SA's selectors: %s, want policy drop", r)
	}
	if in.c.snapshot().Packets != 0 {
		t.Fatal("a policy drop was counted as delivered")
	}
}

// RFC 6040 §4.2: congestion experienced on the outer header is carried over
// to an ECN-capable inner packet at decapsulation, checksum included.
func TestDecapsulationPropagatesCongestion(t *testing.T) {
	oc, ic := saPair(t, ProtoESP, Tunnel, EncAESGCM16_128, IntegNone, false, 0x6006)
	out, in := mustSA(t, oc), mustSA(t, ic)
	inner := icmpEcho("10.1.0.5", "10.2.0.7", 1, 10)
	inner[ipv4TOS] = 0x02 // ECT(0)
	setIPv4Checksum(inner[:20])
	wire := protectPacket(t, out, inner)
	if wire[ipv4TOS] != 0x02 {
		t.Fatalf("outer TOS %#x: the inner ECN field should be copied out", wire[ipv4TOS])
	}
	wire[ipv4TOS] |= 3 // a router on the way marked congestion
	got, _, r := unprotectPacket(in, wire)
	if r != dropNone {
		t.Fatal(r)
	}
	if got[ipv4TOS]&3 != 3 || onesSum(got[:20], 0) != 0xffff {
		t.Fatalf("inner TOS %#x, header checksum valid: %v", got[ipv4TOS], onesSum(got[:20], 0) == 0xffff)
	}
}

// RFC 4303 §2.6: a packet whose next header is 59 is traffic-flow padding,
// authenticated and then discarded without reaching the TUN.
func TestDummyPacketIsDiscarded(t *testing.T) {
	oc, ic := saPair(t, ProtoESP, Tunnel, EncAESCBC128, IntegHMACSHA1_96, false, 0x6007)
	out, in := mustSA(t, oc), mustSA(t, ic)
	buf := make([]byte, 256)
	s, e := out.esp.seal(buf, Headroom, Headroom+16, protoNoNext, oc.SPI, 1)
	wire := make([]byte, 20+e-s)
	writeIPv4Header(wire, len(wire), 0, false, 1, byte(ProtoESP), oc.Local, oc.Remote)
	copy(wire[20:], buf[s:e])
	if _, _, r := unprotectPacket(in, wire); r != dropDummy {
		t.Fatalf("dummy packet: %s", r)
	}
}

// A batch of CBC packets sealed later (sealJobs): same-sized packets of one SA
// go four at a time, the others alone, two SAs interleaved; HMAC-SHA1 and
// -SHA256 ICVs are computed two at a time, across the ESN boundary, across
// SAs and (one after the other) across hashes. Every packet opens on the
// other side with the right payload, in order.
func TestSealJobsBatch(t *testing.T) {
	for _, enc := range []EncAlg{EncAESCBC128, EncAESCBC256, Enc3DES} {
		t.Run(enc.String(), func(t *testing.T) {
			oc1, ic1 := saPair(t, ProtoESP, Tunnel, enc, IntegHMACSHA1_96, true, 0x2001)
			oc1.ESN, ic1.ESN = true, true
			integ2 := IntegHMACSHA256_128
			if enc == EncAESCBC256 {
				integ2 = IntegHMACSHA1_96 // pairs across SAs
			}
			oc2, ic2 := saPair(t, ProtoESP, Transport, enc, integ2, false, 0x3001)
			out1, in1, out2, in2 := mustSA(t, oc1), mustSA(t, ic1), mustSA(t, oc2), mustSA(t, ic2)
			out1.seq.Store(1<<32 - 7)
			type sent struct {
				out, in *saState
				inner   []byte
				buf     []byte
				s, e    int
				seq     uint64
			}
			var jobs sealJobs
			var batch []sent
			add := func(out, in *saState, inner []byte) {
				buf := make([]byte, Headroom+len(inner)+Tailroom)
				copy(buf[Headroom:], inner)
				s, e, seq, r := out.protectLater(&jobs, buf, Headroom, Headroom+len(inner))
				if r != dropNone {
					t.Fatal(r)
				}
				batch = append(batch, sent{out, in, inner, buf, s, e, seq})
			}
			for i := range 11 {
				add(out1, in1, icmpEcho("10.1.0.5", "10.2.0.7", uint32(i), 1372)) // a TSO split's run
			}
			add(out1, in1, icmpEcho("10.1.0.5", "10.2.0.7", 11, 300)) // its short last segment
			for i := range 5 {
				add(out2, in2, icmpEcho("192.0.2.1", "192.0.2.2", uint32(i), 100))
				add(out1, in1, icmpEcho("10.1.0.5", "10.2.0.7", uint32(12+i), 1372))
			}
			if len(jobs.list) != len(batch) {
				t.Fatalf("%d jobs for %d packets", len(jobs.list), len(batch))
			}
			jobs.run()
			if len(jobs.list) != 0 {
				t.Fatal("jobs left after run")
			}
			for i, p := range batch {
				// The ICV, recomputed by crypto/hmac: both ends of this test
				// share the data plane's HMAC code.
				esp := p.buf[p.s:p.e]
				cfg := p.out.cfg
				if cfg.Encap == nil {
					esp = esp[int(esp[0]&0x0f)*4:]
				}
				n := len(esp) - cfg.Integ.ICVSize()
				mac := hmac.New(map[IntegAlg]func() hash.Hash{IntegHMACSHA1_96: sha1.New, IntegHMACSHA256_128: sha256.New}[cfg.Integ], cfg.IntegKey)
				mac.Write(esp[:n])
				if cfg.ESN {
					mac.Write(binary.BigEndian.AppendUint32(nil, uint32(p.seq>>32)))
				}
				if want := mac.Sum(nil)[:len(esp)-n]; !bytes.Equal(esp[n:], want) {
					t.Fatalf("packet %d (SA %x, seq %#x): ICV %x, crypto/hmac says %x", i, cfg.SPI, p.seq, esp[n:], want)
				}
				got, _, r := unprotectPacket(p.in, bytes.Clone(p.buf[p.s:p.e]))
				if r != dropNone {
					t.Fatalf("packet %d: %s", i, r)
				}
				if !bytes.Equal(got[20:], p.inner[20:]) {
					t.Fatalf("packet %d: payload differs", i)
				}
			}
		})
	}
}

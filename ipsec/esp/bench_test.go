package esp

import (
	"net/netip"
	"testing"
)

// Per-packet cost of each transform on a 1400-byte inner packet, tunnel mode.
// allocs/op must be 0: buffers are preallocated; encryption is in place,
// decryption into another buffer.

func BenchmarkProtect(b *testing.B) {
	for _, tr := range allTransforms() {
		b.Run(tr.String(), func(b *testing.B) {
			oc, _ := saPair(b, tr.proto, Tunnel, tr.enc, tr.integ, false, 0x1001)
			oc.ESN = true // no exhaustion however long the benchmark runs
			sa := mustSA(b, oc)
			inner := icmpEcho("10.1.0.5", "10.2.0.7", 1, 1372)
			buf := make([]byte, Headroom+len(inner)+Tailroom)
			b.SetBytes(int64(len(inner)))
			b.ReportAllocs()
			for b.Loop() {
				copy(buf[Headroom:], inner)
				if _, _, _, r := sa.protect(buf, Headroom, Headroom+len(inner)); r != dropNone {
					b.Fatal(r)
				}
			}
		})
	}
}

func BenchmarkUnprotect(b *testing.B) {
	for _, tr := range allTransforms() {
		b.Run(tr.String(), func(b *testing.B) {
			oc, ic := saPair(b, tr.proto, Tunnel, tr.enc, tr.integ, false, 0x1001)
			out, in := mustSA(b, oc), mustSA(b, ic)
			wire := protectPacket(b, out, icmpEcho("10.1.0.5", "10.2.0.7", 1, 1372))
			buf := make([]byte, Headroom+len(wire))
			b.SetBytes(int64(len(wire)))
			b.ReportAllocs()
			for b.Loop() {
				// The same packet every time: forget it was seen.
				in.replay.Reset()
				if _, _, _, r := in.unprotect(wire, ipv4MinHeader, buf, nil); r != dropNone {
					b.Fatal(r)
				}
			}
		})
	}
}

// The whole per-packet path of the data plane (selectors, SPD, SA, transform,
// counters, lifetimes) in each direction.
func BenchmarkDataPlanePath(b *testing.B) {
	tr := transform{ProtoESP, EncAESGCM16_128, IntegNone}
	oc, ic := saPair(b, tr.proto, Tunnel, tr.enc, tr.integ, false, 0x1001)
	oc.ESN, ic.ESN = true, true
	a, d := New(Config{}), New(Config{})
	defer a.Close()
	defer d.Close()
	must(b, a.AddPolicy(Policy{Conn: "a-b", LocalTS: mustTS(b, "10.1.0.0/24"), RemoteTS: mustTS(b, "10.2.0.0/24")}))
	must(b, a.AddSA(oc))
	must(b, d.AddSA(ic))
	inner := icmpEcho("10.1.0.5", "10.2.0.7", 1, 1372)
	w := newWireBuffers(1, Headroom+len(inner)+Tailroom)
	b.Run("outbound", func(b *testing.B) {
		b.SetBytes(int64(len(inner)))
		b.ReportAllocs()
		for b.Loop() {
			w.ip = w.ip[:0]
			copy(w.bufs[0][Headroom:], inner)
			a.outbound(w, w.bufs[0], Headroom, Headroom+len(inner))
			if len(w.ip) != 1 {
				b.Fatal("not sent")
			}
		}
	})
	wire := protectPacket(b, mustSA(b, oc), inner)
	in := (*d.inbound.Load())[inKey{ProtoESP, ic.SPI}]
	buf := make([]byte, Headroom+len(wire))
	b.Run("inbound", func(b *testing.B) {
		b.SetBytes(int64(len(wire)))
		b.ReportAllocs()
		for b.Loop() {
			in.replay.Reset()
			if _, _, ok := d.inboundIP(wire, buf, nil); !ok {
				b.Fatal("dropped")
			}
		}
	})
	// ESP in UDP from where the SA expects it: the path of a NAT-T tunnel,
	// with the check for a new NAT mapping (mapping.go) on every packet.
	ocu, icu := saPair(b, tr.proto, Tunnel, tr.enc, tr.integ, true, 0x2001)
	icu.Encap.FollowPeer = true
	must(b, d.AddSA(icu))
	udp := protectPacket(b, mustSA(b, ocu), inner) // ESP alone: the socket adds IP and UDP
	inu := (*d.inbound.Load())[inKey{ProtoESP, icu.SPI}]
	src := netip.AddrPortFrom(icu.Remote, icu.Encap.RemotePort)
	b.Run("inbound-udp", func(b *testing.B) {
		b.SetBytes(int64(len(udp)))
		b.ReportAllocs()
		for b.Loop() {
			inu.replay.Reset()
			if _, _, ok := d.inboundUDP(udp, src, buf, nil); !ok {
				b.Fatal("dropped")
			}
		}
	})
}

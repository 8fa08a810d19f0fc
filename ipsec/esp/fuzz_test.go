package esp

import (
	"bytes"
	"net/netip"
	"testing"
)

// fuzzPlane is a data plane with an inbound SA of every transform installed,
// and seed packets that those SAs accept.
func fuzzPlane(f *testing.F, encap bool) (*DataPlane, [][]byte) {
	d := New(Config{})
	var seeds [][]byte
	spi := uint32(0x100)
	for _, tr := range allTransforms() {
		for _, mode := range []Mode{Tunnel, Transport} {
			if encap && tr.proto == ProtoAH {
				continue
			}
			spi++
			oc, ic := saPair(f, tr.proto, mode, tr.enc, tr.integ, encap, spi)
			if encap {
				ic.Encap.FollowPeer = true // so that the fuzzer may try to move it
			}
			if err := d.AddSA(ic); err != nil {
				f.Fatal(err)
			}
			src, dst := "10.1.0.5", "10.2.0.7"
			if mode == Transport {
				src, dst = "192.0.2.1", "192.0.2.2"
			}
			seeds = append(seeds, protectPacket(f, mustSA(f, oc), icmpEcho(src, dst, 1, 16)))
		}
	}
	return d, seeds
}

// total is every counter an inbound packet can move: delivered or dropped,
// each input must move exactly one.
func total(d *DataPlane) uint64 {
	s := d.Stats()
	n := s.UnknownSPI + s.Malformed + s.Keepalives + s.IKEReceived + s.IKEDropped
	for _, sa := range d.SAs() {
		c := sa.Counters
		n += c.Packets + c.ReplayDrops + c.IntegrityFailures + c.PolicyDrops + c.OtherDrops
	}
	return n
}

// FuzzInboundIP feeds arbitrary bytes to the raw-socket inbound path (ESP and
// AH parsers, decapsulation, inner packet checks): it must never panic, and
// must count every input exactly once.
// Each input comes twice in one batch, so that ICVs are checked ahead too.
func FuzzInboundIP(f *testing.F) {
	d, seeds := fuzzPlane(f, false)
	for _, s := range seeds {
		f.Add(s)
	}
	f.Add([]byte{0x45, 0, 0, 20, 0, 0, 0, 0, 64, 50, 0, 0, 192, 0, 2, 1, 192, 0, 2, 2})
	f.Fuzz(func(t *testing.T, pkt []byte) {
		if len(pkt) > maxPacket {
			return
		}
		before := total(d)
		// Twice, as one batch whose ICVs are checked ahead (icvahead.go).
		batch := [][]byte{pkt, bytes.Clone(pkt)}
		ahead := newICVAhead(len(batch))
		ahead.check(d, batch, false)
		for i, p := range batch {
			buf := make([]byte, Headroom+len(p))
			p0, p1, ok := d.inboundIP(p, buf, ahead.verdict(i))
			if ok && (p0 < tunWriteOffset || p1 > len(buf) || p0 > p1) {
				t.Fatalf("inner packet bounds %d..%d in a %d-byte buffer", p0, p1, len(buf))
			}
		}
		if after := total(d); after != before+2 {
			t.Fatalf("counters moved by %d, want 2", after-before)
		}
	})
}

// FuzzInboundUDP does the same for the NAT-T port: keepalives, IKE with the
// non-ESP marker, and UDP-encapsulated ESP, from any source port. Only a
// packet that was accepted may move an SA to its source (mapping.go).
func FuzzInboundUDP(f *testing.F) {
	d, seeds := fuzzPlane(f, true)
	d.HandleIKE(func(netip.AddrPort, []byte) {})
	// Half the seeds come first from the SA's own port, half from another,
	// which they move the SA to.
	for i, s := range seeds {
		ports := []uint16{4500, 31337}
		if i%2 == 1 {
			ports[0], ports[1] = ports[1], ports[0]
		}
		for _, p := range ports {
			f.Add(s, p)
		}
	}
	f.Add([]byte{0xff}, uint16(4500))
	f.Add([]byte{0, 0, 0, 0, 1, 2, 3}, uint16(1024))
	f.Fuzz(func(t *testing.T, pkt []byte, port uint16) {
		if len(pkt) > maxPacket {
			return
		}
		src := netip.AddrPortFrom(netip.MustParseAddr("192.0.2.1"), port)
		before, moves := total(d), d.Stats().MappingChanges
		// Twice, as one batch whose ICVs are checked ahead (icvahead.go).
		batch := [][]byte{pkt, bytes.Clone(pkt)}
		ahead := newICVAhead(len(batch))
		ahead.check(d, batch, true)
		accepted := false
		for i, p := range batch {
			buf := make([]byte, Headroom+len(p))
			p0, p1, ok := d.inboundUDP(p, src, buf, ahead.verdict(i))
			if ok && (p0 < tunWriteOffset || p1 > len(buf) || p0 > p1) {
				t.Fatalf("inner packet bounds %d..%d in a %d-byte buffer", p0, p1, len(buf))
			}
			accepted = accepted || ok
		}
		if after := total(d); after != before+2 {
			t.Fatalf("counters moved by %d, want 2", after-before)
		}
		if !accepted && d.Stats().MappingChanges != moves {
			t.Fatal("a packet that was dropped moved an SA to its source")
		}
	})
}

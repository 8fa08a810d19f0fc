package esp

import (
	"net/netip"
	"testing"
)

// l4Valid reports whether the TCP or UDP checksum of pkt is right for its
// IP header (a UDP checksum of zero means none was sent).
func l4Valid(pkt []byte) bool {
	ihl := int(pkt[0]&0xf) * 4
	if pkt[ipv4Protocol] == protoUDP && be.Uint16(pkt[ihl+6:]) == 0 {
		return true
	}
	ph := append(append(append([]byte(nil), pkt[ipv4Src:ipv4Dst+4]...), 0, pkt[ipv4Protocol]), byte((len(pkt)-ihl)>>8), byte(len(pkt)-ihl))
	return onesSum(append(ph, pkt[ihl:]...), 0) == 0xffff
}

// withChecksum fills in the TCP or UDP checksum of pkt for its header.
func withChecksum(pkt []byte) []byte {
	ihl := int(pkt[0]&0xf) * 4
	field := ihl + 16
	if pkt[ipv4Protocol] == protoUDP {
		field = ihl + 6
	}
	pkt[field], pkt[field+1] = 0, 0
	ph := append(append(append([]byte(nil), pkt[ipv4Src:ipv4Dst+4]...), 0, pkt[ipv4Protocol]), byte((len(pkt)-ihl)>>8), byte(len(pkt)-ihl))
	be.PutUint16(pkt[field:], ^onesSum(append(ph, pkt[ihl:]...), 0))
	return pkt
}

// Transport mode through a NAT (RFC 3948 §3.1.2): the laptop at
// 192.168.1.10 sends to the server 203.0.113.2, which sees it as the NAT's
// 198.51.100.2. The server's inner packet has the addresses of its SA, and
// TCP and UDP checksums that are right for them; a UDP datagram sent without
// a checksum keeps none, and ICMP, whose checksum covers no addresses, is
// left alone.
func TestTransportModeThroughNATFixesChecksums(t *testing.T) {
	laptop, server := netip.MustParseAddr("192.168.1.10"), netip.MustParseAddr("203.0.113.2")
	natAddr := netip.MustParseAddr("198.51.100.2")
	oc, ic := saPair(t, ProtoESP, Transport, EncAESCBC128, IntegHMACSHA1_96, true, 0x4004)
	oc.Local, oc.Remote = laptop, server
	ic.Local, ic.Remote = server, natAddr
	out, in := mustSA(t, oc), mustSA(t, ic)

	tcp := make([]byte, 20+100)
	be.PutUint16(tcp[0:], 40000)
	be.PutUint16(tcp[2:], 1701)
	tcp[12] = 5 << 4
	tcp[13] = 0x18
	for i := 20; i < len(tcp); i++ {
		tcp[i] = byte(i * 7)
	}
	udp := make([]byte, 8+33)
	be.PutUint16(udp[0:], 1701)
	be.PutUint16(udp[2:], 1701)
	be.PutUint16(udp[4:], uint16(len(udp)))
	for i := 8; i < len(udp); i++ {
		udp[i] = byte(i * 3)
	}
	cases := []struct {
		name    string
		pkt     []byte
		fixed   bool // the checksum field had to change
		noCksum bool
	}{
		{"tcp", withChecksum(ipv4Packet("192.168.1.10", "203.0.113.2", protoTCP, tcp)), true, false},
		{"udp", withChecksum(ipv4Packet("192.168.1.10", "203.0.113.2", protoUDP, udp)), true, false},
		{"udp without checksum", ipv4Packet("192.168.1.10", "203.0.113.2", protoUDP, udp), false, true},
		{"icmp", icmpEcho("192.168.1.10", "203.0.113.2", 1, 40), false, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.pkt[ipv4Protocol] != protoICMP && !l4Valid(c.pkt) {
				t.Fatal("the test's own packet has a wrong checksum")
			}
			got, _, r := unprotectPacket(in, protectPacket(t, out, c.pkt))
			if r != dropNone {
				t.Fatalf("dropped: %s", r)
			}
			if ipv4Addr(got[ipv4Src:]) != natAddr || ipv4Addr(got[ipv4Dst:]) != server {
				t.Fatalf("inner header %s → %s, want %s → %s", ipv4Addr(got[ipv4Src:]), ipv4Addr(got[ipv4Dst:]), natAddr, server)
			}
			if onesSum(got[:20], 0) != 0xffff {
				t.Fatal("IPv4 header checksum wrong")
			}
			if c.pkt[ipv4Protocol] != protoICMP && !l4Valid(got) {
				t.Fatal("transport checksum wrong for the rebuilt header")
			}
			field := map[byte]int{protoTCP: 36, protoUDP: 26, protoICMP: 22}[c.pkt[ipv4Protocol]]
			changed := be.Uint16(got[field:]) != be.Uint16(c.pkt[field:])
			if changed != c.fixed {
				t.Fatalf("checksum changed=%v, want %v", changed, c.fixed)
			}
			if c.noCksum && be.Uint16(got[field:]) != 0 {
				t.Fatal("a UDP datagram sent without a checksum got one")
			}
			if string(got[20:field]) != string(c.pkt[20:field]) || string(got[field+2:]) != string(c.pkt[field+2:]) {
				t.Fatal("payload changed beyond the checksum field")
			}
		})
	}
}

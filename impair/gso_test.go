package impair

import (
	"bytes"
	"encoding/binary"
	"net"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"golang.org/x/sys/unix"

	"github.com/ipseclab/ipseclab/impair/netem"
	"github.com/ipseclab/ipseclab/internal/vnet"
)

var (
	macA = net.HardwareAddr{0x02, 0, 0, 0, 0, 1}
	macB = net.HardwareAddr{0x02, 0, 0, 0, 0, 2}
)

// tcpFrame serializes an Ethernet/IP/TCP frame with gopacket, checksums and
// lengths computed by gopacket: the independent reference for segment.
func tcpFrame(t testing.TB, v6 bool, id uint16, seq uint32, flags uint8, payload []byte) []byte {
	t.Helper()
	eth := &layers.Ethernet{SrcMAC: macA, DstMAC: macB, EthernetType: layers.EthernetTypeIPv4}
	tcp := &layers.TCP{SrcPort: 40000, DstPort: 5001, Seq: seq, Ack: 77, Window: 512,
		FIN: flags&0x01 != 0, PSH: flags&0x08 != 0, ACK: flags&0x10 != 0, CWR: flags&0x80 != 0,
		Options: []layers.TCPOption{{OptionType: layers.TCPOptionKindNop}, {OptionType: layers.TCPOptionKindNop},
			{OptionType: layers.TCPOptionKindTimestamps, OptionLength: 10, OptionData: []byte{0, 0, 0, 1, 0, 0, 0, 2}}}}
	var ip gopacket.SerializableLayer
	if v6 {
		eth.EthernetType = layers.EthernetTypeIPv6
		ip6 := &layers.IPv6{Version: 6, NextHeader: layers.IPProtocolTCP, HopLimit: 64,
			SrcIP: net.ParseIP("2001:db8::1"), DstIP: net.ParseIP("2001:db8::2")}
		tcp.SetNetworkLayerForChecksum(ip6)
		ip = ip6
	} else {
		ip4 := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Id: id, Flags: layers.IPv4DontFragment, Protocol: layers.IPProtocolTCP,
			SrcIP: net.IPv4(192, 0, 2, 1), DstIP: net.IPv4(192, 0, 2, 2)}
		tcp.SetNetworkLayerForChecksum(ip4)
		ip = ip4
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
		eth, ip, tcp, gopacket.Payload(payload)); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// superFrame is what a TAP device with TSO hands over: the whole payload in
// one frame, the TCP checksum left partial.
func superFrame(t testing.TB, v6 bool, payload []byte, mss int) *Frame {
	data := tcpFrame(t, v6, 100, 1000, 0x80|0x10|0x08|0x01, payload)
	f := newFrame(len(data))
	copy(f.Data, data)
	f.vnet = vnet.Hdr{Flags: unix.VIRTIO_NET_HDR_F_NEEDS_CSUM, GSOType: unix.VIRTIO_NET_HDR_GSO_TCPV4,
		GSOSize: uint16(mss), CsumStart: 34, CsumOffset: 16, HdrLen: 66}
	if v6 {
		f.vnet.GSOType, f.vnet.CsumStart = unix.VIRTIO_NET_HDR_GSO_TCPV6, 54
	}
	binary.BigEndian.PutUint16(f.Data[f.vnet.CsumStart+16:], 0xdead) // whatever the kernel left there
	return f
}

func TestSegmentMatchesGopacket(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		payload := make([]byte, 5000)
		for i := range payload {
			payload[i] = byte(i * 7)
		}
		const mss = 1448
		f := superFrame(t, v6, payload, mss)
		f.setWire()
		hdr := 14 + 20 + 32
		if v6 {
			hdr = 14 + 40 + 32
		}
		if f.segs != 4 || f.wireBytes != len(f.Data)+3*hdr {
			t.Errorf("v6=%v: super-frame counts as %d packets, %d bytes", v6, f.segs, f.wireBytes)
		}
		out, err := finish(f, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(out) != 4 {
			t.Fatalf("v6=%v: %d segments, want 4", v6, len(out))
		}
		for i, g := range out {
			off := i * mss
			end := min(off+mss, len(payload))
			flags := uint8(0x10) // ACK on all
			if i == 0 {
				flags |= 0x80 // CWR on the first only
			}
			if i == len(out)-1 {
				flags |= 0x08 | 0x01 // PSH, FIN on the last only
			}
			want := tcpFrame(t, v6, 100+uint16(i), 1000+uint32(off), flags, payload[off:end])
			if !bytes.Equal(g.Data, want) {
				t.Errorf("v6=%v segment %d differs from gopacket's\n got %x\nwant %x", v6, i, g.Data[:hdr], want[:hdr])
			}
			if needsWork(g.vnet) {
				t.Errorf("segment %d still has offload work: %+v", i, g.vnet)
			}
		}
	}
}

func TestCompleteChecksum(t *testing.T) {
	eth := &layers.Ethernet{SrcMAC: macA, DstMAC: macB, EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: net.IPv4(192, 0, 2, 1), DstIP: net.IPv4(192, 0, 2, 2)}
	udp := &layers.UDP{SrcPort: 500, DstPort: 500}
	udp.SetNetworkLayerForChecksum(ip)
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
		eth, ip, udp, gopacket.Payload("IKE would be here")); err != nil {
		t.Fatal(err)
	}
	want := buf.Bytes()
	// CHECKSUM_PARTIAL: the field holds the folded pseudo-header sum. The
	// frame is short enough for gopacket to pad it to 60 bytes: the padding
	// is not part of the sum.
	got := append([]byte(nil), want...)
	udpLen := int(binary.BigEndian.Uint16(got[38:]))
	pseudo := fold(sum(got[26:34], 0) + 17 + uint64(udpLen))
	binary.BigEndian.PutUint16(got[40:], pseudo)
	h := vnet.Hdr{Flags: unix.VIRTIO_NET_HDR_F_NEEDS_CSUM, CsumStart: 34, CsumOffset: 6}
	if err := completeChecksum(h, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("completed checksum %x, gopacket's %x", got[40:42], want[40:42])
	}
	if err := completeChecksum(vnet.Hdr{CsumStart: 34, CsumOffset: 200}, got); err == nil {
		t.Error("offsets beyond the frame accepted")
	}
}

// Frames stay under fuzzMaxFrame: segmenting a 64 KB super-frame is the same
// code as a 1 KB one, and the fuzzer's minimisation of a new input costs the
// square of its length, which at 3 KB ate the whole run.
func FuzzSegment(f *testing.F) {
	const fuzzMaxFrame = 1024
	for _, v6 := range []bool{false, true} {
		sf := superFrame(f, v6, make([]byte, 300), 100)
		f.Add(sf.Data, sf.vnet.Flags, sf.vnet.GSOType, sf.vnet.GSOSize, sf.vnet.CsumStart, sf.vnet.CsumOffset)
	}
	f.Add(make([]byte, 60), uint8(1), uint8(0), uint16(0), uint16(34), uint16(6))
	f.Fuzz(func(t *testing.T, data []byte, flags, gsoType uint8, gsoSize, csumStart, csumOffset uint16) {
		if len(data) > fuzzMaxFrame {
			return
		}
		fr := newFrame(len(data))
		copy(fr.Data, data)
		fr.vnet = vnet.Hdr{Flags: flags, GSOType: gsoType, GSOSize: gsoSize, CsumStart: csumStart, CsumOffset: csumOffset}
		fr.setWire()
		if fr.segs < 1 || fr.wireBytes < len(data) {
			t.Fatalf("wire counts %d packets, %d bytes for %d", fr.segs, fr.wireBytes, len(data))
		}
		p := NewPipeline(1, "fuzz", netem.AtoB)
		p.Set(netem.Netem{}, 1500, false)
		p.Push(t0, copyFrame(fr)) // the MTU check reads the super-frame's largest packet
		gso := fr.vnet.IsGSO()
		out, err := finish(fr, nil) // releases fr when it is replaced
		if err != nil {
			return
		}
		total := 0
		if gso && len(out) > len(data)/vnet.TCPMinSndMSS+1 {
			t.Fatalf("%d bytes became %d segments", len(data), len(out))
		}
		for _, g := range out {
			if needsWork(g.vnet) {
				t.Fatalf("finished frame still needs work: %+v", g.vnet)
			}
			total += len(g.Data)
		}
		if gso {
			s, _ := parseSuperFrame(vnet.Hdr{GSOType: gsoType, GSOSize: gsoSize, CsumStart: csumStart}, data)
			if want := len(data) + (len(out)-1)*s.hdrEnd; total != want {
				t.Fatalf("segments hold %d bytes, want %d", total, want)
			}
		}
	})
}

package conn_test

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/ipseclab/ipseclab/internal/namespace"
	"github.com/ipseclab/ipseclab/internal/testenv/netenv"
	"github.com/ipseclab/ipseclab/ipsec/esp"
	"github.com/ipseclab/ipseclab/ipsec/esp/conn"
)

// ipPacket is an IPv4 packet 127.0.0.1 → 127.0.0.1 of protocol proto whose
// payload starts with n (the kernel fills in the header checksum).
func ipPacket(proto esp.Protocol, n uint32) []byte {
	p := make([]byte, 20+100)
	p[0], p[8], p[9] = 0x45, 64, byte(proto)
	binary.BigEndian.PutUint16(p[2:], uint16(len(p)))
	copy(p[12:], []byte{127, 0, 0, 1, 127, 0, 0, 1})
	binary.BigEndian.PutUint32(p[20:], n)
	return p
}

// SendIP sends each packet through the socket of its protocol, and each raw
// socket's receiver gets its protocol's packets whole, in order.
func TestRawSocketsByProtocol(t *testing.T) {
	_, ns := netenv.Netns(t, "raw")
	var n *conn.Network
	if err := namespace.RunHandle(ns, func() error {
		var err error
		n, err = conn.Open(conn.Config{NATTPort: 4500})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	sent := [][]byte{ipPacket(esp.ProtoESP, 1), ipPacket(esp.ProtoESP, 2), ipPacket(esp.ProtoAH, 3), ipPacket(esp.ProtoESP, 4)}
	if err := n.SendIP(sent); err != nil {
		t.Fatal(err)
	}
	rs := n.Receivers()
	if len(rs) != 3 || rs[0].UDP || rs[1].UDP || !rs[2].UDP {
		t.Fatalf("receivers %+v: want raw ESP, raw AH, UDP", rs)
	}
	receive := func(r esp.Receiver, want int) [][]byte {
		t.Helper()
		var got [][]byte
		done := make(chan struct{})
		go func() {
			defer close(done)
			pkts, srcs := make([][]byte, r.Batch), make([]netip.AddrPort, r.Batch)
			for len(got) < want {
				k, err := r.Receive(pkts, srcs)
				if err != nil {
					return
				}
				for _, p := range pkts[:k] {
					got = append(got, bytes.Clone(p))
				}
			}
		}()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			n.Close()
			<-done
			t.Fatalf("%d of %d packets received", len(got), want)
		}
		return got
	}
	for _, tc := range []struct {
		r     esp.Receiver
		proto esp.Protocol
		want  []uint32
	}{{rs[0], esp.ProtoESP, []uint32{1, 2, 4}}, {rs[1], esp.ProtoAH, []uint32{3}}} {
		for j, p := range receive(tc.r, len(tc.want)) {
			if len(p) != 120 || esp.Protocol(p[9]) != tc.proto || binary.BigEndian.Uint32(p[20:]) != tc.want[j] {
				t.Fatalf("%s receiver, packet %d: % x", tc.proto, j, p[:24])
			}
		}
	}
}

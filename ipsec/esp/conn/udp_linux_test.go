package conn_test

import (
	"bytes"
	"fmt"
	"net/netip"
	"testing"

	"github.com/ipseclab/ipseclab/internal/namespace"
	"github.com/ipseclab/ipseclab/internal/testenv/netenv"
	"github.com/ipseclab/ipseclab/ipsec/esp/conn"
)

// A run of equal-sized packets leaves as one GSO super-packet and arrives as
// one GRO datagram, which receive cuts back into the original packets, in
// order; a packet to another destination or of a larger size starts a new run.
func TestUDPPortSegmentationOffload(t *testing.T) {
	_, ns := netenv.Netns(t, "udpgso")
	var u *conn.UDPPortForTest
	if err := namespace.RunHandle(ns, func() error {
		var err error
		u, err = conn.NewUDPPortForTest(4500)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	self := netip.MustParseAddrPort("127.0.0.1:4500")
	other := netip.MustParseAddrPort("127.0.0.2:4500")
	var pkts [][]byte
	var dsts []netip.AddrPort
	add := func(size int, dst netip.AddrPort) {
		p := make([]byte, size)
		for i := range p {
			p[i] = byte(len(pkts) + i)
		}
		pkts = append(pkts, p)
		dsts = append(dsts, dst)
	}
	for range 40 {
		add(1400, self)
	}
	add(300, self) // the short last segment of the first run
	add(1400, other)
	add(1200, self)
	if err := u.Send(pkts, dsts); err != nil {
		t.Fatal(err)
	}
	views := make([][]byte, 64)
	srcs := make([]netip.AddrPort, 64)
	var got [][]byte
	for first := true; len(got) < 43; first = false {
		n, err := u.Receive(views, srcs)
		if err != nil {
			t.Fatal(err)
		}
		if first {
			if datagrams, segments := u.LastFill(); segments <= datagrams {
				t.Fatalf("%d datagrams read as %d segments: nothing was coalesced", datagrams, segments)
			}
		}
		for i := range n {
			got = append(got, bytes.Clone(views[i]))
			if srcs[i].Port() != 4500 {
				t.Fatalf("source %v", srcs[i])
			}
		}
	}
	if len(got) != 43 {
		t.Fatalf("%d datagrams", len(got))
	}
	for i := range 41 {
		if !bytes.Equal(got[i], pkts[i]) {
			t.Fatalf("datagram %d: %d bytes, want %d", i, len(got[i]), len(pkts[i]))
		}
	}
	// The last two went to different destinations, so either may come first.
	if !(bytes.Equal(got[41], pkts[41]) && bytes.Equal(got[42], pkts[42])) && !(bytes.Equal(got[41], pkts[42]) && bytes.Equal(got[42], pkts[41])) {
		t.Fatal("the last two datagrams differ from what was sent")
	}
}

// A receive call hands out whole coalesced datagrams, so that the segments of
// one go to the TUN together; only a datagram with more segments than the
// call takes is handed out in parts.
func TestUDPPortHandsOutWholeDatagrams(t *testing.T) {
	_, ns := netenv.Netns(t, "udpgro")
	var u *conn.UDPPortForTest
	if err := namespace.RunHandle(ns, func() error {
		var err error
		u, err = conn.NewUDPPortForTest(4500)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	self := netip.MustParseAddrPort("127.0.0.1:4500")
	var pkts [][]byte
	var dsts []netip.AddrPort
	for i := range 60 {
		size := 1000 // two runs of 30: the larger size starts the second
		if i >= 30 {
			size = 1200
		}
		pkts = append(pkts, bytes.Repeat([]byte{byte(i)}, size))
		dsts = append(dsts, self)
	}
	receive := func(batch int) []int {
		var counts []int
		views, srcs := make([][]byte, batch), make([]netip.AddrPort, batch)
		for got := 0; got < len(pkts); {
			n, err := u.Receive(views, srcs)
			if err != nil {
				t.Fatal(err)
			}
			for i := range n {
				if !bytes.Equal(views[i], pkts[got+i]) {
					t.Fatalf("batch of %d: packet %d differs", batch, got+i)
				}
			}
			got += n
			counts = append(counts, n)
		}
		return counts
	}
	for _, tc := range []struct {
		batch int
		want  string
	}{
		{40, "[30 30]"},       // the second datagram would not fit whole after the first
		{64, "[60]"},          // both fit
		{20, "[20 10 20 10]"}, // each is larger than a call: handed out in parts
	} {
		if err := u.Send(pkts, dsts); err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprint(receive(tc.batch)); got != tc.want {
			t.Errorf("batch of %d: calls returned %s packets, want %s", tc.batch, got, tc.want)
		}
	}
}

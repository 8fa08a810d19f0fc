package nat_test

import (
	"fmt"
	"testing"

	"github.com/ipseclab/ipseclab/nat/natconf"
)

// ports: random gives a privileged inside port an unprivileged outside one,
// as a Linux NAT with a port range does: IKE from UDP 500 must not come out
// of the NAT from port 70.
func TestRandomPortsAreUnprivileged(t *testing.T) {
	tb := newTestbed(t)
	tb.start(t, natconf.Config{Outside: "eth1", Ports: natconf.PortsRandom})
	out := udpSocket(t, tb.outside, ap(outsideAddr, 500))
	for _, port := range []uint16{500, 80, 1000, 4500, 40000} {
		in := udpSocket(t, tb.inside, ap(insideAddr, port))
		src := sendUDP(t, in, out, fmt.Sprint("from ", port))
		if src.Addr() != natOutside || src.Port() < 1024 {
			t.Errorf("inside port %d came out as %s; want %s with a port from 1024 up", port, src, natOutside)
		}
		// The mapping carries the answer back.
		if got := sendUDPTo(t, out, src, in, fmt.Sprint("to ", port)); got != ap(outsideAddr, 500) {
			t.Errorf("the answer to %s arrived from %s", src, got)
		}
	}
}

package labrun

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/ipseclab/ipseclab/internal/testenv/netenv"
)

// A UDP stream that names no rate is paced at DefaultUDPRate, and the report
// says so. It runs on the loopback of a throwaway namespace: no lab.
func TestUDPTrafficIsPacedByDefault(t *testing.T) {
	name, _ := netenv.Netns(t, "traffic-pace")
	ns := NetnsPath(name)
	lo := netip.MustParseAddr("127.0.0.1")
	const count, size = 100, 1000
	res, err := Traffic(context.Background(), ns, ns, lo, TrafficOptions{Count: count, Size: size, Drain: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if res.Rate != "10Mbit" || !strings.Contains(res.String(), "paced at 10Mbit") {
		t.Errorf("rate %q, report %q; want it paced at 10Mbit", res.Rate, res)
	}
	if res.Sent != count || res.Lost != 0 {
		t.Errorf("sent %d, lost %d: %s", res.Sent, res.Lost, res)
	}
	// 100 packets of 1000 bytes at 10 Mbit/s take 80 ms; unpaced, a few
	// hundred microseconds.
	if want := time.Duration(count-1) * size * 8 * time.Second / DefaultUDPRate; res.Duration < want {
		t.Errorf("sent in %v, faster than %v at %v bit/s: not paced", res.Duration, want, DefaultUDPRate)
	}

	// A rate that is given wins.
	res, err = Traffic(context.Background(), ns, ns, lo, TrafficOptions{Count: 20, Size: size, Rate: 1e6, Drain: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if res.Rate != "1Mbit" || res.Duration < 19*size*8*time.Second/1e6 {
		t.Errorf("at 1mbit: rate %q, %v for 20 packets", res.Rate, res.Duration)
	}
}

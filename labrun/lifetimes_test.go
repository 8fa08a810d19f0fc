package labrun_test

import (
	"testing"
	"time"

	"github.com/ipseclab/ipseclab/ipsec/ike"
	"github.com/ipseclab/ipseclab/labrun"
	"github.com/ipseclab/ipseclab/labs"
)

// The lifetime settings of a lab file reach ipseclab's stack: a side's own
// lifetime over the child's, rand-bytes 0 as no random part, the default
// random part as zero (the stack's 5 %), and reauth: off.
func TestLifetimeSettings(t *testing.T) {
	lab, _, err := labs.Load("lifetimes")
	if err != nil {
		t.Fatal(err)
	}
	conns := map[string]map[string]ike.Connection{}
	for _, node := range []string{"gw-a", "gw-b"} {
		conns[node] = map[string]ike.Connection{}
		for _, s := range lab.SidesOf(node) {
			conns[node][s.Conn.Name] = labrun.IKEConnection(s, ike.StartNone)
		}
	}
	if a, b := conns["gw-a"]["short-ike"], conns["gw-b"]["short-ike"]; a.Child.Lifetime != time.Hour || b.Child.Lifetime != 20*time.Second {
		t.Errorf("short-ike lifetimes: gw-a %v, gw-b %v; want the child's 1h and gw-b's own 20s", a.Child.Lifetime, b.Child.Lifetime)
	}
	if a := conns["gw-a"]["short-ike"]; !a.NoReauth || a.Lifetime != 10*time.Second {
		t.Errorf("short-ike's ISAKMP SA: lifetime %v, no reauth %v; want 10s and true", a.Lifetime, a.NoReauth)
	}
	if a := conns["gw-a"]["kilobytes"]; a.NoReauth || a.Child.RandBytes != 0 || a.Child.RandTime != 0 {
		t.Errorf("kilobytes takes the defaults: %+v", a.Child)
	}

	collision, _, err := labs.Load("rekey-collision")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range collision.SidesOf("gw-b") {
		if c := labrun.IKEConnection(s, ike.StartNone); c.Child.RandBytes != ike.NoRand || c.Child.LifeBytes != 1e6 {
			t.Errorf("rekey-collision: rand-bytes 0 should be no random part: %+v", c.Child)
		}
	}
}

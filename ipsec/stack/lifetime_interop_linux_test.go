package stack_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ipseclab/ipseclab/events"
	"github.com/ipseclab/ipseclab/ipsec/ike"
	"github.com/ipseclab/ipseclab/strongswan"
	"github.com/ipseclab/ipseclab/strongswan/swantest"
)

// Lifetimes that differ between ipseclab and charon, each side responding.
//
// charon 5.9.8 neither sends nor reads RESPONDER-LIFETIME (RFC 2407
// §4.6.3.1; quick_mode.c has no trace of it): whichever role it has, it
// keeps its own lifetimes (TestInteropLifetimeMismatch sees the same with a
// shorter offer). Our responder with the shorter lifetime says so with the
// notify, which charon ignores; each end then replaces the pair at its own
// soft limit, so the tunnel lives on.
func TestInteropResponderLifetime(t *testing.T) {
	tc := interopSuites[0]
	t.Run("ours-shorter-as-responder", func(t *testing.T) {
		l := startInteropSides(t, tc, false,
			func(c *ike.Connection) { c.Child.Lifetime = 20 * time.Second },
			func(ch *strongswan.Child) {
				ch.RekeyTime, ch.LifeTime, ch.RandTime = 54*time.Second, 60*time.Second, strongswan.None
			})
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		if err := l.charon.Initiate(ctx, swantest.ConnName, swantest.ChildName); err != nil {
			t.Fatal(err)
		}
		first := l.charonSA(ctx, t).Children[0]
		var ours ike.IPsecStatus
		eventually(t, "our pair", func() bool {
			st := l.stack.SAs()
			if len(st.IPsec) == 1 {
				ours = st.IPsec[0]
			}
			return len(st.IPsec) == 1
		})
		if ours.Lifetime != 20*time.Second {
			t.Errorf("our pair's lifetime is %v, want our own 20s", ours.Lifetime)
		}
		if !l.sent("Quick Mode 2/3", "RESPONDER-LIFETIME") {
			t.Errorf("our Quick Mode 2/3 carries no RESPONDER-LIFETIME")
		}
		// charon ignores it: its CHILD SA expires after its own minute.
		if first.ExpiresIn < 40*time.Second {
			t.Errorf("charon's CHILD SA expires in %v: it took our 20s after all", first.ExpiresIn)
		}
		// We replace the pair at 90 % of our 20 s less up to 5 %, charon
		// answers, and the new pair carries traffic.
		waitUpTo(t, "our rekey", 30*time.Second, func() bool {
			for _, e := range l.bus.Since(0) {
				if e.Kind == events.Phase2Up && strings.Contains(e.Message, "they replace "+ours.SPIIn) {
					return true
				}
			}
			return false
		})
		waitUpTo(t, "charon to install our new pair", 10*time.Second, func() bool {
			sas, _ := l.charon.ListSAs(ctx)
			for _, sa := range sas {
				for _, ch := range sa.Children {
					if ch.State == "INSTALLED" && ch.SPIIn != first.SPIIn {
						return true
					}
				}
			}
			return false
		})
		if err := swantest.UDPEcho(ctx, l.ours.h, l.ours.inner, l.peer.h, l.peer.inner, []byte("after our rekey")); err != nil {
			t.Fatal(err)
		}
		if err := swantest.UDPEcho(ctx, l.peer.h, l.peer.inner, l.ours.h, l.ours.inner, []byte("and from charon")); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("charon-shorter-as-responder", func(t *testing.T) {
		l := startInteropSides(t, tc, true,
			func(c *ike.Connection) { c.Child.Lifetime = time.Hour },
			func(ch *strongswan.Child) {
				ch.RekeyTime, ch.LifeTime, ch.RandTime = 15*time.Second, 20*time.Second, strongswan.None
			})
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		if err := l.stack.Initiate(ctx, "lab"); err != nil {
			t.Fatal(err)
		}
		first := l.charonSA(ctx, t).Children[0]
		ours := l.stack.SAs().IPsec[0]
		if ours.Lifetime != time.Hour {
			t.Errorf("our pair's lifetime is %v, want our offer of 1h", ours.Lifetime)
		}
		if l.received("Quick Mode 2/3", "") {
			t.Errorf("charon's Quick Mode 2/3 carries a notification")
		}
		// charon keeps its own 20 s without a word, and replaces the pair
		// itself at its 15 s; we answer, and the new pair carries traffic.
		t.Logf("charon's CHILD SA: rekey in %v, expires in %v (configured 15s/20s; we offered 1h)", first.RekeyIn, first.ExpiresIn)
		if first.ExpiresIn > 20*time.Second {
			t.Errorf("charon's CHILD SA expires in %v, not after its own 20s", first.ExpiresIn)
		}
		waitUpTo(t, "charon's rekey", 25*time.Second, func() bool {
			for _, e := range l.bus.Since(0) {
				if e.Kind == events.Phase2Up && strings.Contains(e.Message, "they replace "+ours.SPIIn) {
					return true
				}
			}
			return false
		})
		if err := swantest.UDPEcho(ctx, l.ours.h, l.ours.inner, l.peer.h, l.peer.inner, []byte("after charon's rekey")); err != nil {
			t.Fatal(err)
		}
		if err := swantest.UDPEcho(ctx, l.peer.h, l.peer.inner, l.ours.h, l.ours.inner, []byte("and back")); err != nil {
			t.Fatal(err)
		}
	})
}

// waitUpTo polls cond until it holds or d passes.
func waitUpTo(t testing.TB, what string, d time.Duration, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(d); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
	}
}

// sent reports whether we sent a message of this name with a notification
// of this type (any type for "").
func (l *interopLab) sent(msg, payload string) bool {
	return l.message(events.Sent, msg, payload)
}

func (l *interopLab) received(msg, payload string) bool {
	return l.message(events.Received, msg, payload)
}

func (l *interopLab) message(dir events.Direction, msg, notify string) bool {
	for _, e := range l.bus.Since(0) {
		if e.Kind != events.IKEMessage || e.IKE == nil || e.IKE.Dir != dir || !strings.Contains(e.Message, msg) {
			continue
		}
		types := fmt.Sprint(e.Fields["notify"])
		if e.Fields["notify"] != nil && strings.Contains(types, notify) {
			return true
		}
	}
	return false
}

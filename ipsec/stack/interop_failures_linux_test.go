package stack_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ipseclab/ipseclab/events"
	"github.com/ipseclab/ipseclab/ipsec/ike"
	"github.com/ipseclab/ipseclab/strongswan/swantest"
)

// TestInteropWrongPSK: against charon with another pre-shared key, our side
// reports AUTHENTICATION-FAILED naming its connection, whoever initiates.
func TestInteropWrongPSK(t *testing.T) {
	for _, weInitiate := range []bool{true, false} {
		name := "charon-to-ours"
		if weInitiate {
			name = "ours-to-charon"
		}
		t.Run(name, func(t *testing.T) {
			tc := interopSuites[0]
			l := startInteropWith(t, tc, weInitiate, func(c *ike.Connection) { c.PSK = "not the same secret" })
			ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
			defer cancel()
			if weInitiate {
				if err := l.stack.Initiate(ctx, "lab"); err == nil {
					t.Fatal("negotiated with a different pre-shared key")
				}
			} else {
				// charon gives up on its own after its retransmissions;
				// what matters is our side.
				go l.charon.Initiate(ctx, swantest.ConnName, swantest.ChildName)
			}
			var e events.Event
			eventually(t, "our AuthFailed event", func() bool {
				for _, ev := range l.bus.Since(0) {
					if ev.Kind == events.AuthFailed {
						e = ev
						return true
					}
				}
				return false
			})
			t.Logf("ours: %s", e.Message)
			if e.Conn != "lab" || !strings.Contains(e.Message, "connection lab") {
				t.Errorf("AuthFailed does not name the connection: %s", e)
			}
			if st := l.stack.SAs(); len(st.ISAKMP) != 0 || len(st.IPsec) != 0 {
				t.Errorf("SAs left: %+v", st)
			}
		})
	}
}

// TestInteropRekey: with a short lifetime of our choosing, we rekey the IPsec
// SAs with charon before they expire; charon installs the new pair and
// drops the old one on our Delete, and traffic goes through the new pair.
func TestInteropRekey(t *testing.T) {
	tc := interopSuites[1]
	l := startInteropWith(t, tc, true, func(c *ike.Connection) { c.Child.Lifetime = 20 * time.Second })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := l.stack.Initiate(ctx, "lab"); err != nil {
		t.Fatal(err)
	}
	first := l.charonSA(ctx, t).Children[0]
	// We rekey at 17-18 s, and delete the old pair 5 s later.
	deadline := time.Now().Add(40 * time.Second)
	for {
		sas, err := l.charon.ListSAs(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(sas) == 1 && len(sas[0].Children) == 1 && sas[0].Children[0].SPIIn != first.SPIIn && sas[0].Children[0].State == "INSTALLED" {
			ours := l.stack.SAs().IPsec
			if len(ours) == 1 && ours[0].SPIOut == fmt.Sprintf("%08x", sas[0].Children[0].SPIIn) {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no rekeyed pair on both sides; charon lists %+v, we list %+v", sas, l.stack.SAs().IPsec)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err := swantest.UDPEcho(ctx, l.ours.h, l.ours.inner, l.peer.h, l.peer.inner, []byte("after the rekey")); err != nil {
		t.Fatal(err)
	}
}

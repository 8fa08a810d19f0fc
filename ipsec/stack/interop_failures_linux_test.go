package stack_test

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
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

// TestInteropMismatches: against charon configured with the modp suite
// (aes128-sha256-modp2048 in phase 1, aes128-sha256-modp2048 with PFS in
// Quick Mode, one host each side), our side with one thing changed. When we
// initiate, our side shows charon's refusal and what it means; when charon
// initiates, our side names what charon offered against what we have.
func TestInteropMismatches(t *testing.T) {
	for _, tc := range []struct {
		name   string
		charon *interopCase // charon's suites, if not the modp ones
		change func(c *ike.Connection)
		// we initiate: the notify charon answers with, and the event of
		// ours that must carry an explanation.
		charonSends string
		oursKind    events.Kind
		// charon initiates: what our refusal says.
		weSay []string
	}{{
		name:        "phase1-dh-group",
		change:      func(c *ike.Connection) { c.Proposals = ikeProposals(t, "aes128-sha256-ecp256") },
		charonSends: "NO-PROPOSAL-CHOSEN", oursKind: events.NoProposal,
		weSay: []string{"the Diffie-Hellman group differs (modp2048 offered, ecp256 configured)"},
	}, {
		name:        "pfs-on-charon-only",
		change:      func(c *ike.Connection) { c.Child.Proposals = espProposals(t, "aes128-sha256") },
		charonSends: "NO-PROPOSAL-CHOSEN", oursKind: events.Phase2Failed,
		weSay: []string{"PFS on the peer's side only: it asks for PFS with modp2048, this side has no PFS configured"},
	}, {
		name:        "pfs-groups",
		change:      func(c *ike.Connection) { c.Child.Proposals = espProposals(t, "aes128-sha256-ecp256") },
		charonSends: "NO-PROPOSAL-CHOSEN", oursKind: events.Phase2Failed,
		weSay: []string{"the PFS group differs (modp2048 offered, ecp256 configured)"},
	}, {
		name:        "pfs-on-ours-only",
		charon:      &interopCase{name: "no-pfs", ike: "aes128-sha256-modp2048", esp: "aes128gcm16"},
		change:      func(c *ike.Connection) { c.Child.Proposals = espProposals(t, "aes128gcm16-ecp256") },
		charonSends: "NO-PROPOSAL-CHOSEN", oursKind: events.Phase2Failed,
		weSay: []string{"PFS on this side only: the offer has no DH group, this side requires PFS with ecp256"},
	}, {
		name: "selectors",
		change: func(c *ike.Connection) {
			c.Child.RemoteTS = netip.PrefixFrom(c.Child.RemoteTS.Addr().Next(), 32)
		},
		charonSends: "INVALID-ID-INFORMATION", oursKind: events.Phase2Failed,
		weSay: []string{"its own network (IDci)", "is not within our remote-ts"},
	}} {
		for _, weInitiate := range []bool{true, false} {
			dir := "charon-to-ours"
			if weInitiate {
				dir = "ours-to-charon"
			}
			t.Run(tc.name+"/"+dir, func(t *testing.T) {
				suite := interopSuites[0]
				if tc.charon != nil {
					suite = *tc.charon
				}
				l := startInteropWith(t, suite, weInitiate, func(c *ike.Connection) {
					c.Retransmit = ike.Retransmit{Timeout: 500 * time.Millisecond, Tries: 2}
					tc.change(c)
				})
				ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
				defer cancel()
				if weInitiate {
					err := l.stack.Initiate(ctx, "lab")
					if err == nil {
						t.Fatal("negotiated despite the mismatch")
					}
					t.Logf("Initiate: %v", err)
					if !strings.Contains(err.Error(), tc.charonSends) {
						t.Errorf("our side does not report charon's %s: %v", tc.charonSends, err)
					}
					e := l.waitEvent(t, tc.oursKind, "")
					t.Logf("ours: %s\n  ↳ %s", e.Message, e.Explain)
					if e.Explain == "" {
						t.Errorf("our %s explains nothing: %s", e.Kind, e)
					}
					return
				}
				go l.charon.Initiate(ctx, swantest.ConnName, swantest.ChildName)
				kind := events.NoProposal
				if tc.charonSends == "INVALID-ID-INFORMATION" {
					kind = events.Phase2Failed
				}
				e := l.waitEvent(t, kind, "")
				t.Logf("ours: %s\n  ↳ %s", e.Message, e.Explain)
				for _, want := range tc.weSay {
					if !strings.Contains(e.Message+" "+e.Explain, want) {
						t.Errorf("our %s does not say %q", e.Kind, want)
					}
				}
			})
		}
	}
}

// waitEvent waits for our first event of kind whose message holds substr.
func (l *interopLab) waitEvent(t *testing.T, kind events.Kind, substr string) events.Event {
	t.Helper()
	var e events.Event
	eventually(t, "our "+string(kind)+" event", func() bool {
		for _, ev := range l.bus.Since(0) {
			if ev.Kind == kind && strings.Contains(ev.Message, substr) {
				e = ev
				return true
			}
		}
		return false
	})
	return e
}

// TestInteropLifetimeMismatch: a lifetime that differs from charon's is no
// failure, whoever initiates: our IPsec SAs take the shorter one (ours
// here); charon 5.9 accepts the offer, logs the difference ("received 600s
// lifetime, configured 3960s") and keeps its own lifetimes, so the side
// with the shorter one rekeys first.
func TestInteropLifetimeMismatch(t *testing.T) {
	for _, weInitiate := range []bool{true, false} {
		dir := "charon-to-ours"
		if weInitiate {
			dir = "ours-to-charon"
		}
		t.Run(dir, func(t *testing.T) {
			l := startInteropWith(t, interopSuites[1], weInitiate, func(c *ike.Connection) { c.Child.Lifetime = 10 * time.Minute })
			ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
			defer cancel()
			if weInitiate {
				if err := l.stack.Initiate(ctx, "lab"); err != nil {
					t.Fatalf("a lifetime mismatch failed the negotiation: %v", err)
				}
			} else {
				go l.charon.Initiate(ctx, swantest.ConnName, swantest.ChildName)
			}
			e := l.waitEvent(t, events.Phase2Up, "")
			if got := e.Fields["lifetime_s"]; got != 600.0 {
				t.Errorf("our IPsec SAs live %v s, want our shorter 600", got)
			}
			child := l.charonSA(ctx, t).Children[0]
			t.Logf("ours: %s\ncharon's child rekeys in %v, expires in %v", e.Message, child.RekeyIn, child.ExpiresIn)
			if child.ExpiresIn <= 10*time.Minute {
				t.Errorf("charon's IPsec SA expires in %v: it took our lifetime (the lesson says it keeps its own)", child.ExpiresIn)
			}
			if weInitiate {
				l.logMu.Lock()
				logged := slices.ContainsFunc(l.log, func(s string) bool { return strings.Contains(s, "received 600s lifetime, configured 3960s") })
				l.logMu.Unlock()
				if !logged {
					t.Errorf("charon did not log the lifetime it was offered against its own")
				}
			}
		})
	}
}

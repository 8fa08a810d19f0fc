package stack_test

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/ipseclab/ipseclab/events"
	"github.com/ipseclab/ipseclab/ipsec/ike"
	"github.com/ipseclab/ipseclab/ipsec/isakmp"
	"github.com/ipseclab/ipseclab/ipsec/proposal"
	"github.com/ipseclab/ipseclab/ipsec/stack/sim"
)

// TestWrongPSK: with different pre-shared keys both sides fail cleanly, each
// publishing AUTHENTICATION-FAILED with its own connection's name, and no SA
// is left anywhere.
func TestWrongPSK(t *testing.T) {
	for _, mode := range []ike.Mode{ike.MainMode, ike.AggressiveMode} {
		t.Run(mode.String(), func(t *testing.T) {
			w := newWorld(t)
			rec := w.record(events.AuthFailed, events.Phase1Failed)
			ca, cb := connPair(t, mode, "aes128-sha256-modp2048", "aes128gcm16")
			ca.Name, cb.Name = "to-b", "from-a"
			cb.PSK = "another-secret"
			a, b := w.pair(ca, cb, nil)
			err := a.stack.Initiate(ctx(t), "to-b")
			if err == nil || !strings.Contains(err.Error(), "authentication") {
				t.Fatalf("Initiate returned %v, want an authentication failure", err)
			}
			ea := rec.waitFor(t, events.AuthFailed, "A", "")
			eb := rec.waitFor(t, events.AuthFailed, "B", "")
			if ea.Conn != "to-b" || eb.Conn != "from-a" || !strings.Contains(ea.Message, "to-b") || !strings.Contains(eb.Message, "from-a") {
				t.Errorf("AuthFailed events do not name the connections: %q / %q", ea.Message, eb.Message)
			}
			for _, n := range []*gw{a, b} {
				if st := n.stack.SAs(); len(st.ISAKMP) != 0 || len(st.IPsec) != 0 {
					t.Errorf("%s still holds SAs: %+v", n.name, st)
				}
			}
		})
	}
}

// TestMismatchesAreNamed: each kind of mismatch fails with its notify, and
// both sides explain it: the responder names what was offered and what it
// has, attribute by attribute; the initiator what the notify means. A
// failed Quick Mode leaves phase 1 up on both sides.
func TestMismatchesAreNamed(t *testing.T) {
	for _, tc := range []struct {
		name      string
		change    func(a, b *ike.Connection)
		notify    string
		phase2    bool
		responder []string // in B's event, message and explanation
		initiator []string // in A's
	}{{
		name:      "phase1-dh-group",
		change:    func(a, b *ike.Connection) { b.Proposals = ikeProposals(t, "aes128-sha256-ecp256") },
		notify:    "NO-PROPOSAL-CHOSEN",
		responder: []string{"the Diffie-Hellman group differs (modp2048 offered, ecp256 configured)", "nearest pair: aes128-sha256-modp2048 offered, aes128-sha256-ecp256 configured"},
		initiator: []string{"none of our phase 1 suites"},
	}, {
		name: "phase1-cipher-and-hash",
		change: func(a, b *ike.Connection) {
			b.Proposals = ikeProposals(t, "aes256-sha384-modp2048", "3des-sha1-ecp256")
		},
		notify:    "NO-PROPOSAL-CHOSEN",
		responder: []string{"the cipher differs (aes128 offered, aes256 configured); the hash differs (sha256 offered, sha384 configured)"},
		initiator: []string{"none of our phase 1 suites"},
	}, {
		name:      "pfs-on-the-initiator-only",
		change:    func(a, b *ike.Connection) { a.Child.Proposals = espProposals(t, "aes128gcm16-modp2048") },
		notify:    "NO-PROPOSAL-CHOSEN",
		phase2:    true,
		responder: []string{"PFS on the peer's side only: it asks for PFS with modp2048, this side has no PFS configured"},
		initiator: []string{"Phase 1 worked", "PFS"},
	}, {
		name:      "pfs-on-the-responder-only",
		change:    func(a, b *ike.Connection) { b.Child.Proposals = espProposals(t, "aes128gcm16-modp2048") },
		notify:    "NO-PROPOSAL-CHOSEN",
		phase2:    true,
		responder: []string{"PFS on this side only: the offer has no DH group, this side requires PFS with modp2048"},
		initiator: []string{"Phase 1 worked"},
	}, {
		name: "pfs-groups",
		change: func(a, b *ike.Connection) {
			a.Child.Proposals = espProposals(t, "aes128gcm16-curve25519")
			b.Child.Proposals = espProposals(t, "aes128gcm16-ecp256")
		},
		notify:    "NO-PROPOSAL-CHOSEN",
		phase2:    true,
		responder: []string{"the PFS group differs (curve25519 offered, ecp256 configured)"},
		initiator: []string{"Phase 1 worked"},
	}, {
		name:      "esp-cipher",
		change:    func(a, b *ike.Connection) { b.Child.Proposals = espProposals(t, "aes256gcm16") },
		notify:    "NO-PROPOSAL-CHOSEN",
		phase2:    true,
		responder: []string{"the cipher differs (aes128gcm16 offered, aes256gcm16 configured)"},
		initiator: []string{"Phase 1 worked"},
	}, {
		name:      "initiator-network",
		change:    func(a, b *ike.Connection) { b.Child.RemoteTS = netip.MustParsePrefix("10.1.1.0/24") },
		notify:    "INVALID-ID-INFORMATION",
		phase2:    true,
		responder: []string{"its own network (IDci) 10.1.0.0/24 is not within our remote-ts 10.1.1.0/24"},
		initiator: []string{"no connection whose selectors hold ours"},
	}, {
		name:      "responder-network",
		change:    func(a, b *ike.Connection) { b.Child.LocalTS = netip.MustParsePrefix("10.2.0.0/25") },
		notify:    "INVALID-ID-INFORMATION",
		phase2:    true,
		responder: []string{"the network it wants to reach (IDcr) 10.2.0.0/24 is not within our local-ts 10.2.0.0/25"},
		initiator: []string{"no connection whose selectors hold ours"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			rec := w.record(events.NoProposal, events.Phase2Failed)
			ca, cb := connPair(t, ike.MainMode, "aes128-sha256-modp2048", "aes128gcm16")
			tc.change(&ca, &cb)
			a, b := w.pair(ca, cb, nil)
			if err := a.stack.Initiate(ctx(t), "lab"); err == nil || !strings.Contains(err.Error(), tc.notify) {
				t.Fatalf("Initiate returned %v, want %s", err, tc.notify)
			}
			// The responder's explanation is on its NO-PROPOSAL-CHOSEN event,
			// or (selectors) on its failed Quick Mode; the initiator's on
			// the event of the notify it received.
			kindB, kindA, subB, subA := events.NoProposal, events.NoProposal, "sent", "from"
			if tc.notify == "INVALID-ID-INFORMATION" {
				kindB, kindA, subB, subA = events.Phase2Failed, events.Phase2Failed, "", "INVALID-ID-INFORMATION"
			}
			eb, ea := rec.waitFor(t, kindB, "B", subB), rec.waitFor(t, kindA, "A", subA)
			if kindB == events.NoProposal {
				offered, accepted := suiteNames(ca.Proposals), suiteNames(cb.Proposals)
				if tc.phase2 {
					offered, accepted = "esp:"+suiteNames(ca.Child.Proposals), suiteNames(cb.Child.Proposals)
				}
				if !strings.Contains(eb.Message, "it offered ["+offered+"], we accept ["+accepted+"]") {
					t.Errorf("B's event does not list what was offered (%s) and what it accepts (%s): %s", offered, accepted, eb.Message)
				}
			}
			for _, want := range tc.responder {
				if !strings.Contains(eb.Message+" "+eb.Explain, want) {
					t.Errorf("B's %s does not say %q:\n%s\n%s", eb.Kind, want, eb.Message, eb.Explain)
				}
			}
			for _, want := range tc.initiator {
				if !strings.Contains(ea.Message+" "+ea.Explain, want) {
					t.Errorf("A's %s does not say %q:\n%s\n%s", ea.Kind, want, ea.Message, ea.Explain)
				}
			}
			for _, n := range []*gw{a, b} {
				p1, p2 := n.established()
				switch {
				case tc.phase2 && (p1 != 1 || p2 != 0):
					t.Errorf("%s holds %d ISAKMP and %d IPsec SAs, want 1 and 0", n.name, p1, p2)
				case !tc.phase2 && p1+p2 != 0:
					t.Errorf("%s holds %d ISAKMP and %d IPsec SAs after a failed phase 1", n.name, p1, p2)
				}
			}
		})
	}
}

// TestLifetimeMismatchIsNoFailure: IKEv1 does not compare lifetimes when it
// chooses a proposal (phase 1's differ here too): the IPsec SAs take the
// shorter one on both sides, whichever side has it (a responder with the
// shorter one says so with RESPONDER-LIFETIME, RFC 2407 §4.6.3.1, as
// strongSwan does), and the side whose own was longer says so.
func TestLifetimeMismatchIsNoFailure(t *testing.T) {
	for _, shorterOn := range []string{"A", "B"} {
		t.Run("shorter-on-"+shorterOn, func(t *testing.T) {
			w := newWorld(t)
			rec := w.record(events.Phase2Up, events.Phase1Up)
			ca, cb := connPair(t, ike.MainMode, "aes128-sha256-modp2048", "aes128gcm16")
			ca.Lifetime, cb.Lifetime = 4*time.Hour, 4*time.Hour
			ca.Child.Lifetime, cb.Child.Lifetime = time.Hour, time.Hour
			short := &ca
			if shorterOn == "B" {
				short = &cb
			}
			short.Lifetime, short.Child.Lifetime = 2*time.Hour, 10*time.Minute
			a, _ := w.pair(ca, cb, nil)
			if err := a.stack.Initiate(ctx(t), "lab"); err != nil {
				t.Fatalf("a lifetime mismatch failed the negotiation: %v", err)
			}
			for _, node := range []string{"A", "B"} {
				e := rec.waitFor(t, events.Phase2Up, node, "")
				if got := e.Fields["lifetime_s"]; got != 600.0 {
					t.Errorf("%s's IPsec SAs live %v s, want the shorter 600", node, got)
				}
				// The side whose own lifetime was longer says whose applies.
				if node != shorterOn && (!strings.Contains(e.Message, "lifetime 10m0s, the peer's, shorter than our 1h0m0s") || !strings.Contains(e.Explain, "takes the shorter")) {
					t.Errorf("%s's phase2-up does not explain the lifetime: %s\n%s", node, e.Message, e.Explain)
				}
			}
		})
	}
}

// TestSilentResponderIsExplained: a responder that never answers Quick Mode
// (its Quick Modes lost on the way) is not a refusal: the initiator's
// failure says that silence is not how a peer refuses, and what it means.
func TestSilentResponderIsExplained(t *testing.T) {
	w := newWorld(t)
	rec := w.record(events.Phase2Failed)
	ca, cb := connPair(t, ike.MainMode, "aes128-sha256-modp2048", "aes128gcm16")
	ca.Retransmit = ike.Retransmit{Timeout: time.Second, Tries: 1}
	w.net.SetFilter(func(d *sim.Datagram) bool {
		h, isIKE := ikeHeader(d)
		return !isIKE || h.Exchange != isakmp.ExchangeQuickMode
	})
	a, _ := w.pair(ca, cb, nil)
	done := make(chan error, 1)
	go func() { done <- a.stack.Initiate(context.Background(), "lab") }()
	w.advanceUntil(t, "A gives up its Quick Mode", 500*time.Millisecond, time.Minute, func() bool {
		return len(rec.find(events.Phase2Failed, "A", "no answer")) > 0
	})
	if err := <-done; err == nil || !strings.Contains(err.Error(), "no answer to Quick Mode 1/3") {
		t.Fatalf("Initiate returned %v", err)
	}
	e := rec.find(events.Phase2Failed, "A", "no answer")[0]
	if !strings.Contains(e.Explain, "did not answer") || !strings.Contains(e.Explain, "says why") {
		t.Errorf("the failure does not explain the silence: %s", e.Explain)
	}
}

// suiteNames lists suites as the events do: "a, b".
func suiteNames(ps []proposal.Proposal) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ", ")
}

package stack_test

import (
	"strings"
	"testing"

	"github.com/ipseclab/ipseclab/events"
	"github.com/ipseclab/ipseclab/ipsec/ike"
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

// TestProposalMismatch: no common suite gives NO-PROPOSAL-CHOSEN, naming
// what was offered and what is accepted, in phase 1 and in Quick Mode.
func TestProposalMismatch(t *testing.T) {
	t.Run("phase1", func(t *testing.T) {
		w := newWorld(t)
		rec := w.record(events.NoProposal)
		ca, cb := connPair(t, ike.MainMode, "aes128-sha256-modp2048", "aes128gcm16")
		cb.Proposals = ikeProposals(t, "aes256-sha384-ecp384", "3des-sha1-modp1024")
		a, _ := w.pair(ca, cb, nil)
		if err := a.stack.Initiate(ctx(t), "lab"); err == nil || !strings.Contains(err.Error(), "NO-PROPOSAL-CHOSEN") {
			t.Fatalf("Initiate returned %v, want NO-PROPOSAL-CHOSEN", err)
		}
		sent := rec.waitFor(t, events.NoProposal, "B", "sent")
		if !strings.Contains(sent.Message, "aes128-sha256-modp2048") || !strings.Contains(sent.Message, "aes256-sha384-ecp384, 3des-sha1-modp1024") {
			t.Errorf("B's event does not say what was offered and what is accepted: %s", sent.Message)
		}
		rec.waitFor(t, events.NoProposal, "A", "from")
	})
	t.Run("quick-mode", func(t *testing.T) {
		w := newWorld(t)
		rec := w.record(events.NoProposal, events.Phase2Failed)
		ca, cb := connPair(t, ike.MainMode, "aes128-sha256-modp2048", "aes128gcm16-modp2048")
		cb.Child.Proposals = espProposals(t, "aes128gcm16") // no PFS: the offers differ in their group
		a, b := w.pair(ca, cb, nil)
		if err := a.stack.Initiate(ctx(t), "lab"); err == nil || !strings.Contains(err.Error(), "NO-PROPOSAL-CHOSEN") {
			t.Fatalf("Initiate returned %v, want NO-PROPOSAL-CHOSEN", err)
		}
		sent := rec.waitFor(t, events.NoProposal, "B", "sent")
		if !strings.Contains(sent.Message, "esp:aes128gcm16-modp2048") || !strings.Contains(sent.Message, "[aes128gcm16]") {
			t.Errorf("B's event: %s", sent.Message)
		}
		rec.waitFor(t, events.Phase2Failed, "A", "")
		// Phase 1 stays up: only the Quick Mode failed.
		if p1, p2 := a.established(); p1 != 1 || p2 != 0 {
			t.Errorf("A holds %d ISAKMP and %d IPsec SAs, want 1 and 0", p1, p2)
		}
		if p1, p2 := b.established(); p1 != 1 || p2 != 0 {
			t.Errorf("B holds %d ISAKMP and %d IPsec SAs, want 1 and 0", p1, p2)
		}
	})
}

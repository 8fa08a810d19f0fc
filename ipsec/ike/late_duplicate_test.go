package ike_test

import (
	"testing"

	"github.com/ipseclab/ipseclab/ipsec/ike"
)

// A busy responder answers the first copy of a first message; the
// initiator's retransmission of it waits in the queue and arrives after
// phase 1 (and Quick Mode) completed. It is a late duplicate: counted as
// one, answered with nothing, and not counted as malformed. So is any
// message the responder accepted before its last one.
func TestLateRepeatOfAnEarlierMessageIsADuplicate(t *testing.T) {
	for _, mode := range []ike.Mode{ike.MainMode, ike.AggressiveMode} {
		t.Run(mode.String(), func(t *testing.T) {
			ci, cr := conns(t, mode, "aes128-sha256-modp2048", "aes128gcm16")
			p := newPair(t, 7, ci, cr)
			if err := p.initiate(t); err != nil {
				t.Fatal(err)
			}
			var toResponder []datagram
			for _, d := range p.wire.log {
				if d.to.Addr() == addrR {
					toResponder = append(toResponder, d)
				}
			}
			if len(toResponder) < 3 {
				t.Fatalf("%d messages reached the responder, want phase 1 and Quick Mode", len(toResponder))
			}
			before := p.r.Stats()
			sentBefore := len(p.wire.log)
			first := toResponder[0]
			p.r.Receive(ike.Packet{Local: first.to, Remote: first.from, Data: first.data})
			after := p.r.Stats()
			if after.Duplicates != before.Duplicates+1 || after.Malformed != before.Malformed {
				t.Errorf("the first message again, after phase 1: duplicates %d → %d, malformed %d → %d; want one more duplicate and no malformed",
					before.Duplicates, after.Duplicates, before.Malformed, after.Malformed)
			}
			if len(p.wire.log) != sentBefore {
				t.Errorf("the responder answered a late duplicate: %d messages sent", len(p.wire.log)-sentBefore)
			}
			if got := len(p.r.SAs().IPsec); got == 0 {
				t.Errorf("the late duplicate cost the responder its IPsec SAs")
			}
		})
	}
}

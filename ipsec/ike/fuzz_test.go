package ike_test

import (
	"bytes"
	"net/netip"
	"testing"

	"github.com/ipseclab/ipseclab/ipsec/ike"
)

// transcript records the messages of a complete Main Mode plus Quick Mode
// between the harness's two engines (seed 9), to seed the fuzzer with
// messages that reach every state of the responder.
func transcript(t testing.TB) []datagram {
	ci, cr := conns(t, ike.MainMode, "aes128-sha256-curve25519", "aes128gcm16-curve25519")
	p := newPair(t, 9, ci, cr)
	if err := p.initiate(t); err != nil {
		t.Fatal(err)
	}
	return p.wire.log
}

// FuzzReceive feeds arbitrary bytes to the responder's receive path in each
// state of a negotiation: after replaying the first n messages of a real
// exchange (same seeds, so the same cookies and keys), the input arrives as
// the next message, from the initiator's address, on port 500 or 4500. The
// engine must neither panic nor count an internal error, whatever it gets.
func FuzzReceive(f *testing.F) {
	log := transcript(f)
	for n, d := range log {
		if d.to.Addr() == addrR {
			f.Add(uint8(n), false, d.data)
			f.Add(uint8(n), true, d.data)
		}
	}
	f.Add(uint8(0), false, []byte{})
	f.Add(uint8(3), false, []byte("not an ISAKMP message at all, but long enough to have a header"))
	f.Fuzz(func(t *testing.T, state uint8, natt bool, data []byte) {
		ci, cr := conns(t, ike.MainMode, "aes128-sha256-curve25519", "aes128gcm16-curve25519")
		ci.Child.Start = ike.StartStart // Start sends MM1 at once, on this goroutine
		p := newPair(t, 9, ci, cr)
		if err := p.i.Start(); err != nil {
			t.Fatal(err)
		}
		// Replay the exchange up to state: the same seeds give the same
		// messages as in the transcript.
		n := int(state) % (len(log) + 1)
		for i := 0; i < n && p.deliver(); i++ {
		}
		local := netip.AddrPortFrom(addrR, 500)
		if natt {
			local = netip.AddrPortFrom(netip.Addr{}, 4500)
		}
		p.r.Receive(ike.Packet{Local: local, Remote: netip.AddrPortFrom(addrI, local.Port()), Data: data})
		for i := 0; i < 20 && p.deliver(); i++ {
		}
		if s := p.r.Stats(); s.InternalErrors != 0 {
			t.Fatalf("internal error in state %d: %+v", n, s)
		}
		if s := p.i.Stats(); s.InternalErrors != 0 {
			t.Fatalf("the initiator hit an internal error: %+v", s)
		}
		p.i.Abandon()
		p.r.Abandon()
	})
}

// TestReplayReachesEveryState checks the fuzzer's premise: replaying the
// transcript with the same seeds reproduces it, so that the seeds of
// FuzzReceive reach the responder in each state, the last one established.
func TestReplayReachesEveryState(t *testing.T) {
	log := transcript(t)
	ci, cr := conns(t, ike.MainMode, "aes128-sha256-curve25519", "aes128gcm16-curve25519")
	ci.Child.Start = ike.StartStart
	p := newPair(t, 9, ci, cr)
	if err := p.i.Start(); err != nil {
		t.Fatal(err)
	}
	for i := range log {
		if len(p.wire.queue) == 0 || !bytes.Equal(p.wire.queue[0].data, log[i].data) {
			t.Fatalf("message %d of the replay differs from the transcript", i+1)
		}
		p.deliver()
	}
	if st := p.r.SAs(); len(st.ISAKMP) != 1 || st.ISAKMP[0].State != "established" || len(st.IPsec) != 1 {
		t.Fatalf("after the replay the responder holds %+v", st)
	}
}

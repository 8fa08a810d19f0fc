package stack_test

import (
	"encoding/binary"
	"fmt"
	mrand "math/rand/v2"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/ipseclab/ipseclab/events"
	"github.com/ipseclab/ipseclab/ipsec/ike"
	"github.com/ipseclab/ipseclab/ipsec/isakmp"
	"github.com/ipseclab/ipseclab/ipsec/stack"
	"github.com/ipseclab/ipseclab/ipsec/stack/sim"
)

// bogusMM1 is a well-formed Main Mode first message with an offer B accepts,
// from an initiator that will never answer MM2.
func bogusMM1(r *mrand.Rand) []byte {
	var cky isakmp.Cookie
	binary.BigEndian.PutUint64(cky[:], r.Uint64()|1)
	offer := &isakmp.SA{DOI: isakmp.DOIIPsec, Situation: isakmp.SituationIdentityOnly, Proposals: []isakmp.Proposal{{
		Number: 1, Protocol: isakmp.ProtocolISAKMP, Transforms: []isakmp.Transform{{Number: 1, ID: isakmp.TransformKeyIKE,
			Attributes: isakmp.Phase1Attributes{Encryption: isakmp.EncAESCBC, KeyLength: 128, Hash: isakmp.HashSHA2_256,
				AuthMethod: isakmp.AuthMethodPSK, Group: isakmp.GroupMODP2048, LifeSeconds: 3600}.Attributes()}},
	}}}
	b, err := (&isakmp.Message{Header: isakmp.Header{InitiatorCookie: cky, Exchange: isakmp.ExchangeMainMode}, Payloads: []isakmp.Payload{offer}}).Encode()
	if err != nil {
		panic(err)
	}
	return b
}

// floodPair is A and B where B accepts any peer, so that forged first
// messages create half-open SAs.
func floodPair(t *testing.T, mutate func(*stack.Config)) (*world, *gw, *gw) {
	w := newWorld(t)
	ca, cb := connPair(t, ike.MainMode, "aes128-sha256-modp2048", "aes128gcm16")
	cb.Remote = netip.Addr{}
	a, b := w.pair(ca, cb, mutate)
	return w, a, b
}

// negotiateUnderFire initiates from A while flood runs, moving the clock so
// that lost messages are retransmitted.
func negotiateUnderFire(t *testing.T, w *world, a, b *gw, flood func()) {
	t.Helper()
	stop := make(chan struct{})
	go func() {
		defer close(stop)
		flood()
	}()
	done := initiateAsync(t, a, "lab")
	var err error
	w.advanceUntil(t, "A's negotiation", 250*time.Millisecond, time.Minute, func() bool {
		select {
		case err = <-done:
			return true
		default:
			return false
		}
	})
	<-stop
	if err != nil {
		t.Fatalf("the legitimate negotiation failed under the flood: %v", err)
	}
	// QM3 may have been lost in the flood too: B then resends QM2.
	w.advanceUntil(t, "both sides' SAs", 250*time.Millisecond, time.Minute, func() bool {
		return len(a.installed()) == 1 && len(b.installed()) == 1
	})
}

// TestFloodFromOneSource: thousands of first messages from one address get
// at most HalfOpenPerPeer SAs, each new one evicting the oldest; a real peer
// negotiates meanwhile.
func TestFloodFromOneSource(t *testing.T) {
	w, a, b := floodPair(t, nil)
	r := mrand.New(mrand.NewPCG(1, 2))
	attacker := netip.MustParseAddrPort("198.51.100.66:500")
	negotiateUnderFire(t, w, a, b, func() {
		for range 5000 {
			w.net.Inject(sim.Datagram{Src: attacker, Dst: netip.AddrPortFrom(addrB, 500), Proto: sim.ProtoUDP, Data: bogusMM1(r)})
		}
	})
	checkPairMirrors(t, a, b)
	st := b.stack.Stats().IKE
	if st.HalfOpen > ike.DefaultHalfOpenPerPeer || st.HalfOpenEvicted == 0 {
		t.Errorf("B: %d half-open SAs, %d evicted, %d refused; want at most %d from the one source, each new one making room", st.HalfOpen, st.HalfOpenEvicted, st.HalfOpenDropped, ike.DefaultHalfOpenPerPeer)
	}
}

// TestFloodFromManySources: forged first messages from as many addresses:
// the per-source limit does not apply, the half-open SAs fill the node's
// limit, and the real peer gets in anyway: its first message is retried until
// the forged SAs are old enough to make room, and its SA, once it answers our
// cookie, is never the one to go.
func TestFloodFromManySources(t *testing.T) {
	w, a, b := floodPair(t, func(c *stack.Config) { c.Tuning.HalfOpenLimit = 2000 })
	rec := w.record()
	start := w.clock.Now()
	r := mrand.New(mrand.NewPCG(3, 4))
	negotiateUnderFire(t, w, a, b, func() {
		for i := range 20000 {
			src := netip.AddrPortFrom(netip.AddrFrom4([4]byte{100, 64, byte(i >> 8), byte(i)}), 500)
			w.net.Inject(sim.Datagram{Src: src, Dst: netip.AddrPortFrom(addrB, 500), Proto: sim.ProtoUDP, Data: bogusMM1(r)})
		}
	})
	checkPairMirrors(t, a, b)
	all := b.stack.Stats()
	t.Logf("B: %d first messages answered, %d half-open now, %d evicted, %d refused; %d dropped before the engine, %d lost in the network",
		all.IKE.Sent, all.IKE.HalfOpen, all.IKE.HalfOpenEvicted, all.IKE.HalfOpenDropped, all.QueueDropped, w.net.Dropped())
	if st := all.IKE; st.HalfOpen > 2000 {
		t.Errorf("B holds %d half-open SAs, over the limit of 2000", st.HalfOpen)
	}
	w.run(2 * time.Second) // the last summary of what was left out
	checkFloodEventsLimited(t, rec, "B", "100.64.", w.clock.Now().Sub(start), all.IKE.Sent)
}

// checkFloodEventsLimited checks that the events node published about
// forged peers (their addresses start with prefix) kept to the rate limit,
// and that summaries counted every event left out.
func checkFloodEventsLimited(t *testing.T, rec *recorder, node, prefix string, elapsed time.Duration, answered uint64) {
	t.Helper()
	const burst = 20 // ike's limit: events a second
	var shown, summarised int
	for _, e := range rec.all() {
		if e.Node != node {
			continue
		}
		switch {
		case e.Kind == events.Suppressed:
			n, _ := e.Fields["suppressed"].(uint64)
			summarised += int(n)
		case strings.Contains(e.Message, prefix):
			shown++
		}
	}
	seconds := int(elapsed/time.Second) + 1
	if shown > burst*seconds {
		t.Errorf("%s published %d events about forged peers in %d s of simulated time; the limit is %d a second", node, shown, seconds, burst)
	}
	// Each answered forgery is at least a message received and one sent.
	if uint64(shown+summarised) < 2*answered-uint64(2*burst*seconds) || summarised == 0 {
		t.Errorf("%s: %d events shown and %d summarised as left out, for %d first messages answered", node, shown, summarised, answered)
	}
}

// TestHalfOpenLimit: at the limit, new first messages are refused until the
// oldest unproven half-open SA is old enough to make room; half-open SAs time
// out.
func TestHalfOpenLimit(t *testing.T) {
	w := newWorld(t)
	w.net.SetQueue(4096)
	ca, cb := connPair(t, ike.MainMode, "aes128-sha256-modp2048", "aes128gcm16")
	cb.Remote = netip.Addr{}
	a, b := w.pair(ca, cb, func(c *stack.Config) {
		c.Tuning.HalfOpenLimit, c.ReceiveQueue = 100, 4096
	})
	r := mrand.New(mrand.NewPCG(5, 6))
	flood := func(from, n int) {
		for i := from; i < from+n; i++ {
			src := netip.AddrPortFrom(netip.AddrFrom4([4]byte{100, 64, byte(i >> 8), byte(i)}), 500)
			w.net.Inject(sim.Datagram{Src: src, Dst: netip.AddrPortFrom(addrB, 500), Proto: sim.ProtoUDP, Data: bogusMM1(r)})
		}
	}
	flood(0, 1000)
	eventually(t, "B to refuse all but 100", func() bool {
		st := b.stack.Stats().IKE
		return st.HalfOpen == 100 && st.HalfOpenDropped == 900
	})
	w.run(3 * time.Second)
	flood(1000, 40)
	eventually(t, "B to make room by evicting", func() bool {
		st := b.stack.Stats().IKE
		return st.HalfOpen == 100 && st.HalfOpenEvicted == 40
	})
	w.run(3 * time.Second)
	up(t, a, b)
	w.run(31 * time.Second)
	if st := b.stack.Stats().IKE; st.HalfOpen != 0 {
		t.Errorf("%d half-open SAs left after their timeout", st.HalfOpen)
	}
	sendThrough(t, a, b, hostA, hostB, "after the flood")
}

// TestMalformedPackets: garbage of every kind is counted and reported, never
// crashes anything, and does not disturb the SAs or new negotiations.
func TestMalformedPackets(t *testing.T) {
	w := newWorld(t)
	rec := w.record(events.IKEMalformed)
	ca, cb := connPair(t, ike.MainMode, "aes128-sha256-modp2048", "aes128gcm16")
	a, b := w.pair(ca, cb, nil)
	up(t, a, b)
	p1 := b.stack.SAs().ISAKMP[0]

	mm1 := bogusMM1(mrand.New(mrand.NewPCG(7, 8)))
	var cookies [16]byte
	copy(cookies[:], parseCookies(p1.ICookie, p1.RCookie))
	encrypted := func(ex isakmp.ExchangeType, body int) []byte {
		b := make([]byte, 28+body)
		copy(b, cookies[:])
		b[16], b[17], b[18], b[19] = 8, 0x10, byte(ex), 1 // HASH first, v1.0, E flag
		binary.BigEndian.PutUint32(b[20:], 0xdeadbeef)
		binary.BigEndian.PutUint32(b[24:], uint32(len(b)))
		for i := 28; i < len(b); i++ {
			b[i] = byte(i * 7)
		}
		return b
	}
	badLength := append([]byte(nil), mm1...)
	binary.BigEndian.PutUint32(badLength[24:], uint32(len(mm1)+4))
	overrun := append([]byte(nil), mm1...)
	binary.BigEndian.PutUint16(overrun[30:], 0xffff) // the SA payload claims 64 KiB
	badVersion := append([]byte(nil), mm1...)
	badVersion[17] = 0x20
	critical := append(append([]byte(nil), mm1[:28]...), 200, 0x80, 0, 4) // unknown payload type 200, critical
	critical[16] = 200
	binary.BigEndian.PutUint32(critical[24:], uint32(len(critical)))
	truncated := mm1[:len(mm1)-10]

	junk := [][]byte{
		{}, {0x01}, mm1[:27], badLength, overrun, badVersion, critical, truncated,
		encrypted(isakmp.ExchangeQuickMode, 64),     // for the established SA, undecryptable
		encrypted(isakmp.ExchangeInformational, 48), // likewise
		encrypted(isakmp.ExchangeQuickMode, 13),     // not a whole number of blocks
	}
	r := mrand.New(mrand.NewPCG(9, 10))
	for range 200 {
		b := make([]byte, r.IntN(300))
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		junk = append(junk, b)
	}
	attacker := netip.MustParseAddrPort("198.51.100.77:500")
	for _, j := range junk {
		w.net.Inject(sim.Datagram{Src: attacker, Dst: netip.AddrPortFrom(addrB, 500), Proto: sim.ProtoUDP, Data: j})
		w.net.Inject(sim.Datagram{Src: netip.AddrPortFrom(attacker.Addr(), 4500), Dst: netip.AddrPortFrom(addrB, 4500), Proto: sim.ProtoUDP, Data: append([]byte{0, 0, 0, 0}, j...)})
	}
	want := uint64(2 * (len(junk) - 2)) // two are undecryptable messages of a known SA, counted too
	eventually(t, "B to count the junk", func() bool {
		st := b.stack.Stats().IKE
		return st.Malformed+st.UnknownSA >= want
	})
	st := b.stack.Stats().IKE
	if st.InternalErrors != 0 {
		t.Fatalf("B hit %d internal errors", st.InternalErrors)
	}
	if len(rec.find(events.IKEMalformed, "B", "malformed")) == 0 {
		t.Errorf("no IKEMalformed events")
	}
	if p, q := b.established(); p != 1 || q != 1 {
		t.Errorf("B's SAs suffered: %d/%d", p, q)
	}
	sendThrough(t, a, b, hostA, hostB, "through the noise")
	if err := a.stack.Terminate(ctx(t), "lab"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "B to see the Delete", func() bool { return noSAs(b) })
	up(t, a, b)
}

func parseCookies(i, r string) []byte {
	var out []byte
	for _, s := range []string{i, r} {
		for k := 0; k+1 < len(s); k += 2 {
			var v byte
			for _, c := range s[k : k+2] {
				v <<= 4
				switch {
				case c >= '0' && c <= '9':
					v |= byte(c - '0')
				default:
					v |= byte(c-'a') + 10
				}
			}
			out = append(out, v)
		}
	}
	return out
}

// TestSpoofedFirstMessagesFromThePeersOwnAddress: an attacker who forges
// Main Mode first messages from the real initiator's address, at 1 or 10 a
// second, fills that address's half-open slots with SAs that never answer.
// The real initiator's first message must still get in: the oldest unproven
// SA of the address makes room, and the real one, once it answers our
// cookie, is never the one to go.
func TestSpoofedFirstMessagesFromThePeersOwnAddress(t *testing.T) {
	for _, rate := range []int{1, 10} {
		t.Run(fmt.Sprintf("%d per second", rate), func(t *testing.T) {
			w := newWorld(t)
			rec := w.record(events.HalfOpenEvicted)
			ca, cb := connPair(t, ike.MainMode, "aes128-sha256-modp2048", "aes128gcm16")
			a, b := w.pair(ca, cb, nil)
			r := mrand.New(mrand.NewPCG(7, uint64(rate)))
			spoof := func() {
				w.net.Inject(sim.Datagram{Src: netip.AddrPortFrom(addrA, 500), Dst: netip.AddrPortFrom(addrB, 500), Proto: sim.ProtoUDP, Data: bogusMM1(r)})
			}
			step := time.Second / time.Duration(rate)
			for range 10 * rate { // the slots are full before the real initiator starts
				spoof()
				w.clock.Advance(step)
				time.Sleep(time.Millisecond)
			}
			if st := b.stack.Stats().IKE; st.HalfOpen != ike.DefaultHalfOpenPerPeer {
				t.Fatalf("B holds %d half-open SAs from %s; the forgeries should have filled its %d slots", st.HalfOpen, addrA, ike.DefaultHalfOpenPerPeer)
			}
			done := initiateAsync(t, a, "lab")
			for i := 0; ; i++ {
				if i == 30*rate {
					t.Fatalf("the real initiator's tunnel did not come up within 30 s of forgeries at %d/s; B: %+v", rate, b.stack.Stats().IKE)
				}
				spoof()
				w.clock.Advance(step)
				select {
				case err := <-done:
					if err != nil {
						t.Fatalf("negotiation: %v", err)
					}
					checkPairMirrors(t, a, b)
					if len(rec.find(events.HalfOpenEvicted, "B", addrA.String())) == 0 {
						t.Errorf("B evicted forged half-open SAs without an event saying so")
					}
					return
				case <-time.After(5 * time.Millisecond):
				}
			}
		})
	}
}

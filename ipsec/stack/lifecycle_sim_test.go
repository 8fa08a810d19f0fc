package stack_test

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/ipseclab/ipseclab/events"
	"github.com/ipseclab/ipseclab/ipsec/ike"
	"github.com/ipseclab/ipseclab/ipsec/stack"
	"github.com/ipseclab/ipseclab/ipsec/stack/sim"
)

var (
	hostA = netip.MustParseAddrPort("10.1.0.10:1000")
	hostB = netip.MustParseAddrPort("10.2.0.10:2000")
)

// up negotiates A's connection "lab" and waits for both sides' pairs.
func up(t *testing.T, a, b *gw) (ike.IPsecStatus, ike.IPsecStatus) {
	t.Helper()
	if err := a.stack.Initiate(ctx(t), "lab"); err != nil {
		t.Fatal(err)
	}
	return checkPairMirrors(t, a, b)
}

func noSAs(n *gw) bool {
	st := n.stack.SAs()
	return len(st.ISAKMP) == 0 && len(st.IPsec) == 0
}

// TestDeleteFromEitherSide: Terminate sends Deletes for the IPsec SAs and
// the ISAKMP SA, and the peer removes them too; the data plane is empty on
// both sides afterwards.
func TestDeleteFromEitherSide(t *testing.T) {
	for _, from := range []string{"initiator", "responder"} {
		t.Run(from, func(t *testing.T) {
			w := newWorld(t)
			rec := w.record(events.SADeleted)
			ca, cb := connPair(t, ike.MainMode, "aes128-sha256-modp2048", "aes128-sha256")
			a, b := w.pair(ca, cb, nil)
			up(t, a, b)
			deleter, other := a, b
			if from == "responder" {
				deleter, other = b, a
			}
			if err := deleter.stack.Terminate(ctx(t), "lab"); err != nil {
				t.Fatal(err)
			}
			if !noSAs(deleter) {
				t.Fatalf("%s still holds SAs after Terminate", deleter.name)
			}
			eventually(t, other.name+" to remove the SAs", func() bool { return noSAs(other) })
			for _, n := range []*gw{a, b} {
				if sas := n.stack.DataPlane().SAs(); len(sas) != 0 {
					t.Errorf("%s's data plane still has %d SAs", n.name, len(sas))
				}
				if pols := n.stack.DataPlane().Policies(); len(pols) != 0 {
					t.Errorf("%s's data plane still has policies %v", n.name, pols)
				}
			}
			eventually(t, other.name+" to report the pair and the ISAKMP SA deleted by the peer", func() bool {
				return len(rec.find(events.SADeleted, other.name, "the peer deleted it")) == 2
			})
		})
	}
}

// TestRekeyBySeconds: the end whose soft limit comes first (either: both
// watch it, as charon does) replaces the pair at about 90 % of its lifetime,
// and the other does not rekey it again; the new pair is installed on both sides while the old one still
// is, traffic flows throughout, and the old pair is deleted a little later.
func TestRekeyBySeconds(t *testing.T) {
	w := newWorld(t)
	rec := w.record(events.Rekey, events.Phase2Up, events.SADeleted)
	ca, cb := connPair(t, ike.MainMode, "aes128-sha256-curve25519", "aes128gcm16-curve25519")
	ca.Child.Lifetime, cb.Child.Lifetime = time.Minute, time.Minute
	a, b := w.pair(ca, cb, nil)
	old, _ := up(t, a, b)
	sendThrough(t, a, b, hostA, hostB, "before the rekey")

	// The rekey falls between 51 s (90 % less 5 % jitter) and 54 s. Small
	// steps: the initiator switches to the new pair one Quick Mode round
	// trip after QM3, and a round trip measures up to one step of this clock.
	w.advanceUntil(t, "the rekey", 100*time.Millisecond, 55*time.Second, func() bool {
		ia, ib := a.installed(), b.installed()
		return len(ia) == 1 && ia[0].SPIIn != old.SPIIn && len(ib) == 1 && ib[0].SPIOut != old.SPIIn
	})
	if at := w.clock.Now().Sub(epoch); at < 51*time.Second || at > 54*time.Second {
		t.Errorf("rekeyed at %v, want between 51 and 54 s", at)
	}
	// Make before break: the old pair is still there, marked rekeyed.
	for _, n := range []*gw{a, b} {
		st := n.stack.SAs()
		if len(st.IPsec) != 2 || st.IPsec[0].State != "rekeyed" || st.IPsec[1].State != "installed" {
			t.Fatalf("%s after the rekey: %+v, want the old pair (rekeyed) beside the new one", n.name, st.IPsec)
		}
		if dp := n.stack.DataPlane().SAs(); len(dp) != 4 {
			t.Errorf("%s's data plane holds %d SAs, want both pairs", n.name, len(dp))
		}
	}
	sendThrough(t, a, b, hostA, hostB, "during the overlap")
	sendThrough(t, b, a, hostB, hostA, "back during the overlap")
	fresh, _ := checkPairMirrors(t, a, b)
	if fresh.Out.Packets == 0 {
		t.Errorf("the new outbound SA carried nothing: traffic still went through the old one")
	}
	w.advanceUntil(t, "the old pair's deletion", time.Second, 10*time.Second, func() bool {
		return len(a.stack.SAs().IPsec) == 1 && len(b.stack.SAs().IPsec) == 1
	})
	rekeys := rec.find(events.Rekey, "", "rekeying")
	if len(rekeys) != 1 || len(rec.find(events.Phase2Up, "A", "replace")) != 1 || len(rec.find(events.Phase2Up, "B", "replace")) != 1 {
		t.Fatalf("want one rekey, by either end, and the pair replaced on both: %v", rec.all())
	}
	other := "B"
	if rekeys[0].Node == "B" {
		other = "A"
	}
	if got := rec.find(events.SADeleted, other, "the peer deleted it"); len(got) != 1 || (got[0].SA.SPIIn != old.SPIOut && got[0].SA.SPIIn != old.SPIIn) {
		t.Errorf("%s should have deleted the old pair on %s's Delete: %v", other, rekeys[0].Node, got)
	}
	sendThrough(t, a, b, hostA, hostB, "after the rekey")
}

// TestRekeyByBytes: a byte lifetime's soft limit, reported by the data
// plane, rekeys; the old pair leaves after the new one is in.
func TestRekeyByBytes(t *testing.T) {
	w := newWorld(t)
	rec := w.record(events.Rekey, events.SAExpired)
	ca, cb := connPair(t, ike.MainMode, "aes128-sha256-modp2048", "aes128-sha256")
	ca.Child.LifeBytes, cb.Child.LifeBytes = 10000, 10000
	a, b := w.pair(ca, cb, nil)
	old, _ := up(t, a, b)
	if old.LifeBytes != 10000 {
		t.Fatalf("negotiated life bytes %d, want 10000", old.LifeBytes)
	}
	// Send until the outbound SA passes the soft limit (90 %), then give
	// the rekey its round trip: the last 10 % are the margin for it.
	payload := strings.Repeat("x", 500)
	sent := func() uint64 {
		for _, s := range a.stack.SAs().IPsec {
			if s.SPIIn == old.SPIIn {
				return s.Out.Bytes
			}
		}
		return 0
	}
	for i := 0; sent() < 9000; i++ {
		sendThrough(t, a, b, hostA, hostB, fmt.Sprintf("%04d %s", i, payload))
		if i > 40 {
			t.Fatalf("the outbound SA counts only %d bytes after %d packets", sent(), i)
		}
	}
	// A's outbound SA and B's inbound one count the same bytes, each
	// against a soft limit of its own (90 % less up to 5 %): either end may
	// rekey, or both at once (a collision, which keeps two new pairs).
	rec.waitFor(t, events.Rekey, "", "soft limit")
	eventually(t, "a new pair", func() bool {
		in := a.installed()
		return len(in) >= 1 && in[len(in)-1].SPIIn != old.SPIIn
	})
	for i := 0; i < 5; i++ {
		sendThrough(t, a, b, hostA, hostB, fmt.Sprintf("after %d", i))
	}
	w.advanceUntil(t, "the old pair's deletion", time.Second, 10*time.Second, func() bool {
		gone := func(n *gw) bool {
			for _, s := range n.stack.SAs().IPsec {
				if s.SPIIn == old.SPIIn || s.SPIOut == old.SPIIn {
					return false
				}
			}
			return true
		}
		return gone(a) && gone(b)
	})
	sendThrough(t, a, b, hostA, hostB, "after the old pair went")
	sendThrough(t, b, a, hostB, hostA, "and back")
}

// TestHardByteLimit: when no rekey is possible (the peer stopped answering
// IKE), the hard byte limit removes the pair.
func TestHardByteLimit(t *testing.T) {
	w := newWorld(t)
	rec := w.record(events.SAExpired, events.SADeleted)
	ca, cb := connPair(t, ike.MainMode, "aes128-sha256-modp2048", "aes128-sha256")
	ca.Child.LifeBytes, cb.Child.LifeBytes = 5000, 5000
	a, b := w.pair(ca, cb, nil)
	up(t, a, b)
	// From now on IKE is lost; ESP still flows.
	w.net.SetFilter(func(d *sim.Datagram) bool { _, isIKE := ikeHeader(d); return !isIKE })
	for i := 0; i < 20 && len(a.installed()) > 0; i++ {
		a.host.TUN().Send(sim.UDPPacket(hostA, hostB, []byte(strings.Repeat("y", 600))))
		time.Sleep(5 * time.Millisecond)
	}
	eventually(t, "the hard limit", func() bool { return len(a.stack.SAs().IPsec) == 0 })
	if len(rec.find(events.SAExpired, "A", "hard limit")) == 0 || len(rec.find(events.SADeleted, "A", "hard bytes")) == 0 {
		t.Errorf("events: %v", rec.all())
	}
	if n := len(a.stack.DataPlane().SAs()); n != 0 {
		t.Errorf("A's data plane still has %d SAs", n)
	}
}

// TestISAKMPSAReestablished: before the ISAKMP SA expires its initiator runs
// a new phase 1, moves the IPsec SAs under it and deletes the old one; the
// IPsec SAs are not touched.
func TestISAKMPSAReestablished(t *testing.T) {
	w := newWorld(t)
	rec := w.record(events.Rekey, events.Phase1Up, events.SADeleted)
	ca, cb := connPair(t, ike.MainMode, "aes128-sha256-curve25519", "aes128gcm16")
	ca.Lifetime, cb.Lifetime = 2*time.Minute, 2*time.Minute
	a, b := w.pair(ca, cb, nil)
	pair, _ := up(t, a, b)
	first := a.stack.SAs().ISAKMP[0]
	w.advanceUntil(t, "a new ISAKMP SA", time.Second, 110*time.Second, func() bool {
		st := a.stack.SAs()
		return len(st.ISAKMP) == 1 && st.ISAKMP[0].ICookie != first.ICookie && st.ISAKMP[0].State == "established" && len(b.stack.SAs().ISAKMP) == 1
	})
	second := a.stack.SAs().ISAKMP[0]
	now, _ := checkPairMirrors(t, a, b)
	if now.SPIIn != pair.SPIIn || now.ICookie != second.ICookie {
		t.Errorf("the IPsec SAs should stay and move under the new ISAKMP SA: %+v", now)
	}
	// Long past the first SA's lifetime: still one ISAKMP SA, still traffic.
	w.run(30 * time.Second)
	if st := a.stack.SAs(); len(st.ISAKMP) != 1 || st.ISAKMP[0].ICookie != second.ICookie {
		t.Errorf("A's ISAKMP SAs: %+v", st.ISAKMP)
	}
	sendThrough(t, a, b, hostA, hostB, "across the re-establishment")
	if len(rec.find(events.Rekey, "A", "re-establishing")) != 1 || len(rec.find(events.SADeleted, "B", "the peer deleted it")) != 1 {
		t.Errorf("events: %v", rec.all())
	}
}

// TestResponderLifetime: a responder with a shorter lifetime says so with
// RESPONDER-LIFETIME, and the initiator honours it.
func TestResponderLifetime(t *testing.T) {
	w := newWorld(t)
	ca, cb := connPair(t, ike.MainMode, "aes128-sha256-modp2048", "aes128gcm16")
	ca.Child.Lifetime, cb.Child.Lifetime = time.Hour, 20*time.Minute
	a, b := w.pair(ca, cb, nil)
	x, y := up(t, a, b)
	if x.Lifetime != 20*time.Minute || y.Lifetime != 20*time.Minute {
		t.Errorf("lifetimes A %v, B %v; want the responder's 20m on both", x.Lifetime, y.Lifetime)
	}
}

// TestAcquire: with start trap, the first packet that matches the policy
// starts the negotiation, and the packet is delivered once the SAs are up.
func TestAcquire(t *testing.T) {
	w := newWorld(t)
	rec := w.record(events.Acquire, events.Phase2Up)
	ca, cb := connPair(t, ike.MainMode, "aes128-sha256-modp2048", "aes128gcm16")
	ca.Child.Start = ike.StartTrap
	a, b := w.pair(ca, cb, nil)
	if pols := a.stack.DataPlane().Policies(); len(pols) != 1 {
		t.Fatalf("A's trap policy: %v", pols)
	}
	sendThrough(t, a, b, hostA, hostB, "the packet that starts it all")
	rec.waitFor(t, events.Acquire, "A", "")
	rec.waitFor(t, events.Phase2Up, "A", "")
	// Terminated, the trap stays and the next packet starts it again.
	if err := a.stack.Terminate(ctx(t), "lab"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "B's SAs to go", func() bool { return noSAs(b) })
	if pols := a.stack.DataPlane().Policies(); len(pols) != 1 {
		t.Fatalf("A's trap policy after terminate: %v", pols)
	}
	w.clock.Advance(time.Minute) // past the data plane's acquire retry interval
	sendThrough(t, a, b, hostA, hostB, "and again")
}

// TestCrashAndInitialContact: A crashes and comes back empty; its next
// phase 1 carries INITIAL-CONTACT, and B drops the SAs it still held for A.
func TestCrashAndInitialContact(t *testing.T) {
	w := newWorld(t)
	rec := w.record(events.StackCrashed, events.StackRestarted, events.SADeleted)
	ca, cb := connPair(t, ike.MainMode, "aes128-sha256-modp2048", "aes128gcm16")
	a, b := w.pair(ca, cb, nil)
	old, _ := up(t, a, b)
	a.stack.Crash()
	if st := a.stack.SAs(); len(st.ISAKMP)+len(st.IPsec) != 0 {
		t.Fatalf("a crashed stack lists SAs: %+v", st)
	}
	if p1, p2 := b.established(); p1 != 1 || p2 != 1 {
		t.Fatalf("B should still hold its SAs after A's silent crash, has %d/%d", p1, p2)
	}
	if err := a.stack.Restart(); err != nil {
		t.Fatal(err)
	}
	fresh, _ := up(t, a, b)
	if fresh.SPIIn == old.SPIIn {
		t.Errorf("no new SAs")
	}
	if p1, _ := b.established(); p1 != 1 {
		t.Errorf("B holds %d ISAKMP SAs, want only the new one", p1)
	}
	if len(rec.find(events.SADeleted, "B", "INITIAL-CONTACT")) != 2 {
		t.Errorf("B should have dropped the stale pair and ISAKMP SA on INITIAL-CONTACT: %v", rec.all())
	}
	sendThrough(t, a, b, hostA, hostB, "after the restart")
	rec.waitFor(t, events.StackCrashed, "A", "")
	rec.waitFor(t, events.StackRestarted, "A", "")
}

// TestPublishKeys: with PublishKeys, the keys of the ISAKMP SA and of both
// IPsec SAs are published, identical on both sides.
func TestPublishKeys(t *testing.T) {
	w := newWorld(t)
	rec := w.record(events.KeysDerived)
	ca, cb := connPair(t, ike.MainMode, "aes256-sha256-modp2048", "aes128gcm16")
	a, b := w.pair(ca, cb, func(c *stack.Config) { c.PublishKeys = true })
	up(t, a, b)
	keys := func(node, sa string) map[string]string {
		out := map[string]string{}
		for _, e := range rec.all() {
			if e.Node == node && e.Field("sa") == sa {
				k := sa
				if d, ok := e.Field("spi").(string); ok {
					k = d
				}
				out[k] = fmt.Sprint(e.Field("ka"), e.Field("enc_key"), e.Field("salt"))
			}
		}
		return out
	}
	eventually(t, "keys from both sides", func() bool { return len(keys("A", "esp")) == 2 && len(keys("B", "esp")) == 2 })
	ka, kb := keys("A", "isakmp"), keys("B", "isakmp")
	if len(ka) != 1 || ka["isakmp"] != kb["isakmp"] || len(ka["isakmp"]) < 64 {
		t.Errorf("ISAKMP keys differ: %v / %v", ka, kb)
	}
	ea, eb := keys("A", "esp"), keys("B", "esp")
	for spi, k := range ea {
		if eb[spi] != k {
			t.Errorf("ESP SA %s: A has %s, B has %s", spi, k, eb[spi])
		}
	}
}

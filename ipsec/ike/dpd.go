package ike

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/ipseclab/ipseclab/events"
	"github.com/ipseclab/ipseclab/ipsec/isakmp"
)

// Dead peer detection (RFC 3706). Both sides announce it with a vendor ID.
// When nothing has come from the peer for DPD.Delay (no IKE message, no
// ESP packet on the SAs under this ISAKMP SA) we ask "are you there?":
//
//	HDR*, HASH(1), N(R-U-THERE, CKY-I|CKY-R, sequence)      -->
//	                          <--  HDR*, HASH(1), N(R-U-THERE-ACK, same sequence)
//
// each in a protected Informational exchange of its own. Unanswered, the
// question is repeated every Delay with the next sequence number; Timeout
// after the first unanswered one the peer is declared dead and the
// connection's DPD action runs.
//
// When to ask is the mode. Periodic (strongSwan's dpd_delay, the default)
// asks whenever the peer has been silent for Delay, so an idle tunnel is
// probed every Delay and a dead peer is noticed before traffic is lost.
// On-demand (RFC 3706 §5.3) asks only if we sent traffic into that silence:
// an idle tunnel costs nothing, and a dead peer is noticed once packets to
// it go unanswered. Either way, traffic from the peer is a sign of life, so
// a busy tunnel sends no probes.
//
// Signs of life are timed where they happen: an IKE message when it
// authenticates, an ESP packet by the data plane's use time of the inbound
// SA (as charon reads XFRM's), so the first probe goes out exactly Delay
// after the last of them, not at the next check that notices a counter
// moved.

type dpdState struct {
	enabled   bool
	seq       uint32    // the last R-U-THERE sequence number sent
	peerSeq   uint32    // the last R-U-THERE sequence number answered
	answered  bool      // peerSeq is set
	pending   bool      // an R-U-THERE is unanswered
	since     time.Time // when the first unanswered one went out
	lastHeard time.Time // the last authenticated IKE message from the peer
}

// heard records that the peer is alive.
func (d *dpdState) heard(now time.Time) {
	d.lastHeard, d.pending = now, false
}

// startDPD begins checking an established SA, if DPD is configured and the
// peer announced it.
func (sa *isakmpSA) startDPD() {
	cfg := sa.conn.cfg.DPD
	if cfg.Delay <= 0 || !sa.peer.dpd {
		return
	}
	e := sa.e
	var b [4]byte
	e.random(b[:])
	// RFC 3706 §7: start at a random number in the lower half, so that the
	// sequence does not wrap soon; each R-U-THERE takes the next one.
	sa.dpd = dpdState{enabled: true, seq: binary.BigEndian.Uint32(b[:]) >> 1, lastHeard: e.clock.Now()}
	sa.dpdTimer = e.after(cfg.Delay, func() { e.dpdCheck(sa) })
}

// dpdCheck runs when the silence may have lasted Delay, and every Delay
// while a probe is unanswered.
func (e *Engine) dpdCheck(sa *isakmpSA) {
	cfg := sa.conn.cfg.DPD
	now := e.clock.Now()
	heard := e.dpdLastHeard(sa)
	if sa.dpd.pending && heard.After(sa.dpd.since) {
		sa.dpd.pending = false // ESP from the peer answered for it
	}
	silent := now.Sub(heard)
	switch {
	case sa.dpd.pending && now.Sub(sa.dpd.since) >= cfg.Timeout:
		e.peerDead(sa)
		return
	case sa.dpd.pending:
		e.sendRUThere(sa, silent)
	case silent >= cfg.Delay && (cfg.Mode == DPDPeriodic || e.dpdSentSince(sa, heard)):
		sa.dpd.pending, sa.dpd.since = true, now
		e.sendRUThere(sa, silent)
	}
	sa.dpdTimer = e.after(e.nextDPDCheck(sa, now, heard), func() { e.dpdCheck(sa) })
}

// sendRUThere asks the peer, with the next sequence number.
func (e *Engine) sendRUThere(sa *isakmpSA, silent time.Duration) {
	sa.dpd.seq++
	why := "nothing arrived from the peer for a while, so we ask whether it is still there; an answer resets the clock."
	if sa.conn.cfg.DPD.Mode == DPDOnDemand {
		why = "we have traffic for the peer and nothing came back for a while (on-demand, RFC 3706 §5.3), so we ask whether it is still there; an answer resets the clock."
	}
	e.pub.Publish(events.Event{
		Kind: events.DPDSent, Step: events.StepTermination, Conn: sa.conn.cfg.Name,
		Message: fmt.Sprintf("R-U-THERE #%d to %s after %v without a sign of life", sa.dpd.seq, sa.peerName(), silent.Round(time.Millisecond)),
		Explain: "Dead peer detection (" + sa.conn.cfg.DPD.Mode.String() + "): " + why,
		IKE:     sa.ikeInfo(events.Sent, msgInfo{exchange: "informational"}, nil, 0),
		Fields:  map[string]any{"seq": sa.dpd.seq, "silent_s": silent.Seconds(), "peer": sa.remote.String(), "mode": sa.conn.cfg.DPD.Mode.String()},
	})
	e.sendInformational(sa, isakmp.NewDPD(isakmp.NotifyRUThere, sa.ckyI, sa.ckyR, sa.dpd.seq))
}

// nextDPDCheck is when to look again: when the silence will have lasted
// Delay, so that a probe goes out on time rather than up to a Delay late;
// while a probe is unanswered, after Delay to ask again, or when Timeout
// runs out if that comes first.
func (e *Engine) nextDPDCheck(sa *isakmpSA, now, heard time.Time) time.Duration {
	cfg := sa.conn.cfg.DPD
	if sa.dpd.pending {
		return max(min(cfg.Delay, sa.dpd.since.Add(cfg.Timeout).Sub(now)), time.Millisecond)
	}
	if wait := heard.Add(cfg.Delay).Sub(now); wait > 0 {
		return wait
	}
	return cfg.Delay
}

// dpdLastHeard is the peer's last sign of life: its last authenticated IKE
// message, or the last packet on an inbound SA under sa.
func (e *Engine) dpdLastHeard(sa *isakmpSA) time.Time {
	last := sa.dpd.lastHeard
	for _, ch := range e.peerChildren(sa) {
		if ch.owner != sa {
			continue
		}
		if t := e.dp.LastUsed(ch.inID()); t.After(last) {
			last = t
		}
	}
	return last
}

// dpdSentSince says whether an outbound SA under sa carried a packet after t.
func (e *Engine) dpdSentSince(sa *isakmpSA, t time.Time) bool {
	for _, ch := range e.peerChildren(sa) {
		if ch.owner == sa && e.dp.LastUsed(ch.outID()).After(t) {
			return true
		}
	}
	return false
}

// answerDPD acknowledges an R-U-THERE with its sequence number. Each probe
// carries the next number (RFC 3706 §7): a repeat of the last one is
// answered again (our ACK may have been lost), an older one is a replay, and
// is counted and ignored.
func (e *Engine) answerDPD(sa *isakmpSA, n *isakmp.Notify) {
	seq, ok := n.DPDSequence()
	if !ok {
		e.dpdIgnored(sa, "R-U-THERE", 0, 0, "carries no 4-byte sequence number")
		return
	}
	if sa.dpd.answered && int32(seq-sa.dpd.peerSeq) < 0 {
		e.dpdIgnored(sa, "R-U-THERE", seq, sa.dpd.peerSeq+1, "is older than the last one answered: a replay")
		return
	}
	sa.dpd.peerSeq, sa.dpd.answered = seq, true
	e.sendInformational(sa, isakmp.NewDPD(isakmp.NotifyRUThereAck, sa.ckyI, sa.ckyR, seq))
}

// dpdAcknowledged takes an R-U-THERE-ACK. Only the sequence number of our
// last R-U-THERE answers it, as in charon: any other is counted and ignored.
// (The message authenticated, so the peer is alive all the same.)
func (e *Engine) dpdAcknowledged(sa *isakmpSA, n *isakmp.Notify) {
	seq, ok := n.DPDSequence()
	if !ok {
		e.dpdIgnored(sa, "R-U-THERE-ACK", 0, sa.dpd.seq, "carries no 4-byte sequence number")
		return
	}
	if !sa.dpd.enabled || seq != sa.dpd.seq {
		e.dpdIgnored(sa, "R-U-THERE-ACK", seq, sa.dpd.seq, "does not answer our last R-U-THERE")
		return
	}
	e.pub.Publish(events.Event{
		Kind: events.DPDAck, Step: events.StepTermination, Conn: sa.conn.cfg.Name,
		Message: fmt.Sprintf("R-U-THERE-ACK #%d from %s: the peer is alive", seq, sa.peerName()),
		Explain: "The peer answered our R-U-THERE with the same sequence number: it still holds the ISAKMP SA.",
		IKE:     sa.ikeInfo(events.Received, msgInfo{exchange: "informational"}, nil, 0),
		Fields:  map[string]any{"seq": seq, "peer": sa.remote.String()},
	})
}

// dpdIgnored counts and reports a DPD notification that does not fit.
func (e *Engine) dpdIgnored(sa *isakmpSA, what string, seq, want uint32, why string) {
	e.stats.DPDBadSequence++
	e.pub.Publish(events.Event{
		Kind: events.DPDIgnored, Step: events.StepTermination, Conn: sa.conn.cfg.Name, Level: events.Warn,
		Message: fmt.Sprintf("%s #%d from %s ignored: it %s (expected #%d)", what, seq, sa.peerName(), why, want),
		Explain: "DPD sequence numbers (RFC 3706 §7) tie each R-U-THERE-ACK to its R-U-THERE and make a replayed probe stand out; one that does not fit is counted and ignored.",
		IKE:     sa.ikeInfo(events.Received, msgInfo{exchange: "informational"}, nil, 0),
		Fields:  map[string]any{"seq": seq, "want": want, "peer": sa.remote.String()},
	})
}

// peerDead runs the DPD action: the SAs with the peer go, silently (it cannot
// hear us), then the connection clears, holds a trap, or starts again.
func (e *Engine) peerDead(sa *isakmpSA) {
	c := sa.conn
	cfg := c.cfg.DPD
	peer := sa.remote.Addr()
	if e.heardElsewhere(sa) {
		// The peer restarted and came back on a new ISAKMP SA without
		// INITIAL-CONTACT (charon sends none under swanctl's default
		// unique = no): it is alive, and only this SA is stale.
		e.publishISAKMPDeleted(sa, "stale: no answer to R-U-THERE on it, while the peer answers on a newer ISAKMP SA")
		e.removeISAKMPSA(sa)
		return
	}
	e.pub.Publish(events.Event{
		Kind: events.DPDDead, Step: events.StepTermination, Conn: c.cfg.Name, Level: events.Error,
		Message: fmt.Sprintf("peer %s declared dead: no answer to R-U-THERE for %v; action %s", sa.peerName(), cfg.Timeout, cfg.Action),
		Explain: map[DPDAction]string{
			DPDClear:   "Dead peer detection gave up: the SAs are removed, and the tunnel stays down until someone starts it again.",
			DPDRestart: "Dead peer detection gave up: the SAs are removed and the connection is negotiated again at once.",
			DPDHold:    "Dead peer detection gave up: the SAs are removed, and the policy stays so that the next packet starts a new negotiation.",
		}[cfg.Action],
		IKE:    sa.ikeInfo(events.Sent, msgInfo{exchange: "informational"}, nil, 0),
		Fields: map[string]any{"action": cfg.Action.String(), "timeout_s": cfg.Timeout.Seconds(), "peer": sa.remote.String()},
	})
	for _, ch := range e.peerChildren(sa) {
		e.deleteChild(ch, false, "the peer is dead (DPD)")
	}
	for _, o := range append([]*isakmpSA(nil), c.sas...) {
		if o.remote == sa.remote {
			e.publishISAKMPDeleted(o, "the peer is dead (DPD)")
			e.removeISAKMPSA(o)
		}
	}
	switch cfg.Action {
	case DPDHold:
		if c.cfg.Remote.IsValid() {
			if err := e.trapPolicy(c); err != nil {
				e.internalError(fmt.Errorf("DPD hold for %s: %w", c.cfg.Name, err))
			}
		}
	case DPDRestart:
		e.requestChild(c.newRequest(peer, "DPD restart", nil))
	default:
		e.dropIdlePolicies(c)
	}
}

// heardElsewhere says whether another established ISAKMP SA with sa's peer
// heard from it after sa's first unanswered R-U-THERE.
func (e *Engine) heardElsewhere(sa *isakmpSA) bool {
	for _, c := range e.conns {
		for _, o := range c.sas {
			if o != sa && !o.dead && o.state == established && o.remote.Addr() == sa.remote.Addr() && e.dpdLastHeard(o).After(sa.dpd.since) {
				return true
			}
		}
	}
	return false
}

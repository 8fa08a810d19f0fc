package ike

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/ipseclab/ipseclab/events"
	"github.com/ipseclab/ipseclab/ipsec/esp"
	"github.com/ipseclab/ipseclab/ipsec/isakmp"
)

// Dead peer detection (RFC 3706). Both sides announce it with a vendor ID.
// When nothing has come from the peer for DPD.Delay — no IKE message, no
// ESP packet on the SAs under this ISAKMP SA — we ask "are you there?":
//
//	HDR*, HASH(1), N(R-U-THERE, CKY-I|CKY-R, sequence)      -->
//	                          <--  HDR*, HASH(1), N(R-U-THERE-ACK, same sequence)
//
// each in a protected Informational exchange of its own. Unanswered, the
// question is repeated every Delay with the next sequence number; after
// Timeout the peer is declared dead and the connection's DPD action runs.
// An idle tunnel is probed too, as strongSwan does: RFC 3706 §5.3 lets an
// implementation wait until it has traffic to send, but then a dead peer is
// only noticed when a packet is already being lost. Traffic from the peer
// is a sign of life, so a busy tunnel sends no probes.

type dpdState struct {
	enabled   bool
	seq       uint32    // last sequence number sent
	pending   bool      // an R-U-THERE is unanswered
	since     time.Time // when the first unanswered one went out
	lastHeard time.Time
	espIn     uint64 // inbound ESP packets counted at the last check
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
	// sequence does not wrap soon.
	sa.dpd = dpdState{enabled: true, seq: binary.BigEndian.Uint32(b[:]) >> 1, lastHeard: e.clock.Now(), espIn: e.inboundPackets(sa)}
	sa.dpdTimer = e.after(cfg.Delay, func() { e.dpdCheck(sa) })
}

// dpdCheck runs every Delay.
func (e *Engine) dpdCheck(sa *isakmpSA) {
	cfg := sa.conn.cfg.DPD
	now := e.clock.Now()
	if in := e.inboundPackets(sa); in != sa.dpd.espIn {
		sa.dpd.espIn = in
		sa.dpd.heard(now)
	}
	switch {
	case sa.dpd.pending && now.Sub(sa.dpd.since) >= cfg.Timeout:
		e.peerDead(sa)
		return
	case sa.dpd.pending || now.Sub(sa.dpd.lastHeard) >= cfg.Delay:
		if !sa.dpd.pending {
			sa.dpd.pending, sa.dpd.since = true, now
		}
		sa.dpd.seq++
		e.pub.Publish(events.Event{
			Kind: events.DPDSent, Step: events.StepTermination, Conn: sa.conn.cfg.Name,
			Message: fmt.Sprintf("R-U-THERE #%d to %s after %v without a sign of life", sa.dpd.seq, sa.peerName(), now.Sub(sa.dpd.lastHeard).Round(time.Second)),
			Explain: "Dead peer detection: nothing arrived from the peer for a while, so we ask whether it is still there; an answer resets the clock.",
			IKE:     sa.ikeInfo(events.Sent, msgInfo{exchange: "informational"}, nil, 0),
			Fields:  map[string]any{"seq": sa.dpd.seq, "silent_s": now.Sub(sa.dpd.lastHeard).Seconds(), "peer": sa.remote.String()},
		})
		e.sendInformational(sa, isakmp.NewDPD(isakmp.NotifyRUThere, sa.ckyI, sa.ckyR, sa.dpd.seq))
	}
	sa.dpdTimer = e.after(e.nextDPDCheck(sa, now), func() { e.dpdCheck(sa) })
}

// nextDPDCheck is when to look again: when the silence will have lasted
// Delay, so that the first probe goes out on time rather than up to a Delay
// late; while a probe is unanswered, after Delay to ask again, or when
// Timeout runs out if that comes first.
func (e *Engine) nextDPDCheck(sa *isakmpSA, now time.Time) time.Duration {
	cfg := sa.conn.cfg.DPD
	if sa.dpd.pending {
		return max(min(cfg.Delay, sa.dpd.since.Add(cfg.Timeout).Sub(now)), time.Millisecond)
	}
	if wait := sa.dpd.lastHeard.Add(cfg.Delay).Sub(now); wait > 0 {
		return wait
	}
	return cfg.Delay
}

// inboundPackets counts the packets received on the inbound SAs under sa.
func (e *Engine) inboundPackets(sa *isakmpSA) uint64 {
	ids := map[esp.SAID]bool{}
	for _, ch := range e.peerChildren(sa) {
		if ch.owner == sa {
			ids[ch.inID()] = true
		}
	}
	if len(ids) == 0 {
		return 0
	}
	var n uint64
	for _, s := range e.dp.SAs() {
		if ids[s.ID] {
			n += s.Counters.Packets
		}
	}
	return n
}

// answerDPD acknowledges an R-U-THERE with its sequence number.
func (e *Engine) answerDPD(sa *isakmpSA, n *isakmp.Notify) {
	seq, ok := n.DPDSequence()
	if !ok {
		return
	}
	e.sendInformational(sa, isakmp.NewDPD(isakmp.NotifyRUThereAck, sa.ckyI, sa.ckyR, seq))
}

// dpdAcknowledged takes an R-U-THERE-ACK.
func (e *Engine) dpdAcknowledged(sa *isakmpSA, n *isakmp.Notify) {
	seq, ok := n.DPDSequence()
	if !ok {
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

// peerDead runs the DPD action: the SAs with the peer go, silently (it cannot
// hear us), then the connection clears, holds a trap, or starts again.
func (e *Engine) peerDead(sa *isakmpSA) {
	c := sa.conn
	cfg := c.cfg.DPD
	peer := sa.remote.Addr()
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

package ike

import (
	"crypto/hmac"
	"fmt"
	"strings"

	"github.com/ipseclab/ipseclab/events"
	"github.com/ipseclab/ipseclab/ipsec/isakmp"
)

// The Informational exchange (RFC 2408 §4.8, RFC 2409 §5.7) is one message:
//
//	HDR*, HASH(1), N/D
//
//	HASH(1) = prf(SKEYID_a, M-ID | N/D)
//
// with a fresh message ID and an IV chain of its own. Once the ISAKMP SA is
// up, Deletes and notifications travel only this way, and only an
// authenticated one is believed. Before that (a rejected proposal, a wrong
// key) there are no shared keys, so the error goes in the clear; we believe it
// only from the peer we are negotiating with, and only while the negotiation
// is in progress, where the worst a forger can do is what dropping our packets
// would do too.

func infoInfo(payloads []isakmp.Payload) msgInfo {
	i := msgInfo{exchange: "informational", num: 1, total: 1, step: events.StepTermination}
	var what []string
	for _, p := range payloads {
		switch p := p.(type) {
		case *isakmp.Delete:
			what = append(what, fmt.Sprintf("Delete of %d %s SA(s)", len(p.SPIs), p.Protocol))
		case *isakmp.Notify:
			what = append(what, p.NotifyType.String())
			switch p.NotifyType {
			case isakmp.NotifyRUThere, isakmp.NotifyRUThereAck:
				i.dpd = true
			case isakmp.NotifyInitialContact:
				i.step = events.StepPhase1
			default:
				if i.step == events.StepTermination && p.NotifyType.IsError() {
					i.step = events.StepPhase1
					if p.Protocol != isakmp.ProtocolISAKMP {
						i.step = events.StepPhase2
					}
				}
			}
		}
	}
	i.explain = "Informational: " + strings.Join(what, ", ") + ", sent under the ISAKMP SA's protection with HASH(1) authenticating it"
	return i
}

// sendInformational sends a protected Informational message.
func (e *Engine) sendInformational(sa *isakmpSA, payloads ...isakmp.Payload) {
	mid := sa.messageID()
	sa.remember(mid)
	sa.send(isakmp.ExchangeInformational, mid, sa.withHash1(mid, payloads), true, infoInfo(payloads))
	sa.ivs.Forget(mid)
}

// sendDelete tells the peer that SAs are gone.
func (e *Engine) sendDelete(sa *isakmpSA, d *isakmp.Delete) {
	if sa.state != established {
		return
	}
	e.sendInformational(sa, d)
}

// notifyPeer sends a notification: protected once the ISAKMP SA is up, in
// the clear before.
func (e *Engine) notifyPeer(sa *isakmpSA, n *isakmp.Notify) {
	if sa.state == established {
		e.publishNotify(sa, events.Sent, n, true)
		e.sendInformational(sa, n)
		return
	}
	info := msgInfo{exchange: "informational", num: 1, total: 1, step: events.StepPhase1,
		explain: "Informational, unprotected: phase 1 is not complete, so the peer may hold no keys to read it (a wrong pre-shared key, a refused certificate): this error notification travels in the clear"}
	e.publishNotify(sa, events.Sent, n, false)
	sa.send(isakmp.ExchangeInformational, sa.messageID(), []isakmp.Payload{n}, false, info)
}

// isakmpNotify is a notification about the ISAKMP SA itself.
func isakmpNotify(sa *isakmpSA, t isakmp.NotifyType) *isakmp.Notify {
	return &isakmp.Notify{DOI: isakmp.DOIIPsec, Protocol: isakmp.ProtocolISAKMP, NotifyType: t, SPI: isakmp.ISAKMPSPI(sa.ckyI, sa.ckyR)}
}

// receiveInformational authenticates and acts on an Informational message.
func (e *Engine) receiveInformational(sa *isakmpSA, p Packet, m *isakmp.Message) {
	mid := m.Header.MessageID
	if m.Header.Flags&isakmp.FlagEncryption == 0 {
		e.publishMessage(sa, events.Received, m, len(p.Data), msgInfo{exchange: "informational", num: 1, total: 1, step: events.StepPhase1,
			explain: "Informational, unprotected: without HASH(1) nothing proves who sent it"})
		for _, pl := range m.Payloads {
			if sa.dead {
				return
			}
			switch pl := pl.(type) {
			case *isakmp.Notify:
				e.unprotectedNotify(sa, p, pl)
			case *isakmp.Delete:
				e.unprotectedIgnored(sa, p, fmt.Sprintf("Delete of %d %s SA(s)", len(pl.SPIs), pl.Protocol),
					"a Delete is believed only inside a protected Informational, whose HASH(1) proves the peer's ISAKMP SA sent it; anyone who saw the cookies on the wire can send this one")
			}
		}
		return
	}
	if sa.infoSeen[mid] {
		e.stats.Duplicates++
		return
	}
	if err := sa.decrypt(m); err != nil {
		e.unreadableInformational(sa, p, "does not decrypt")
		return
	}
	hash, rest, ok := leadingHash(m)
	if !ok || !hmac.Equal(hash.Data, sa.keys.Hash1(mid, rest)) {
		e.unreadableInformational(sa, p, "fails its HASH(1)")
		return
	}
	sa.remember(mid)
	sa.ivs.Forget(mid)
	e.publishMessage(sa, events.Received, m, len(p.Data), infoInfo(m.Payloads[1:]))
	if sa.state == established {
		e.followFloat(sa, p)
	}
	sa.dpd.heard(e.clock.Now())
	for _, pl := range m.Payloads[1:] {
		if sa.dead {
			return
		}
		switch pl := pl.(type) {
		case *isakmp.Notify:
			e.protectedNotify(sa, pl)
		case *isakmp.Delete:
			e.receiveDelete(sa, pl)
		}
	}
}

// unreadableInformational handles an encrypted Informational that we cannot
// read. While we wait for the peer's authentication, this is what a peer with
// another pre-shared key sends (its error notification, under its keys).
func (e *Engine) unreadableInformational(sa *isakmpSA, p Packet, why string) {
	if sa.state == mmI5Sent || sa.state == mmR4Sent {
		e.authFailed(sa, "the peer's encrypted notification "+why+" under our keys: "+sa.conn.lesson().keysDiffer, 0)
		return
	}
	e.malformedIn(sa, p, "Informational message "+why)
}

// unprotectedNotify believes an error in the clear only from the peer of a
// negotiation in progress.
func (e *Engine) unprotectedNotify(sa *isakmpSA, p Packet, n *isakmp.Notify) {
	e.publishNotify(sa, events.Received, n, false)
	switch {
	case sa.state == established:
		e.unprotectedIgnored(sa, p, n.NotifyType.String(),
			"the ISAKMP SA is established, so the peer would send this under its protection (HASH(1)); in the clear, anyone who saw the cookies could have sent it")
		return
	case p.Remote.Addr() != sa.remote.Addr():
		e.unprotectedIgnored(sa, p, n.NotifyType.String(), fmt.Sprintf("it comes from %s, not from the peer %s", p.Remote.Addr(), sa.remote.Addr()))
		return
	case !n.NotifyType.IsError():
		e.unprotectedIgnored(sa, p, n.NotifyType.String(), "a status notification in the clear proves nothing and asks for nothing")
		return
	}
	reason := "the peer rejected the negotiation with " + n.NotifyType.String()
	switch n.NotifyType {
	case isakmp.NotifyNoProposalChosen:
		e.publishNoProposal(sa.conn, sa.remote, events.Received, offerSummary{}, suiteNames(sa.conn.cfg.Proposals), events.StepPhase1)
	case isakmp.NotifyAuthenticationFailed, isakmp.NotifyInvalidIDInformation, isakmp.NotifyInvalidHashInformation:
		e.authFailed(sa, "the peer reports "+n.NotifyType.String()+": "+sa.conn.lesson().rejected, 0)
		return
	}
	e.phase1Failed(sa, reason, nil)
}

// protectedNotify acts on an authenticated notification.
func (e *Engine) protectedNotify(sa *isakmpSA, n *isakmp.Notify) {
	switch n.NotifyType {
	case isakmp.NotifyRUThere:
		e.answerDPD(sa, n)
		return
	case isakmp.NotifyRUThereAck:
		e.dpdAcknowledged(sa, n)
		return
	}
	e.publishNotify(sa, events.Received, n, true)
	if sa.state != established && n.NotifyType.IsError() {
		// Phase 1 is not complete, but the peer holds our keys: charon
		// answers a HASH_I it refuses under them. The notification is
		// authenticated, so it ends the negotiation at once rather than
		// after our retransmissions of a message it will never accept.
		switch n.NotifyType {
		case isakmp.NotifyAuthenticationFailed, isakmp.NotifyInvalidIDInformation, isakmp.NotifyInvalidHashInformation,
			isakmp.NotifyInvalidSignature, isakmp.NotifyInvalidCertificate:
			e.authFailed(sa, "the peer reports "+n.NotifyType.String()+", under the keys we share: "+sa.conn.lesson().rejected, 0)
		default:
			e.phase1Failed(sa, "the peer rejected the negotiation with "+n.NotifyType.String(), nil)
		}
		return
	}
	switch n.NotifyType {
	case isakmp.NotifyInitialContact:
		e.initialContact(sa)
	case isakmp.NotifyInvalidSPI:
		// The peer got ESP with an SPI it does not know: it lost that SA.
		for _, ch := range e.peerChildren(sa) {
			if len(n.SPI) == 4 && ch.spiOut == be32(n.SPI) {
				e.deleteChild(ch, false, "the peer reports INVALID-SPI for it")
				return
			}
		}
	default:
		if !n.NotifyType.IsError() {
			return
		}
		if qm := sa.refusedQuickMode(n); qm != nil {
			if n.NotifyType == isakmp.NotifyNoProposalChosen {
				e.publishNoProposal(qm.conn, sa.remote, events.Received, offerSummary{}, suiteNames(qm.conn.cfg.Child.Proposals), events.StepPhase2)
			}
			qm.why = refusedExplain(n.NotifyType)
			e.quickModeFailed(qm, "the responder answered with "+n.NotifyType.String())
		}
	}
}

// receiveDelete removes what the peer deleted. For IPsec SAs the peer names
// its inbound SPIs, our outbound ones.
func (e *Engine) receiveDelete(sa *isakmpSA, d *isakmp.Delete) {
	switch d.Protocol {
	case isakmp.ProtocolISAKMP:
		for _, spi := range d.SPIs {
			if len(spi) != 16 {
				continue
			}
			var k saKey
			copy(k.i[:], spi[:8])
			copy(k.r[:], spi[8:])
			if victim := e.sas[k]; victim != nil && victim.remote == sa.remote {
				e.publishISAKMPDeleted(victim, "the peer deleted it")
				e.removeISAKMPSA(victim)
			}
		}
	case isakmp.ProtocolESP, isakmp.ProtocolAH:
		proto := espProtocol(d.Protocol)
		for _, spi := range d.SPIs {
			if len(spi) != 4 {
				continue
			}
			for _, ch := range e.peerChildren(sa) {
				if ch.proto == proto && ch.spiOut == be32(spi) {
					e.deleteChild(ch, false, "the peer deleted it")
					break
				}
			}
		}
	}
}

// initialContact follows INITIAL-CONTACT (RFC 2407 §4.6.3.3): the peer has
// just started and holds no SAs with us, so every other SA with it is stale.
func (e *Engine) initialContact(fresh *isakmpSA) {
	peer := fresh.remote
	for _, c := range e.conns {
		for _, ch := range append([]*childSA(nil), c.children...) {
			if ch.remote == peer && (ch.owner != fresh) {
				e.deleteChild(ch, false, "the peer restarted (INITIAL-CONTACT)")
			}
		}
		for _, old := range append([]*isakmpSA(nil), c.sas...) {
			if old != fresh && old.remote == peer && old.state == established {
				e.publishISAKMPDeleted(old, "the peer restarted (INITIAL-CONTACT)")
				e.removeISAKMPSA(old)
			}
		}
	}
}

// readStatusNotifies handles the status notifications that ride in the last
// phase 1 message (INITIAL-CONTACT in MM5 or AM3).
func (e *Engine) readStatusNotifies(sa *isakmpSA, m *isakmp.Message) {
	for _, n := range isakmp.All[*isakmp.Notify](m) {
		e.publishNotify(sa, events.Received, n, true)
		if n.NotifyType == isakmp.NotifyInitialContact {
			e.initialContact(sa)
		}
	}
}

// firstContact reports whether we hold nothing with the SA's peer, so that
// MM5/AM3 should carry INITIAL-CONTACT.
func (e *Engine) firstContact(sa *isakmpSA) bool {
	peer := sa.remote
	for _, c := range e.conns {
		for _, ch := range c.children {
			if ch.remote == peer {
				return false
			}
		}
		for _, o := range c.sas {
			if o != sa && o.state == established && o.remote == peer {
				return false
			}
		}
	}
	return true
}

func be32(b []byte) uint32 {
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

// leadingHash returns the HASH payload that must open a Quick Mode or
// Informational message, and the bytes after it that it covers.
func leadingHash(m *isakmp.Message) (*isakmp.Hash, []byte, bool) {
	if len(m.Payloads) == 0 {
		return nil, nil, false
	}
	hash, ok := m.Payloads[0].(*isakmp.Hash)
	if !ok {
		return nil, nil, false
	}
	rest, err := m.PayloadBytes(1)
	return hash, rest, err == nil
}

// unprotectedIgnored counts and reports a Delete or notification that came
// in the clear and was not acted on, and says why: forging one takes no key.
func (e *Engine) unprotectedIgnored(sa *isakmpSA, p Packet, what, why string) {
	e.stats.UnprotectedIgnored++
	e.publishLimited(events.Event{
		Kind: events.Unprotected, Step: events.StepTermination, Conn: sa.conn.cfg.Name, Level: events.Warn,
		Message: fmt.Sprintf("unprotected %s from %s ignored: %s", what, p.Remote, why),
		Explain: "IKEv1 believes a Delete or an INITIAL-CONTACT only under the ISAKMP SA's keys; otherwise a single forged packet could tear down every tunnel. Before phase 1 ends, an error in the clear from the peer is believed, since dropping our packets would do the same harm.",
		IKE:     sa.ikeInfo(events.Received, msgInfo{exchange: "informational", num: 1, total: 1}, nil, len(p.Data)),
		Fields:  map[string]any{"what": what, "reason": why, "peer": p.Remote.String()},
	})
}

package ike

import (
	"crypto/hmac"
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/ipseclab/ipseclab/events"
	"github.com/ipseclab/ipseclab/ipsec/esp"
	"github.com/ipseclab/ipseclab/ipsec/isakmp"
	"github.com/ipseclab/ipseclab/ipsec/keymat"
	"github.com/ipseclab/ipseclab/ipsec/proposal"
)

// Quick Mode (RFC 2409 §5.5; NAT-OA from RFC 3947 §5):
//
//	Initiator                                  Responder
//	---------                                  ---------
//	HDR*, HASH(1), SA, Ni [, KE] [, IDci, IDcr] [, NAT-OAi, NAT-OAr]  -->   QM1
//	             <--  HDR*, HASH(2), SA, Nr [, KE] [, IDci, IDcr] [, NAT-OA...]  QM2
//	HDR*, HASH(3)                                                     -->   QM3
//
//	HASH(1) = prf(SKEYID_a, M-ID | SA | Ni [| KE] [| IDci | IDcr ...])
//	HASH(2) = prf(SKEYID_a, M-ID | Ni_b | SA | Nr [| KE] [| IDci | IDcr ...])
//	HASH(3) = prf(SKEYID_a, 0 | M-ID | Ni_b | Nr_b)
//
// Everything is encrypted under the ISAKMP SA, with an IV chain of its own
// per message ID. The SA payloads carry each side's inbound SPI; the KEYMAT
// of each IPsec SA is derived with the SPI its destination chose. A KE pair
// gives the new keys perfect forward secrecy (PFS): they no longer depend on
// phase 1's Diffie-Hellman secret alone. The client IDs are the traffic
// selectors: what the SA pair will carry.
//
// Installing happens so that no packet is lost: the responder installs its
// inbound SA before sending QM2, the initiator its inbound SA on QM2 and its
// outbound SA one Quick Mode round trip after sending QM3 (a responder such
// as charon installs its inbound SA only on QM3), and the responder its
// outbound SA on QM3. The responder's policy goes in before QM2 too: ESP from
// the initiator can overtake QM3 (another socket, another queue), and a reply
// to it then waits in the policy's acquire queue until QM3 installs the
// outbound SA, instead of matching no policy. The policy is marked as being
// negotiated meanwhile, so that the waiting reply does not look like an
// acquire (step 1) of the responder's own. A rekey adds the new pair before
// the old one goes.
//
// The responder chooses which of its connections the IPsec SAs belong to by
// the offer itself: the client IDs must lie within the connection's
// selectors, and one of its proposals must be offered. Phase 1 chose the
// ISAKMP SA's connection by the peer's address only, so every connection the
// authenticated peer may use is a candidate (isakmpSA.mayUse).

var quickModeExplain = [...]string{
	1: "Quick Mode 1/3: under the ISAKMP SA's protection, the initiator offers IPsec proposals with its SPI, a fresh nonce, a Diffie-Hellman value when PFS is on, and the traffic selectors",
	2: "Quick Mode 2/3: the responder's choice with its own SPI and nonce (and DH value for PFS); HASH(2) also covers the initiator's nonce, proving the answer is fresh",
	3: "Quick Mode 3/3: HASH(3) proves the initiator received the answer; the responder installs its outbound SA and both IPsec SAs carry traffic",
}

// info places message n of the exchange, with the connection it negotiates
// once that is known.
func (qm *quickMode) info(n int) msgInfo {
	return msgInfo{exchange: "quick", num: n, total: 3, step: events.StepPhase2, explain: quickModeExplain[n], conn: qm.conn}
}

type qmState int

const (
	qmI1Sent qmState = iota + 1 // initiator sent QM1, waits for QM2
	qmR2Sent                    // responder sent QM2, waits for QM3
	qmI3Sent                    // initiator sent QM3, gives the responder time to install before sending ESP
	qmDone                      // finished, kept a while to answer repeats
)

// keepFinished is how long a finished Quick Mode is remembered, to answer a
// repeated QM2 (the peer lost our QM3) and to ignore a repeated QM3.
const keepFinished = 30 * time.Second

// quickMode is one Quick Mode exchange.
type quickMode struct {
	sa        *isakmpSA
	conn      *conn // whose IPsec SAs: the request's, or the one the responder chose for the offer
	mid       uint32
	initiator bool
	req       *childRequest // initiator: who asked for it
	rekeyOf   *childSA      // the pair it replaces, if it is a rekey
	state     qmState
	ex        exchange

	proto         esp.Protocol
	spiIn, spiOut uint32
	choice        childChoice
	niB, nrB      []byte
	dh            *keymat.PrivateKey
	gqmxy         []byte
	localTS       esp.TrafficSelector
	remoteTS      esp.TrafficSelector
	idci, idcr    *isakmp.ID   // responder: as received, echoed in QM2
	peerOA        []netip.Addr // the NAT-OA payloads the peer sent (RFC 3947 §5.2), NAT-OAi first
	mode          esp.Mode
	encap         bool
	lifetime      time.Duration
	lifeBytes     uint64
	softBytes     uint64 // the pair's soft byte limit, drawn once for both SAs
	inInstalled   bool
	negotiating   bool // it marked its policy as negotiated (esp.DataPlane.SetNegotiating) until the outbound SA goes in
	child         *childSA
	forgetTimer   *timer
	installTimer  *timer // initiator: installs the outbound SA after QM3
	why           string // a failure's explanation (mismatch.go), if it has one
}

// startQuickMode sends QM1 for a child request over an established ISAKMP
// SA.
func (e *Engine) startQuickMode(sa *isakmpSA, r *childRequest) {
	c := r.conn
	ch := &c.cfg.Child
	first, _ := childSuite(ch.Proposals[0])
	qm := &quickMode{sa: sa, conn: c, initiator: true, req: r, rekeyOf: r.rekeyOf, mode: ch.Mode, encap: sa.nat.any(),
		proto: espProtocol(first.proto), lifetime: ch.Lifetime, lifeBytes: ch.LifeBytes}
	spi, err := e.dp.AllocateSPI(qm.proto)
	if err != nil {
		e.requestFailed(r, sa, fmt.Sprintf("no SPI from the data plane: %v", err))
		return
	}
	qm.spiIn = spi
	qm.mid = sa.messageID()
	sa.quick[qm.mid] = qm
	qm.localTS, qm.remoteTS = c.selectors(sa)

	qm.niB = e.nonce()
	payloads := []isakmp.Payload{childOffer(ch, spi, encapsulationMode(qm.mode, qm.encap, sa.peer.nattDraft)), &isakmp.Nonce{Data: qm.niB}}
	if g := first.attrs.Group; g != 0 {
		if qm.dh, err = e.newDH(g); err != nil {
			e.quickModeFailed(qm, err.Error())
			return
		}
		payloads = append(payloads, &isakmp.KE{Data: qm.dh.Public()})
	}
	payloads = append(payloads, selectorID(qm.localTS), selectorID(qm.remoteTS))
	if qm.mode == esp.Transport && qm.encap {
		// RFC 3947 §5.2: the original addresses, for the peer's transport
		// mode checksum fix-up; the initiator's first.
		payloads = append(payloads, isakmp.NewNATOA(sa.peer.nattDraft, sa.local.Addr()), isakmp.NewNATOA(sa.peer.nattDraft, sa.remote.Addr()))
	}
	qm.state = qmI1Sent
	sa.sendRequest(&qm.ex, isakmp.ExchangeQuickMode, qm.mid, sa.withHash1(qm.mid, payloads), true, qm.info(1), func() {
		qm.why = silenceExplain
		e.quickModeFailed(qm, fmt.Sprintf("no answer to Quick Mode 1/3 from %s", sa.remote))
	})
}

// receiveQuickMode authenticates a Quick Mode message and hands it to its
// exchange: a new one for QM1, the one it continues otherwise.
func (e *Engine) receiveQuickMode(sa *isakmpSA, p Packet, m *isakmp.Message) {
	mid := m.Header.MessageID
	qm := sa.quick[mid]
	if qm != nil && e.duplicate(sa, &qm.ex, p.Data) {
		return
	}
	if qm != nil && (qm.state == qmDone || qm.state == qmI3Sent) {
		e.stats.Duplicates++ // a late repeat of an exchange that ended (failed, or answered)
		return
	}
	if sa.state != established || mid == 0 {
		e.malformedIn(sa, p, "Quick Mode before phase 1 completed, or with message ID 0")
		return
	}
	if err := sa.decrypt(m); err != nil {
		e.malformedIn(sa, p, "Quick Mode message does not decrypt: "+err.Error())
		return
	}
	hash, rest, ok := leadingHash(m)
	if !ok {
		e.malformedIn(sa, p, "Quick Mode message does not start with HASH")
		e.invalidHash(sa, mid)
		return
	}
	var want []byte
	switch {
	case qm == nil:
		want = sa.keys.Hash1(mid, rest)
	case qm.state == qmI1Sent:
		want = sa.keys.Hash2(mid, qm.niB, rest)
	default: // qmR2Sent
		want = sa.keys.Hash3(mid, qm.niB, qm.nrB)
	}
	if !hmac.Equal(hash.Data, want) {
		e.malformedIn(sa, p, "Quick Mode HASH does not match: forged, corrupted, or out of order")
		e.invalidHash(sa, mid)
		return
	}
	sa.ivs.Update(mid, m.Ciphertext)
	e.followFloat(sa, p)
	sa.dpd.heard(e.clock.Now())
	switch {
	case qm == nil && !sa.ra.done():
		e.malformedIn(sa, p, "Quick Mode before XAUTH and Mode Config are done: the client has no address to protect yet")
	case qm == nil:
		e.quickModeR1(sa, p, m)
	case qm.state == qmI1Sent:
		e.quickModeI2(qm, p, m)
	default:
		e.quickModeR3(qm, p, m)
	}
}

// settleConnection ends a responder's doubt about which connection its
// ISAKMP SA serves, once a Quick Mode for c was accepted: an SA whose phase 1
// could not tell c from its own connection becomes c's.
func (e *Engine) settleConnection(sa *isakmpSA, c *conn) {
	alike := sa.alike
	sa.alike = nil
	if c == sa.conn || !slices.Contains(alike, c) {
		return
	}
	old := sa.moveTo(c)
	e.pub.Publish(events.Event{
		Kind: events.ISAKMPConn, Step: events.StepPhase2, Conn: c.cfg.Name,
		Message: fmt.Sprintf("ISAKMP SA %s/%s with %s serves connection %s: phase 1 could not tell it from %s (same peer, same key); its first Quick Mode did", sa.ckyI, sa.ckyR, sa.peerName(), c.cfg.Name, old.cfg.Name),
		Explain: "A Main Mode responder picks its connection, and so its key, by the initiator's address, before any identity or selector arrives. Each connection negotiates an ISAKMP SA of its own; the selectors of the first Quick Mode show which one the initiator meant.",
		SA:      sa.info(), Fields: map[string]any{"was": old.cfg.Name},
	})
}

// quickModeR1 is the responder's side of QM1: choose the connection and a
// proposal, check the selectors, install the inbound SA and the policy, and
// answer with QM2.
func (e *Engine) quickModeR1(sa *isakmpSA, p Packet, m *isakmp.Message) {
	qm := &quickMode{sa: sa, mid: m.Header.MessageID}
	sa.quick[qm.mid] = qm

	offer, nonce := isakmp.First[*isakmp.SA](m), isakmp.First[*isakmp.Nonce](m)
	ids := isakmp.All[*isakmp.ID](m)
	var rej *qmRejection
	switch {
	case offer == nil || nonce == nil:
		rej = &qmRejection{notify: isakmp.NotifyPayloadMalformed, reason: "Quick Mode 1/3 lacks its SA or NONCE payload"}
	case len(ids) != 0 && len(ids) != 2:
		rej = &qmRejection{notify: isakmp.NotifyInvalidIDInformation, reason: fmt.Sprintf("Quick Mode 1/3 carries %d client IDs; 0 or 2 are allowed", len(ids))}
	default:
		qm.niB = nonce.Body()
		if len(ids) == 2 {
			qm.idci, qm.idcr = ids[0], ids[1]
		}
		qm.peerOA = natOAs(m)
		rej = e.chooseChild(qm, offer)
	}
	if rej == nil {
		e.settleConnection(sa, qm.conn)
	}
	// Published once the connection is known, so that the event names it.
	e.publishMessage(sa, events.Received, m, len(p.Data), qm.info(1))
	if rej != nil {
		if c := rej.noProposal; c != nil {
			e.publishNoProposal(c, sa.remote, events.Sent, rej.offered, suiteNames(c.cfg.Child.Proposals), events.StepPhase2)
			qm.why = noProposalExplain(events.Sent, events.StepPhase2, rej.offered)
		} else if rej.notify == isakmp.NotifyInvalidIDInformation {
			qm.why = selectorMismatch(sa.conn, sa, qm.idci, qm.idcr)
		}
		e.rejectQuickMode(qm, rej.notify, rej.spi, rej.reason)
		return
	}
	ch := &qm.conn.cfg.Child
	choice := qm.choice
	qm.lifetime, qm.lifeBytes = ch.Lifetime, ch.LifeBytes
	qm.proto = espProtocol(choice.proposal.Protocol)
	qm.mode, qm.encap = ch.Mode, choice.attrs.Encapsulation.UDPEncapsulated()
	if len(choice.proposal.SPI) != 4 || binary.BigEndian.Uint32(choice.proposal.SPI) < 256 {
		e.rejectQuickMode(qm, isakmp.NotifyInvalidSPI, choice.proposal.SPI, fmt.Sprintf("the offered SPI %x is not a valid 4-byte SPI", choice.proposal.SPI))
		return
	}
	qm.spiOut = binary.BigEndian.Uint32(choice.proposal.SPI)
	qm.rekeyOf = qm.conn.replaceable(sa.remote, qm.proto, qm.localTS, qm.remoteTS)
	e.publishProposalChosen(sa, qm)

	if g := choice.attrs.Group; g != 0 {
		ke := isakmp.First[*isakmp.KE](m)
		if ke == nil {
			e.rejectQuickMode(qm, isakmp.NotifyInvalidKeyInformation, choice.proposal.SPI, "PFS was proposed, but Quick Mode 1/3 has no KE payload")
			return
		}
		var err error
		if qm.dh, err = e.newDH(g); err == nil {
			qm.gqmxy, err = qm.dh.SharedSecret(ke.Data)
			qm.dh.Zero() // g^qm xy was all it was for; QM2 carries only its public value
		}
		if err != nil {
			e.rejectQuickMode(qm, isakmp.NotifyInvalidKeyInformation, choice.proposal.SPI, err.Error())
			return
		}
	}
	respLife := qm.negotiateLifetimes(choice.attrs)
	spi, err := e.dp.AllocateSPI(qm.proto)
	if err != nil {
		e.rejectQuickMode(qm, isakmp.NotifyNoProposalChosen, choice.proposal.SPI, "no SPI from the data plane: "+err.Error())
		return
	}
	qm.spiIn = spi
	qm.nrB = e.nonce()
	if err := e.installInbound(qm); err != nil {
		e.rejectQuickMode(qm, isakmp.NotifyNoProposalChosen, choice.proposal.SPI, "installing the inbound SA: "+err.Error())
		return
	}
	// The policy and its route into the TUN go in before QM2 leaves, not
	// while it travels: the initiator sends ESP as soon as QM3 has left,
	// and the reply to it, routed before the route existed, left the
	// gateway in the clear by its default route (seen under CPU
	// contention, when this goroutine lost its core between the two).
	if err := e.ensurePolicy(qm.conn, qm.localTS, qm.remoteTS); err != nil {
		e.rejectQuickMode(qm, isakmp.NotifyNoProposalChosen, choice.proposal.SPI, "installing the policy: "+err.Error())
		return
	}
	if err := e.dp.SetNegotiating(qm.policyKey(), true); err != nil {
		e.rejectQuickMode(qm, isakmp.NotifyNoProposalChosen, choice.proposal.SPI, "marking the policy: "+err.Error())
		return
	}
	qm.negotiating = true

	reply := choice.proposal
	reply.SPI = spiBytes(spi)
	payloads := []isakmp.Payload{&isakmp.SA{DOI: offer.DOI, Situation: offer.Situation, Proposals: []isakmp.Proposal{reply}}, &isakmp.Nonce{Data: qm.nrB}}
	if qm.dh != nil {
		payloads = append(payloads, &isakmp.KE{Data: qm.dh.Public()})
	}
	if qm.idci != nil {
		payloads = append(payloads, &isakmp.ID{IDType: qm.idci.IDType, Protocol: qm.idci.Protocol, Port: qm.idci.Port, Data: qm.idci.Data},
			&isakmp.ID{IDType: qm.idcr.IDType, Protocol: qm.idcr.Protocol, Port: qm.idcr.Port, Data: qm.idcr.Data})
	}
	if qm.mode == esp.Transport && qm.encap {
		payloads = append(payloads, isakmp.NewNATOA(sa.peer.nattDraft, sa.remote.Addr()), isakmp.NewNATOA(sa.peer.nattDraft, sa.local.Addr()))
	}
	if respLife != nil {
		payloads = append(payloads, respLife)
	}
	rest, _ := isakmp.EncodePayloads(payloads...)
	payloads = append([]isakmp.Payload{&isakmp.Hash{Data: sa.keys.Hash2(qm.mid, qm.niB, rest)}}, payloads...)
	qm.state = qmR2Sent
	sa.sendRequest(&qm.ex, isakmp.ExchangeQuickMode, qm.mid, payloads, true, qm.info(2), func() {
		e.quickModeFailed(qm, fmt.Sprintf("no Quick Mode 3/3 from %s", sa.remote))
	})
	qm.ex.accepted(p.Data, qm.ex.out, qm.info(2))
}

// quickModeI2 is the initiator's side of QM2: check the answer, install both
// SAs, send QM3.
func (e *Engine) quickModeI2(qm *quickMode, p Packet, m *isakmp.Message) {
	sa := qm.sa
	e.publishMessage(sa, events.Received, m, len(p.Data), qm.info(2))
	for _, n := range isakmp.All[*isakmp.Notify](m) {
		if n.NotifyType.IsError() {
			e.quickModeFailed(qm, "the responder answered with "+n.NotifyType.String())
			return
		}
	}
	reply, nonce := isakmp.First[*isakmp.SA](m), isakmp.First[*isakmp.Nonce](m)
	if reply == nil || nonce == nil {
		e.quickModeFailed(qm, "Quick Mode 2/3 lacks its SA or NONCE payload")
		return
	}
	choice, err := qm.acceptChildReply(reply)
	if err != nil {
		e.quickModeFailed(qm, "Quick Mode 2/3: "+err.Error())
		return
	}
	qm.choice = choice
	qm.spiOut = binary.BigEndian.Uint32(choice.proposal.SPI)
	qm.nrB = nonce.Body()
	qm.peerOA = natOAs(m)
	if qm.dh != nil {
		ke := isakmp.First[*isakmp.KE](m)
		if ke == nil {
			e.quickModeFailed(qm, "PFS was agreed, but Quick Mode 2/3 has no KE payload")
			return
		}
		qm.gqmxy, err = qm.dh.SharedSecret(ke.Data)
		qm.dh.Zero() // as in phase 1: the private key has done its part
		if err != nil {
			e.quickModeFailed(qm, "Quick Mode 2/3: "+err.Error())
			return
		}
	}
	if ids := isakmp.All[*isakmp.ID](m); len(ids) == 2 {
		if err := qm.acceptNarrowedSelectors(ids[0], ids[1]); err != nil {
			e.quickModeFailed(qm, err.Error())
			return
		}
	}
	qm.negotiateLifetimes(choice.attrs)
	for _, n := range isakmp.All[*isakmp.Notify](m) {
		if n.NotifyType == isakmp.NotifyResponderLifetime {
			qm.applyResponderLifetime(n)
		}
	}
	e.publishProposalChosen(sa, qm)
	if err := e.installInbound(qm); err != nil {
		e.quickModeFailed(qm, "installing the inbound SA: "+err.Error())
		return
	}
	// The outbound SA goes in after QM3. When something would use it at
	// once (packets held for the acquire, which installing it releases, or
	// the traffic of the pair it replaces), not at once either: a responder
	// that installs its inbound SA only on QM3 (charon does) drops ESP that
	// arrives first. QM3 and that ESP travel the same path, so what the
	// responder needs is its own time to take QM3, which the round trip of
	// QM1 and QM2 bounds from above when the path is slow, and not always
	// when it is fast: charon's install of two SAs and a route took longer
	// than its answer to QM1 in 3 of 25 runs on a loaded machine here, twice
	// as long in none of 30. Three round trips leave a margin. Meanwhile
	// new packets wait with the held ones, or use the SA being rekeyed.
	var wait time.Duration
	if qm.rekeyOf != nil || e.dp.Held(qm.policyKey()) > 0 {
		wait = min(installRoundTrips*e.clock.Now().Sub(qm.ex.sent), maxInstallDelay)
	}
	// The policy goes in now, marked as negotiated: a packet that arrives
	// meanwhile (with start: none there is no trap policy) waits for the SA
	// instead of leaving in the clear or raising an acquire of its own.
	if err := e.ensurePolicy(qm.conn, qm.localTS, qm.remoteTS); err != nil {
		e.quickModeFailed(qm, "installing the policy: "+err.Error())
		return
	}
	if err := e.dp.SetNegotiating(qm.policyKey(), true); err != nil {
		e.quickModeFailed(qm, "marking the policy: "+err.Error())
		return
	}
	qm.negotiating = true
	payloads := []isakmp.Payload{&isakmp.Hash{Data: sa.keys.Hash3(qm.mid, qm.niB, qm.nrB)}}
	qm.ex.stopRetransmit()
	qm.ex.accepted(p.Data, sa.send(isakmp.ExchangeQuickMode, qm.mid, payloads, true, qm.info(3)), qm.info(3))
	qm.state = qmI3Sent
	if wait <= 0 {
		e.quickModeI3(qm)
		return
	}
	qm.installTimer = e.after(wait, func() { e.quickModeI3(qm) })
}

// installRoundTrips is how many Quick Mode round trips the initiator waits
// after QM3 before its outbound SA goes in; maxInstallDelay bounds the wait
// on a slow path.
const (
	installRoundTrips = 3
	maxInstallDelay   = time.Second
)

// quickModeI3 completes the initiator's side once the responder had time to
// take QM3: the outbound SA goes in and carries the held packets.
func (e *Engine) quickModeI3(qm *quickMode) {
	if qm.state != qmI3Sent {
		return
	}
	if err := e.installOutbound(qm); err != nil {
		// The peer took QM3 and installed its side: tell it to drop it.
		e.sendDelete(qm.sa, &isakmp.Delete{DOI: isakmp.DOIIPsec, Protocol: isakmpProtocol(qm.proto), SPISize: 4, SPIs: [][]byte{spiBytes(qm.spiIn)}})
		e.quickModeFailed(qm, "installing the outbound SA: "+err.Error())
		return
	}
	e.quickModeDone(qm)
}

// quickModeR3 completes the responder's side: the outbound SA goes in.
func (e *Engine) quickModeR3(qm *quickMode, p Packet, m *isakmp.Message) {
	e.publishMessage(qm.sa, events.Received, m, len(p.Data), qm.info(3))
	qm.ex.stopRetransmit()
	qm.ex.accepted(p.Data, nil, qm.info(3))
	if err := e.installOutbound(qm); err != nil {
		e.quickModeFailed(qm, "installing the outbound SA: "+err.Error())
		return
	}
	e.quickModeDone(qm)
}

// quickModeDone publishes the new pair, completes the request, and keeps the
// exchange a while for repeats.
func (e *Engine) quickModeDone(qm *quickMode) {
	qm.state = qmDone
	e.childUp(qm)
	if qm.req != nil {
		qm.req.finish(nil)
	}
	qm.forgetAfter(keepFinished)
}

// forgetAfter drops the exchange and its IV chain after d.
func (qm *quickMode) forgetAfter(d time.Duration) {
	sa := qm.sa
	qm.forgetTimer = sa.e.after(d, func() {
		if sa.quick[qm.mid] == qm {
			delete(sa.quick, qm.mid)
			if sa.ivs != nil {
				sa.ivs.Forget(qm.mid)
			}
		}
	})
}

// abandon stops the exchange without a word, when its ISAKMP SA goes away.
func (qm *quickMode) abandon() {
	e := qm.sa.e
	qm.ex.stopRetransmit()
	qm.forgetTimer.stop()
	qm.installTimer.stop()
	if qm.state != qmDone {
		qm.state = qmDone
		e.releaseQuickMode(qm)
		if qm.req != nil {
			e.requestFailed(qm.req, qm.sa, "the ISAKMP SA went away during Quick Mode")
		}
	}
}

// quickModeFailed ends an exchange that cannot complete.
func (e *Engine) quickModeFailed(qm *quickMode, reason string) {
	if qm.state == qmDone {
		return
	}
	qm.state = qmDone
	qm.ex.stopRetransmit()
	e.releaseQuickMode(qm)
	e.publishPhase2Failed(qm, reason)
	if qm.req != nil {
		qm.req.finish(fmt.Errorf("connection %s: phase 2: %s", qm.conn.cfg.Name, reason))
		qm.req = nil
	}
	if qm.initiator && qm.rekeyOf != nil && qm.rekeyOf.state == childRekeying {
		qm.rekeyOf.state, qm.rekeyOf.ourRekey = childInstalled, false
	}
	qm.forgetAfter(keepFinished)
}

// releaseQuickMode gives back what an unfinished exchange holds in the data
// plane: its SPI, or the inbound SA and the policy the responder installed
// before QM3, which is no longer being negotiated unless another Quick Mode
// for the same selectors awaits its QM3.
func (e *Engine) releaseQuickMode(qm *quickMode) {
	switch {
	case qm.inInstalled:
		e.dp.DeleteSA(esp.SAID{SPI: qm.spiIn, Protocol: qm.proto, Dst: qm.sa.local.Addr()})
		qm.inInstalled = false
	case qm.spiIn != 0:
		e.dp.ReleaseSPI(qm.proto, qm.spiIn)
	}
	qm.spiIn = 0
	if qm.negotiating {
		qm.negotiating = false
		if !slices.ContainsFunc(e.awaitingOutbound(qm.conn), func(o *quickMode) bool { return o.policyKey() == qm.policyKey() }) {
			e.dp.SetNegotiating(qm.policyKey(), false)
		}
	}
	if qm.conn != nil {
		e.dropIdlePolicies(qm.conn)
	}
}

// rejectQuickMode answers a QM1 we cannot accept with a protected
// notification, like strongSwan: the error and the initiator's SPI.
func (e *Engine) rejectQuickMode(qm *quickMode, t isakmp.NotifyType, spi []byte, reason string) {
	proto := isakmp.ProtocolESP
	if qm.proto == esp.ProtoAH {
		proto = isakmp.ProtocolAH
	}
	e.notifyPeer(qm.sa, &isakmp.Notify{DOI: isakmp.DOIIPsec, Protocol: proto, NotifyType: t, SPI: spi})
	e.quickModeFailed(qm, reason)
}

// acceptChildReply checks the responder's SA payload: one proposal of our
// protocol with a 4-byte SPI and one of the transforms we offered, in the
// mode we asked for.
func (qm *quickMode) acceptChildReply(reply *isakmp.SA) (childChoice, error) {
	if len(reply.Proposals) != 1 || len(reply.Proposals[0].Transforms) != 1 {
		return childChoice{}, fmt.Errorf("the responder must return exactly one proposal with one transform")
	}
	prop := reply.Proposals[0]
	if len(prop.SPI) != 4 || binary.BigEndian.Uint32(prop.SPI) < 256 {
		return childChoice{}, fmt.Errorf("the responder's SPI %x is not a valid 4-byte SPI", prop.SPI)
	}
	s, a, known := childProposal(prop.Protocol, prop.Transforms[0])
	want := encapsulationMode(qm.mode, qm.encap, qm.sa.peer.nattDraft)
	if !known || espProtocol(prop.Protocol) != qm.proto {
		return childChoice{}, fmt.Errorf("the responder chose a transform we did not offer")
	}
	if a.Encapsulation != want && a.Encapsulation != 0 {
		return childChoice{}, fmt.Errorf("the responder chose %s, we asked for %s", a.Encapsulation, want)
	}
	for _, o := range qm.conn.cfg.Child.Proposals {
		if o == s {
			return childChoice{suite: s, attrs: a, proposal: prop}, nil
		}
	}
	return childChoice{}, fmt.Errorf("the responder chose %s, which we did not offer", s)
}

// negotiateLifetimes takes the shorter of each offered lifetime and ours. A
// responder whose own is shorter than offered says so with RESPONDER-LIFETIME
// (RFC 2407 §4.6.3.1), which it returns.
func (qm *quickMode) negotiateLifetimes(a isakmp.IPsecAttributes) *isakmp.Notify {
	shorter := false
	if s := time.Duration(a.LifeSeconds) * time.Second; s > 0 {
		if s < qm.lifetime {
			qm.lifetime = s
		} else if s > qm.lifetime {
			shorter = true
		}
	}
	if b := a.LifeKilobytes * 1000; b > 0 {
		if qm.lifeBytes == 0 || b < qm.lifeBytes {
			qm.lifeBytes = b
		} else if b > qm.lifeBytes {
			shorter = true
		}
	}
	if qm.initiator || !shorter {
		return nil
	}
	attrs := isakmp.IPsecAttributes{LifeSeconds: uint64(qm.lifetime / time.Second), LifeKilobytes: qm.lifeBytes / 1000}.Attributes()
	n, err := isakmp.NewResponderLifetime(isakmpProtocol(qm.proto), spiBytes(qm.spiOut), attrs)
	if err != nil {
		return nil
	}
	return n
}

// applyResponderLifetime honours the responder's shorter lifetimes.
func (qm *quickMode) applyResponderLifetime(n *isakmp.Notify) {
	attrs, err := n.Attributes()
	if err != nil {
		return
	}
	a, err := isakmp.ParseIPsecAttributes(attrs)
	if err != nil {
		return
	}
	if s := time.Duration(a.LifeSeconds) * time.Second; s > 0 && s < qm.lifetime {
		qm.lifetime = s
	}
	if b := a.LifeKilobytes * 1000; b > 0 && (qm.lifeBytes == 0 || b < qm.lifeBytes) {
		qm.lifeBytes = b
	}
}

// withHash1 prepends HASH(1) = prf(SKEYID_a, M-ID | payloads) to payloads.
func (sa *isakmpSA) withHash1(mid uint32, payloads []isakmp.Payload) []isakmp.Payload {
	rest, _ := isakmp.EncodePayloads(payloads...)
	return append([]isakmp.Payload{&isakmp.Hash{Data: sa.keys.Hash1(mid, rest)}}, payloads...)
}

// encapsulationMode is the IPsec DOI Encapsulation Mode for a mode, with UDP
// encapsulation after a NAT (RFC 3947 §5, or the draft values).
func encapsulationMode(mode esp.Mode, udp, draft bool) isakmp.EncapsulationMode {
	switch {
	case mode == esp.Transport && udp && draft:
		return isakmp.EncapUDPTransportDraft
	case mode == esp.Transport && udp:
		return isakmp.EncapUDPTransport
	case mode == esp.Transport:
		return isakmp.EncapTransport
	case udp && draft:
		return isakmp.EncapUDPTunnelDraft
	case udp:
		return isakmp.EncapUDPTunnel
	}
	return isakmp.EncapTunnel
}

// qmRejection is why a Quick Mode offer finds no taker: the notification
// for the initiator, the SPI it names, and the reason; for NO-PROPOSAL-CHOSEN
// also the connection whose proposals were compared and what was offered.
type qmRejection struct {
	notify     isakmp.NotifyType
	spi        []byte
	reason     string
	noProposal *conn
	offered    offerSummary
}

// chooseChild finds the connection whose IPsec SAs the offer asks for: among
// those the peer may use, the ISAKMP SA's own first and then the others in
// their configured order, the first whose selectors contain the client IDs
// and which has a proposal in common with the offer. It records the
// connection, the selectors and the proposal in qm.
func (e *Engine) chooseChild(qm *quickMode, offer *isakmp.SA) *qmRejection {
	sa := qm.sa
	cands := []*conn{sa.conn}
	for _, c := range e.conns {
		if c != sa.conn && sa.mayUse(c) {
			cands = append(cands, c)
		}
	}
	var idErrs []string
	var rej *qmRejection
	for _, c := range cands {
		local, remote, err := c.clientSelectors(sa, qm.idci, qm.idcr)
		if err != nil {
			idErrs = append(idErrs, fmt.Sprintf("%s: %v", c.cfg.Name, err))
			continue
		}
		choice, offered, ok := selectChild(offer, c.cfg.Child.Proposals, c.cfg.Child.acceptsEncapsulation)
		if !ok {
			if rej == nil {
				var spi []byte // the initiator's, so that it knows which offer failed
				if len(offer.Proposals) > 0 {
					spi = offer.Proposals[0].SPI
				}
				rej = &qmRejection{notify: isakmp.NotifyNoProposalChosen, spi: spi, reason: "no acceptable IPsec proposal", noProposal: c, offered: offered}
			}
			continue
		}
		qm.conn, qm.localTS, qm.remoteTS, qm.choice = c, local, remote, choice
		if cr, err := idSelector(qm.idcr); err == nil && cr != local && sa.lease != nil {
			qm.idcr = selectorID(local) // narrowed: the answer names what we took
		}
		return nil
	}
	if rej != nil {
		return rej
	}
	reason := idErrs[0]
	if len(idErrs) == 1 {
		_, reason, _ = strings.Cut(reason, ": ")
	} else {
		reason = "no connection with this peer has selectors for the offer (" + strings.Join(idErrs, "; ") + ")"
	}
	return &qmRejection{notify: isakmp.NotifyInvalidIDInformation, reason: reason}
}

// acceptsEncapsulation reports whether an offered encapsulation mode is the
// child's mode, UDP-encapsulated or not (AH never is: RFC 3948 covers ESP only).
func (ch *Child) acceptsEncapsulation(m isakmp.EncapsulationMode) bool {
	mode := esp.Transport
	if m.Tunnel() || m == 0 {
		mode = esp.Tunnel
	}
	return mode == ch.Mode && (!m.UDPEncapsulated() || ch.Proposals[0].Protocol != proposal.AH)
}

// selectors are the connection's traffic selectors over an ISAKMP SA: the
// child's prefixes, or the two IKE endpoints (host to host).
func (c *conn) selectors(sa *isakmpSA) (local, remote esp.TrafficSelector) {
	ch := &c.cfg.Child
	if l := sa.lease; l != nil {
		// Remote access: the client's side is the address Mode Config lent
		// it; the other side the gateway's networks as configured, else the
		// one network to tunnel, else everything (Quick Mode carries one
		// subnet a side: with several, the SAs cover everything and the
		// client routes only those networks into the tunnel).
		gateway := sa.ra != nil && sa.ra.gateway
		host := esp.HostSelector(l.Addr.Addr())
		nets := esp.TrafficSelector{Prefix: netip.PrefixFrom(netip.IPv4Unspecified(), 0)}
		switch {
		case gateway && ch.LocalTS.IsValid():
			nets.Prefix = ch.LocalTS
		case !gateway && ch.RemoteTS.IsValid():
			nets.Prefix = ch.RemoteTS
		case len(l.SplitInclude) == 1:
			nets.Prefix = l.SplitInclude[0]
		}
		if gateway {
			return nets, host
		}
		return host, nets
	}
	if ch.LocalTS.IsValid() {
		return esp.TrafficSelector{Prefix: ch.LocalTS}, esp.TrafficSelector{Prefix: ch.RemoteTS}
	}
	return esp.HostSelector(sa.local.Addr()), esp.HostSelector(sa.remote.Addr())
}

// clientSelectors checks an initiator's client IDs against the connection's
// selectors and returns ours for the SAs: its IDci must lie within our remote
// selector, its IDcr within our local one (an initiator may ask for less than
// we allow; RFC 2409 has no narrowing, so we take what it asked for). Without
// IDs the SAs are between the IKE endpoints. In transport mode through a NAT
// the peer's own address is replaced by the one we see, as strongSwan does.
func (c *conn) clientSelectors(sa *isakmpSA, idci, idcr *isakmp.ID) (local, remote esp.TrafficSelector, err error) {
	ours, theirs := c.selectors(sa)
	if idci == nil {
		host, peer := esp.HostSelector(sa.local.Addr()), esp.HostSelector(sa.remote.Addr())
		if !within(peer, theirs) || !within(host, ours) {
			return local, remote, fmt.Errorf("no client IDs means %s === %s, which is not within our %s === %s", peer, host, theirs, ours)
		}
		return host, peer, nil
	}
	ci, err := idSelector(idci)
	if err != nil {
		return local, remote, fmt.Errorf("IDci: %v", err)
	}
	cr, err := idSelector(idcr)
	if err != nil {
		return local, remote, fmt.Errorf("IDcr: %v", err)
	}
	if !c.cfg.Child.LocalTS.IsValid() && sa.nat.any() && sa.lease == nil {
		// Host to host through a NAT: the peer's own address, which it
		// names, is not the one we see. A road warrior's is its lease.
		ci, cr = esp.HostSelector(sa.remote.Addr()), esp.HostSelector(sa.local.Addr())
	}
	if sa.lease != nil && within(ci, theirs) && within(ours, cr) && cr != ours {
		// A road warrior asks for everything (vpnc does, 0.0.0.0/0); the
		// gateway narrows it to its networks, as charon's unity plugin does,
		// and says so in its answer's IDcr.
		return ours, ci, nil
	}
	if !within(ci, theirs) || !within(cr, ours) {
		return local, remote, fmt.Errorf("the initiator asks for %s === %s, which is not within our %s === %s", ci, cr, theirs, ours)
	}
	return cr, ci, nil
}

// acceptNarrowedSelectors lets the responder return selectors within ours.
func (qm *quickMode) acceptNarrowedSelectors(idci, idcr *isakmp.ID) error {
	ci, err1 := idSelector(idci)
	cr, err2 := idSelector(idcr)
	if err1 != nil || err2 != nil {
		return fmt.Errorf("the responder's client IDs are unusable: %v %v", err1, err2)
	}
	if qm.sa.nat.any() && !qm.conn.cfg.Child.LocalTS.IsValid() {
		return nil
	}
	if !within(ci, qm.localTS) || !within(cr, qm.remoteTS) {
		return fmt.Errorf("the responder chose selectors %s === %s outside ours %s === %s", ci, cr, qm.localTS, qm.remoteTS)
	}
	qm.localTS, qm.remoteTS = ci, cr
	return nil
}

// within reports whether selector a lies inside b.
func within(a, b esp.TrafficSelector) bool {
	return b.Prefix.Bits() <= a.Prefix.Bits() && b.Prefix.Contains(a.Prefix.Addr()) &&
		(b.Protocol == 0 || b.Protocol == a.Protocol) && (b.Port == 0 || b.Port == a.Port)
}

// selectorID is the client ID of a selector: ID_IPV4_ADDR for one host, as
// strongSwan sends it, a subnet otherwise.
func selectorID(ts esp.TrafficSelector) *isakmp.ID {
	var id *isakmp.ID
	if ts.Prefix.IsSingleIP() {
		id = isakmp.NewIDAddr(ts.Prefix.Addr())
	} else {
		id = isakmp.NewIDPrefix(ts.Prefix)
	}
	id.Protocol, id.Port = ts.Protocol, ts.Port
	return id
}

// idSelector reads a client ID as a selector. A range must be a prefix.
func idSelector(id *isakmp.ID) (esp.TrafficSelector, error) {
	p, err := id.Prefix()
	if err != nil {
		first, last, rerr := id.Range()
		if rerr != nil {
			return esp.TrafficSelector{}, fmt.Errorf("%s identification is not a traffic selector", id.IDType)
		}
		if p, err = rangePrefix(first, last); err != nil {
			return esp.TrafficSelector{}, err
		}
	}
	if !p.Addr().Is4() {
		return esp.TrafficSelector{}, fmt.Errorf("%s: only IPv4 selectors are supported", p)
	}
	return esp.TrafficSelector{Prefix: p, Protocol: id.Protocol, Port: id.Port}, nil
}

// rangePrefix turns an address range that is exactly a prefix into it.
func rangePrefix(first, last netip.Addr) (netip.Prefix, error) {
	for bits := 0; bits <= first.BitLen(); bits++ {
		p := netip.PrefixFrom(first, bits).Masked()
		if p.Addr() == first && lastOf(p) == last {
			return p, nil
		}
	}
	return netip.Prefix{}, fmt.Errorf("range %s-%s is not a prefix", first, last)
}

func lastOf(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// natOAs are the addresses of a Quick Mode message's NAT-OA payloads, in
// order. Transport mode through a NAT needs no more of them here: the
// receiver recomputes TCP and UDP checksums after decapsulation instead of
// updating them from these (RFC 3948 §3.1.2), so they are shown, not used.
func natOAs(m *isakmp.Message) []netip.Addr {
	var out []netip.Addr
	for _, p := range isakmp.All[*isakmp.NATOA](m) {
		out = append(out, p.Addr)
	}
	return out
}

// invalidHash tells the peer, under the ISAKMP SA, that a Quick Mode message
// decrypted but failed its HASH (RFC 2408 §5.5: INVALID-HASH-INFORMATION),
// so that an initiator whose Quick Mode 1/3 was refused fails at once
// instead of after its retransmissions. The message itself is dropped, not
// acted on: it may be a forgery replayed under the right keys' IV. At most
// one notification a second per ISAKMP SA, so that a stream of bad messages
// cannot make us send a stream of notifications.
func (e *Engine) invalidHash(sa *isakmpSA, mid uint32) {
	now := e.clock.Now()
	if !sa.lastInvalidHash.IsZero() && now.Sub(sa.lastInvalidHash) < time.Second {
		return
	}
	sa.lastInvalidHash = now
	n := &isakmp.Notify{DOI: isakmp.DOIIPsec, Protocol: isakmp.ProtocolISAKMP, NotifyType: isakmp.NotifyInvalidHashInformation,
		SPI: isakmp.ISAKMPSPI(sa.ckyI, sa.ckyR), Data: binary.BigEndian.AppendUint32(nil, mid)}
	e.notifyPeer(sa, n)
}

package ike

import (
	"crypto/hmac"
	"fmt"
	"net/netip"

	"github.com/ipseclab/ipseclab/events"
	"github.com/ipseclab/ipseclab/ipsec/isakmp"
)

// Aggressive Mode with pre-shared keys (RFC 2409 §5, §5.4; NAT-D from RFC
// 3947 §3):
//
//	Initiator                             Responder
//	---------                             ---------
//	HDR, SA, KE, Ni, IDii, VID       -->                                AM1
//	                                 <--  HDR, SA, KE, Nr, IDir, HASH_R,
//	                                      VID, NAT-D, NAT-D             AM2
//	HDR*, HASH_I, NAT-D, NAT-D       -->                                AM3 (port 4500 after a NAT)
//
// Three messages instead of six, at a price: the initiator's proposal can
// carry only one Diffie-Hellman group (its KE is already in AM1), the
// identities travel in the clear, and AM2 hands any eavesdropper HASH_R,
// which is enough to test guesses of the pre-shared key offline. Like
// strongSwan we encrypt AM3, whose HASH_I RFC 2409 leaves in the clear.

var aggressiveModeExplain = [...]string{
	1: "Aggressive Mode 1/3: proposals, Diffie-Hellman value, nonce and identity sent in clear",
	2: "Aggressive Mode 2/3: the responder's choice, DH value, nonce, identity and HASH_R, all in clear: an eavesdropper can now attack the pre-shared key offline",
	3: "Aggressive Mode 3/3: HASH_I proves the initiator knows the pre-shared key; the ISAKMP SA is established",
}

func amInfo(n int) msgInfo {
	return msgInfo{exchange: "aggressive", num: n, total: 3, step: events.StepPhase1, explain: aggressiveModeExplain[n]}
}

// startAggressiveMode sends AM1 with the Diffie-Hellman value of the group of
// the first proposal (Validate makes all proposals share it).
func (e *Engine) startAggressiveMode(c *conn, peer netip.Addr) *isakmpSA {
	sa := e.newISAKMPSA(c, Initiator, AggressiveMode, netip.AddrPortFrom(c.cfg.Local, portIKE), netip.AddrPortFrom(peer, portIKE))
	offer := phase1Offer(&c.cfg)
	sa.saiB = offer.Body()
	group, _ := phase1Suite(c.cfg.Proposals[0])
	if err := sa.newDHKey(group.Group); err != nil {
		e.phase1Failed(sa, err.Error(), nil)
		return sa
	}
	sa.gxi, sa.ni = sa.dh.Public(), e.nonce()
	idii := c.localID.Payload()
	sa.idiB = idii.Body()
	payloads := []isakmp.Payload{offer, &isakmp.KE{Data: sa.gxi}, &isakmp.Nonce{Data: sa.ni}, idii}
	payloads = append(payloads, ourVendorIDs(&c.cfg)...)
	sa.state = amI1Sent
	sa.sendRequest(&sa.phase1, isakmp.ExchangeAggressive, 0, payloads, false, amInfo(1), func() {
		e.phase1Failed(sa, fmt.Sprintf("no answer to Aggressive Mode 1/3 from %s", sa.remote), nil)
	})
	return sa
}

// aggressiveI2 checks the responder's choice and HASH_R, settles NAT
// traversal and sends AM3: phase 1 is done on our side.
func (e *Engine) aggressiveI2(sa *isakmpSA, p Packet, m *isakmp.Message) {
	e.publishMessage(sa, events.Received, m, len(p.Data), amInfo(2))
	choice, err := acceptPhase1Reply(isakmp.First[*isakmp.SA](m), sa.conn.cfg.Proposals)
	if err != nil {
		e.phase1Failed(sa, "Aggressive Mode 2/3: "+err.Error(), nil)
		return
	}
	ke, nonce, idir, hash := isakmp.First[*isakmp.KE](m), isakmp.First[*isakmp.Nonce](m), isakmp.First[*isakmp.ID](m), isakmp.First[*isakmp.Hash](m)
	if ke == nil || nonce == nil || idir == nil || hash == nil {
		e.malformedIn(sa, p, "Aggressive Mode 2/3 lacks KE, NONCE, ID or HASH")
		return
	}
	sa.choice = choice
	e.readVendorIDs(sa, m)
	e.publishProposalChosen(sa, nil)
	if choice.attrs.Group != sa.dh.Group().ID() {
		e.phase1Failed(sa, fmt.Sprintf("the responder chose group %s, but our KE is for %s", choice.attrs.Group, sa.dh.Group()), nil)
		return
	}
	sa.gxr, sa.nr = ke.Data, nonce.Body()
	if err := sa.deriveKeys(ke.Data); err != nil {
		e.notifyPeer(sa, isakmpNotify(sa, isakmp.NotifyInvalidKeyInformation))
		e.phase1Failed(sa, "Aggressive Mode 2/3: "+err.Error(), nil)
		return
	}
	if !hmac.Equal(hash.Data, sa.keys.HashR(sa.saiB, idir.Body())) {
		e.authFailed(sa, "HASH_R does not match: the pre-shared keys differ", isakmp.NotifyAuthenticationFailed)
		return
	}
	if err := sa.conn.checkRemoteID(idir); err != nil {
		e.authFailed(sa, err.Error(), isakmp.NotifyInvalidIDInformation)
		return
	}
	sa.peerID = identityOf(idir)
	e.detectNAT(sa, p, m)
	e.floatIfNAT(sa)

	payloads := []isakmp.Payload{&isakmp.Hash{Data: sa.keys.HashI(sa.saiB, sa.idiB)}}
	payloads = append(payloads, e.natdPayloads(sa)...)
	if e.firstContact(sa) {
		payloads = append(payloads, isakmp.NewInitialContact(sa.ckyI, sa.ckyR))
	}
	sa.phase1.stopRetransmit()
	sa.phase1.accepted(p.Data, sa.send(isakmp.ExchangeAggressive, 0, payloads, true, amInfo(3)), amInfo(3))
	sa.setEstablished()
}

// respondAggressiveMode answers AM1. The identity in AM1 chooses the
// connection (and so the pre-shared key), then the keys are derived at once,
// because AM2 already carries HASH_R.
func (e *Engine) respondAggressiveMode(p Packet, m *isakmp.Message) {
	offer, ke, nonce, idii := isakmp.First[*isakmp.SA](m), isakmp.First[*isakmp.KE](m), isakmp.First[*isakmp.Nonce](m), isakmp.First[*isakmp.ID](m)
	if offer == nil || ke == nil || nonce == nil || idii == nil {
		e.malformed(p, fmt.Errorf("Aggressive Mode 1/3 lacks SA, KE, NONCE or ID"), nil)
		return
	}
	c, choice, alike, ok := e.selectResponderConn(p, m, offer, AggressiveMode, idii)
	if !ok || !e.admitHalfOpen(p.Remote.Addr()) {
		return
	}
	sa := e.newResponderSA(c, AggressiveMode, p, m)
	sa.alike = alike
	sa.saiB, sa.choice = offer.Body(), choice
	sa.gxi, sa.ni, sa.idiB, sa.peerID = ke.Data, nonce.Body(), idii.Body(), identityOf(idii)
	e.publishMessage(sa, events.Received, m, len(p.Data), amInfo(1))
	e.readVendorIDs(sa, m)
	e.publishProposalChosen(sa, nil)
	if err := sa.newDHKey(choice.attrs.Group); err != nil {
		e.phase1Failed(sa, err.Error(), nil)
		return
	}
	sa.gxr, sa.nr = sa.dh.Public(), e.nonce()
	if err := sa.deriveKeys(sa.gxi); err != nil {
		e.notifyPeer(sa, isakmpNotify(sa, isakmp.NotifyInvalidKeyInformation))
		e.phase1Failed(sa, "Aggressive Mode 1/3: "+err.Error(), nil)
		return
	}
	idir := c.localID.Payload()
	payloads := []isakmp.Payload{
		&isakmp.SA{DOI: offer.DOI, Situation: offer.Situation, Proposals: []isakmp.Proposal{choice.proposal}},
		&isakmp.KE{Data: sa.gxr}, &isakmp.Nonce{Data: sa.nr}, idir,
		&isakmp.Hash{Data: sa.keys.HashR(sa.saiB, idir.Body())},
	}
	payloads = append(payloads, e.responderVendorIDs(sa)...)
	payloads = append(payloads, e.natdPayloads(sa)...)
	sa.state = amR2Sent
	sa.sendRequest(&sa.phase1, isakmp.ExchangeAggressive, 0, payloads, false, amInfo(2), func() {
		e.phase1Failed(sa, fmt.Sprintf("no Aggressive Mode 3/3 from %s: the peer may have rejected HASH_R (a different pre-shared key)", sa.remote), nil)
	})
	sa.phase1.accepted(p.Data, sa.phase1.out, amInfo(2))
}

// aggressiveR3 authenticates the initiator: phase 1 is done.
func (e *Engine) aggressiveR3(sa *isakmpSA, p Packet, m *isakmp.Message) {
	sa.proof = true
	e.followFloat(sa, p)
	encrypted := m.Header.Flags&isakmp.FlagEncryption != 0
	if encrypted {
		if err := sa.decrypt(m); err != nil {
			e.publishMessage(sa, events.Received, m, len(p.Data), amInfo(3))
			e.authFailed(sa, "Aggressive Mode 3/3 does not decrypt: the pre-shared keys differ", isakmp.NotifyAuthenticationFailed)
			return
		}
	}
	e.publishMessage(sa, events.Received, m, len(p.Data), amInfo(3))
	hash := isakmp.First[*isakmp.Hash](m)
	if hash == nil || !hmac.Equal(hash.Data, sa.keys.HashI(sa.saiB, sa.idiB)) {
		e.authFailed(sa, "HASH_I does not match: the pre-shared keys differ", isakmp.NotifyAuthenticationFailed)
		return
	}
	if encrypted {
		sa.ivs.Update(0, m.Ciphertext)
	}
	e.detectNAT(sa, p, m)
	sa.phase1.accepted(p.Data, nil, amInfo(3))
	e.readStatusNotifies(sa, m)
	sa.setEstablished()
}

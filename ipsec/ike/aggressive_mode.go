package ike

import (
	"bytes"
	"fmt"
	"net/netip"

	"github.com/ipseclab/ipseclab/events"
	"github.com/ipseclab/ipseclab/ipsec/isakmp"
)

// Aggressive Mode with pre-shared keys (RFC 2409 §5, §5.4; NAT-D from RFC
// 3947 §3; phase1_auth_pubkey.go says what signatures add, and
// phase1_auth_pkenc.go how public-key encryption hides the identities even
// here):
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

// aggressiveModeExplain is what the timeline says of each message, by method.
var aggressiveModeExplain = map[AuthKind][4]string{
	AuthPSK: {
		1: "Aggressive Mode 1/3: proposals, Diffie-Hellman value, nonce and identity sent in clear",
		2: "Aggressive Mode 2/3: the responder's choice, DH value, nonce, identity and HASH_R, all in clear: an eavesdropper can now attack the pre-shared key offline",
		3: "Aggressive Mode 3/3: HASH_I proves the initiator knows the pre-shared key; the ISAKMP SA is established",
	},
	AuthHybrid: {
		1: "Aggressive Mode 1/3: proposals with hybrid authentication, Diffie-Hellman value, nonce, identity and a CERTREQ naming the CA the client trusts, in clear",
		2: "Aggressive Mode 2/3: the gateway's choice, DH value, nonce, identity, certificate and SIG_R, in clear: the client checks the gateway before it ever sends a password",
		3: "Aggressive Mode 3/3: the client's HASH_I, which proves nothing about the client; XAUTH follows to authenticate the user",
	},
	AuthPubkey: {
		1: "Aggressive Mode 1/3: proposals with signature authentication, Diffie-Hellman value, nonce, identity and a CERTREQ naming the CA the initiator trusts, all in clear",
		2: "Aggressive Mode 2/3: the responder's choice, DH value, nonce, identity, certificate and SIG_R, in clear: the identities show, but there is no shared secret to attack offline, since forging SIG_R takes the responder's private key",
		3: "Aggressive Mode 3/3: the initiator's certificate and SIG_I, a signature over HASH_I with its private key; the ISAKMP SA is established",
	},
	AuthRSAEncryption: {
		1: "Aggressive Mode 1/3: proposals with public-key encryption and the Diffie-Hellman value in the clear; HASH(1), the hash of the responder's certificate, and the initiator's identity and nonce encrypted to that certificate's RSA key: unlike every other method, Aggressive Mode hides who is calling",
		2: "Aggressive Mode 2/3: the responder's choice and DH value, its identity and nonce encrypted to the initiator's key, and HASH_R, which only a side that read Ni with its private key can compute: no identity in the clear, and no shared secret to attack offline",
		3: "Aggressive Mode 3/3: HASH_I proves the initiator read Nr with its private key; the ISAKMP SA is established",
	},
	AuthRSARevisedEncryption: {
		1: "Aggressive Mode 1/3: proposals with revised public-key encryption (one cipher and hash in all, since they key what follows), HASH(1), the nonce encrypted to the responder's RSA key, then the KE and identity encrypted with that cipher under Ke_i from the nonce: identities and even the Diffie-Hellman value hidden",
		2: "Aggressive Mode 2/3: the responder's choice and HASH_R in the clear, its nonce encrypted to the initiator's key, its KE and identity under Ke_r from that nonce; HASH_R proves it read Ni with its private key",
		3: "Aggressive Mode 3/3: HASH_I proves the initiator read Nr with its private key; the ISAKMP SA is established",
	},
}

func (sa *isakmpSA) amInfo(n int) msgInfo {
	return msgInfo{exchange: "aggressive", num: n, total: 3, step: events.StepPhase1, explain: aggressiveModeExplain[sa.conn.cfg.Auth.Method][n]}
}

// Aggressive Mode's states, and the step that takes the message each waits
// for.
const (
	amI1Sent p1State = "Aggressive Mode 1/3 sent" // initiator, waits for AM2
	amR2Sent p1State = "Aggressive Mode 2/3 sent" // responder, waits for AM3
)

var aggressiveModeSteps = map[p1State]phase1Step{
	amI1Sent: (*Engine).aggressiveI2,
	amR2Sent: (*Engine).aggressiveR3,
}

// startAggressiveMode sends AM1 with the Diffie-Hellman value of the group of
// the first proposal (Validate makes all proposals share it).
func (e *Engine) startAggressiveMode(c *conn, peer netip.Addr) *isakmpSA {
	sa := e.newISAKMPSA(c, Initiator, AggressiveMode, netip.AddrPortFrom(c.cfg.Local, portIKE), netip.AddrPortFrom(peer, portIKE))
	offer := phase1Offer(&c.cfg)
	p1 := sa.p1
	p1.saiB = offer.Body()
	group, _ := phase1Suite(c.cfg.Proposals[0])
	if err := sa.newDHKey(group.Group); err != nil {
		e.phase1Failed(sa, err.Error(), nil)
		return sa
	}
	p1.gxi, p1.ni = p1.dh.Public(), e.nonce()
	p1.idii = c.localID.Payload()
	payloads := []isakmp.Payload{offer, &isakmp.KE{Data: p1.gxi}, &isakmp.Nonce{Data: p1.ni}, p1.idii}
	payloads = append(payloads, p1.auth.requests()...)
	payloads = append(payloads, ourVendorIDs(&c.cfg)...)
	payloads, ok := e.sealOut(sa, payloads, sa.amInfo(1))
	if !ok {
		return sa
	}
	sa.state = amI1Sent
	sa.sendRequest(&sa.p1Flight, isakmp.ExchangeAggressive, 0, payloads, false, sa.amInfo(1), func() {
		e.phase1Failed(sa, fmt.Sprintf("no answer to Aggressive Mode 1/3 from %s", sa.remote), nil)
	})
	return sa
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
	sa := e.takeFirstMessage(p, m, offer, AggressiveMode, idii)
	if sa == nil {
		return
	}
	p1 := sa.p1
	e.publishMessage(sa, events.Received, m, len(p.Data), sa.amInfo(1))
	if err := sa.newDHKey(sa.choice.attrs.Group); err != nil {
		e.phase1Failed(sa, err.Error(), nil)
		return
	}
	// Public-key encryption: the identity, nonce (and KE) are sealed; the
	// peer is named once its hash proves it (authenticatePeer).
	sealedID, ok := e.openIn(sa, p, m)
	if !ok {
		return
	}
	if sealedID != nil {
		ke, nonce, idii = isakmp.First[*isakmp.KE](m), isakmp.First[*isakmp.Nonce](m), sealedID
	} else {
		sa.peerID = identityOf(idii)
	}
	p1.gxi, p1.ni, p1.idii = ke.Data, bytes.Clone(nonce.Body()), idii
	e.readVendorIDs(sa, m)
	e.publishProposalChosen(sa, nil)
	p1.gxr, p1.nr = p1.dh.Public(), e.nonce()
	if err := sa.deriveKeys(p1.gxi); err != nil {
		e.notifyPeer(sa, isakmpNotify(sa, isakmp.NotifyInvalidKeyInformation))
		e.phase1Failed(sa, "Aggressive Mode 1/3: "+err.Error(), nil)
		return
	}
	idir := sa.conn.localID.Payload()
	payloads := []isakmp.Payload{
		&isakmp.SA{DOI: offer.DOI, Situation: offer.Situation, Proposals: []isakmp.Proposal{sa.choice.proposal}},
		&isakmp.KE{Data: p1.gxr}, &isakmp.Nonce{Data: p1.nr}, idir,
	}
	payloads, ok = e.withProof(sa, payloads, idir)
	if !ok {
		return
	}
	payloads = append(payloads, p1.auth.requests()...)
	payloads = append(payloads, e.responderVendorIDs(sa)...)
	payloads = append(payloads, e.natdPayloads(sa)...)
	if payloads, ok = e.sealOut(sa, payloads, sa.amInfo(2)); !ok {
		return
	}
	sa.state = amR2Sent
	sa.sendRequest(&sa.p1Flight, isakmp.ExchangeAggressive, 0, payloads, false, sa.amInfo(2), func() {
		e.phase1Failed(sa, fmt.Sprintf("no Aggressive Mode 3/3 from %s: the peer may have rejected HASH_R (a different pre-shared key)", sa.remote), nil)
	})
	sa.p1Flight.accepted(p.Data, sa.p1Flight.out, sa.amInfo(2))
}

// aggressiveI2 checks the responder's choice and HASH_R, settles NAT
// traversal and sends AM3: phase 1 is done on our side.
func (e *Engine) aggressiveI2(sa *isakmpSA, p Packet, m *isakmp.Message) {
	e.publishMessage(sa, events.Received, m, len(p.Data), sa.amInfo(2))
	choice, err := acceptPhase1Reply(isakmp.First[*isakmp.SA](m), sa.conn.cfg.Proposals, sa.p1.auth.number())
	if err != nil {
		e.phase1Failed(sa, "Aggressive Mode 2/3: "+err.Error(), nil)
		return
	}
	p1 := sa.p1
	if choice.attrs.Group != p1.dh.Group().ID() {
		e.phase1Failed(sa, fmt.Sprintf("the responder chose group %s, but our KE is for %s", choice.attrs.Group, p1.dh.Group()), nil)
		return
	}
	sa.choice = choice
	sealedID, ok := e.openIn(sa, p, m)
	if !ok {
		return
	}
	ke, nonce, idir := isakmp.First[*isakmp.KE](m), isakmp.First[*isakmp.Nonce](m), isakmp.First[*isakmp.ID](m)
	if sealedID != nil {
		idir = sealedID
	}
	if ke == nil || nonce == nil || idir == nil || !p1.auth.carries(m) {
		e.malformedIn(sa, p, "Aggressive Mode 2/3 lacks KE, NONCE, ID or HASH")
		return
	}
	e.readVendorIDs(sa, m)
	e.publishProposalChosen(sa, nil)
	p1.gxr, p1.nr = ke.Data, bytes.Clone(nonce.Body())
	if err := sa.deriveKeys(ke.Data); err != nil {
		e.notifyPeer(sa, isakmpNotify(sa, isakmp.NotifyInvalidKeyInformation))
		e.phase1Failed(sa, "Aggressive Mode 2/3: "+err.Error(), nil)
		return
	}
	if !e.authenticatePeer(sa, m, idir) {
		return
	}
	e.detectNAT(sa, p, m)
	e.floatIfNAT(sa)

	payloads, ok := e.withProof(sa, nil, p1.idii)
	if !ok {
		return
	}
	payloads = append(payloads, e.natdPayloads(sa)...)
	if e.firstContact(sa) {
		payloads = append(payloads, isakmp.NewInitialContact(sa.ckyI, sa.ckyR))
	}
	sa.p1Flight.stopRetransmit()
	sa.p1Flight.accepted(p.Data, sa.send(isakmp.ExchangeAggressive, 0, payloads, true, sa.amInfo(3)), sa.amInfo(3))
	sa.setEstablished()
}

// aggressiveR3 authenticates the initiator: phase 1 is done.
func (e *Engine) aggressiveR3(sa *isakmpSA, p Packet, m *isakmp.Message) {
	sa.proof = true
	e.followFloat(sa, p)
	if m.Header.Flags&isakmp.FlagEncryption != 0 {
		if err := sa.decrypt(m); err != nil {
			e.publishMessage(sa, events.Received, m, len(p.Data), sa.amInfo(3))
			e.authFailed(sa, "Aggressive Mode 3/3 does not decrypt: "+sa.keysDiffer(), isakmp.NotifyAuthenticationFailed)
			return
		}
	}
	e.publishMessage(sa, events.Received, m, len(p.Data), sa.amInfo(3))
	if !e.authenticatePeer(sa, m, sa.p1.idii) {
		return
	}
	e.detectNAT(sa, p, m)
	sa.p1Flight.accepted(p.Data, nil, sa.amInfo(3))
	e.readStatusNotifies(sa, m)
	sa.setEstablished()
}

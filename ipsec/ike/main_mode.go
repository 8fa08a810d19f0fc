package ike

import (
	"bytes"
	"fmt"
	"net/netip"

	"github.com/ipseclab/ipseclab/events"
	"github.com/ipseclab/ipseclab/ipsec/isakmp"
	"github.com/ipseclab/ipseclab/ipsec/proposal"
)

// Main Mode with pre-shared keys (RFC 2409 §5, §5.4; NAT-D from RFC 3947 §3;
// phase1_auth_pubkey.go says what signatures add, phase1_auth_pkenc.go what
// public-key encryption changes):
//
//	Initiator                          Responder
//	---------                          ---------
//	HDR, SA, VID                  -->                            MM1
//	                              <--  HDR, SA, VID              MM2
//	HDR, KE, Ni, NAT-D, NAT-D     -->                            MM3
//	                              <--  HDR, KE, Nr, NAT-D, NAT-D MM4
//	HDR*, IDii, HASH_I            -->                            MM5 (port 4500 after a NAT)
//	                              <--  HDR*, IDir, HASH_R        MM6
//
// The first pair agrees on the suite, the second runs Diffie-Hellman and
// trades nonces (after which both sides hold SKEYID and the encryption key),
// the third authenticates each side under encryption, so that identities
// never travel in the clear. With a pre-shared key, the responder has to pick
// the key before it can read IDii: it chooses it by the initiator's address.

// mainModeExplain is what the timeline says of each message, by method.
var mainModeExplain = map[AuthKind][7]string{
	AuthPSK: {
		1: "Main Mode 1/6: the initiator offers its ISAKMP proposals (cipher, hash, DH group, authentication, lifetime) and announces NAT-T and DPD support in vendor IDs",
		2: "Main Mode 2/6: the responder picks one proposal and adds its cookie; the two cookies now name the ISAKMP SA",
		3: "Main Mode 3/6: Diffie-Hellman public values and nonces; identities still hidden",
		4: "Main Mode 4/6: the responder's Diffie-Hellman value and nonce; both sides can now compute SKEYID and the encryption key, and compare NAT-D hashes",
		5: "Main Mode 5/6: encrypted: the initiator's identity and HASH_I, which proves it knows the pre-shared key",
		6: "Main Mode 6/6: encrypted: the responder's identity and HASH_R; the ISAKMP SA is established",
	},
	AuthHybrid: {
		1: "Main Mode 1/6: the client offers its ISAKMP proposals with hybrid authentication (HybridInitRSA): the gateway will sign, the client will log in with XAUTH",
		2: "Main Mode 2/6: the gateway picks one proposal and adds its cookie; the two cookies now name the ISAKMP SA",
		3: "Main Mode 3/6: Diffie-Hellman public values and nonces, and a CERTREQ naming the CA the client trusts for the gateway's certificate",
		4: "Main Mode 4/6: the gateway's Diffie-Hellman value and nonce; both sides can now compute SKEYID from the nonces and the DH secret",
		5: "Main Mode 5/6: encrypted: the client's identity and HASH_I, which proves nothing about the client (it has no secret of its own yet): XAUTH will",
		6: "Main Mode 6/6: encrypted: the gateway's identity, certificate and SIG_R, its signature over HASH_R; the client now knows it talks to the real gateway",
	},
	AuthPubkey: {
		1: "Main Mode 1/6: the initiator offers its ISAKMP proposals, with signature authentication (RSA or ECDSA, as its key is), and announces NAT-T and DPD support in vendor IDs",
		2: "Main Mode 2/6: the responder picks one proposal and adds its cookie; the two cookies now name the ISAKMP SA",
		3: "Main Mode 3/6: Diffie-Hellman public values and nonces, and a CERTREQ naming the CA whose certificates the initiator trusts; identities still hidden",
		4: "Main Mode 4/6: the responder's Diffie-Hellman value, nonce and CERTREQ (its CA); both sides can now compute SKEYID, which with signatures comes from the nonces and the DH secret alone",
		5: "Main Mode 5/6: encrypted: the initiator's identity, its certificate chain (CERT) and SIG_I, a signature over HASH_I that only the holder of the certificate's private key can make",
		6: "Main Mode 6/6: encrypted: the responder's identity, certificate and SIG_R over HASH_R; the ISAKMP SA is established",
	},
	AuthRSAEncryption: {
		1: "Main Mode 1/6: the initiator offers its ISAKMP proposals with public-key encryption (RSA-ENC), and announces NAT-T and DPD support in vendor IDs",
		2: "Main Mode 2/6: the responder picks one proposal and adds its cookie; the two cookies now name the ISAKMP SA",
		3: "Main Mode 3/6: the initiator's Diffie-Hellman value in the clear; its identity and nonce each encrypted to the responder's RSA key, known beforehand, after HASH(1), the hash of the certificate it encrypted to. A passive observer sees neither the nonce nor who is calling",
		4: "Main Mode 4/6: the responder's DH value, and its identity and nonce encrypted to the initiator's key. Each side decrypts the other's nonce with its private key, and SKEYID = prf(hash(Ni_b | Nr_b), CKY-I | CKY-R) comes from both nonces: only the two key holders can compute it",
		5: "Main Mode 5/6: encrypted: HASH_I alone, the identity having gone in 3/6. Only a side that read Nr with its private key can compute it: it proves the initiator holds the key of its certificate",
		6: "Main Mode 6/6: encrypted: HASH_R, which proves the responder read Ni with its private key; the ISAKMP SA is established",
	},
	AuthRSARevisedEncryption: {
		1: "Main Mode 1/6: the initiator offers its ISAKMP proposals with revised public-key encryption (RSA-REVISED-ENC), and announces NAT-T and DPD support in vendor IDs",
		2: "Main Mode 2/6: the responder picks one proposal and adds its cookie; the two cookies now name the ISAKMP SA",
		3: "Main Mode 3/6: HASH(1), the hash of the responder's certificate, then the initiator's nonce encrypted to that certificate's RSA key; its KE, identity and NAT-D follow encrypted with the negotiated cipher under Ke_i, a key from the nonce (Ne_i = prf(Ni_b, CKY-I)). A passive observer sees no nonce, no identity, not even the Diffie-Hellman value, and each side makes one RSA operation instead of two",
		4: "Main Mode 4/6: the responder's nonce encrypted to the initiator's key, then its KE, identity and NAT-D under Ke_r from that nonce. SKEYID = prf(hash(Ni_b | Nr_b), CKY-I | CKY-R) needs both nonces, which only the two private keys could read",
		5: "Main Mode 5/6: encrypted: HASH_I alone, the identity having gone in 3/6. Only a side that read Nr with its private key can compute it: it proves the initiator holds the key of its certificate",
		6: "Main Mode 6/6: encrypted: HASH_R, which proves the responder read Ni with its private key; the ISAKMP SA is established",
	},
}

func (sa *isakmpSA) mmInfo(n int) msgInfo {
	return msgInfo{exchange: "main", num: n, total: 6, step: events.StepPhase1, explain: mainModeExplain[sa.conn.cfg.Auth.Method][n]}
}

// Main Mode's states, and the step that takes the message each waits for.
const (
	mmI1Sent p1State = "Main Mode 1/6 sent" // initiator, waits for MM2
	mmR2Sent p1State = "Main Mode 2/6 sent" // responder, waits for MM3
	mmI3Sent p1State = "Main Mode 3/6 sent" // initiator, waits for MM4
	mmR4Sent p1State = "Main Mode 4/6 sent" // responder, waits for MM5
	mmI5Sent p1State = "Main Mode 5/6 sent" // initiator, waits for MM6
)

var mainModeSteps = map[p1State]phase1Step{
	mmI1Sent: (*Engine).mainModeI2,
	mmR2Sent: (*Engine).mainModeR3,
	mmI3Sent: (*Engine).mainModeI4,
	mmR4Sent: (*Engine).mainModeR5,
	mmI5Sent: (*Engine).mainModeI6,
}

// startMainMode sends MM1: the offer, and the vendor IDs of the extensions
// we speak.
func (e *Engine) startMainMode(c *conn, peer netip.Addr) *isakmpSA {
	sa := e.newISAKMPSA(c, Initiator, MainMode, netip.AddrPortFrom(c.cfg.Local, portIKE), netip.AddrPortFrom(peer, portIKE))
	offer := phase1Offer(&c.cfg)
	sa.p1.saiB = offer.Body()
	sa.state = mmI1Sent
	payloads := append([]isakmp.Payload{offer}, ourVendorIDs(&c.cfg)...)
	sa.sendRequest(&sa.p1Flight, isakmp.ExchangeMainMode, 0, payloads, false, sa.mmInfo(1), func() {
		e.phase1Failed(sa, fmt.Sprintf("no answer to Main Mode 1/6 from %s", sa.remote), nil)
	})
	return sa
}

// respondMainMode answers MM1 with MM2: the first of our suites that the
// initiator offered, under a connection that accepts its address.
func (e *Engine) respondMainMode(p Packet, m *isakmp.Message) {
	offer := isakmp.First[*isakmp.SA](m)
	if offer == nil {
		e.malformed(p, fmt.Errorf("Main Mode 1/6 without an SA payload"), nil)
		return
	}
	sa := e.takeFirstMessage(p, m, offer, MainMode, nil)
	if sa == nil {
		return
	}
	e.publishMessage(sa, events.Received, m, len(p.Data), sa.mmInfo(1))
	e.readVendorIDs(sa, m)
	e.publishProposalChosen(sa, nil)

	payloads := append([]isakmp.Payload{&isakmp.SA{DOI: offer.DOI, Situation: offer.Situation, Proposals: []isakmp.Proposal{sa.choice.proposal}}},
		e.responderVendorIDs(sa)...)
	sa.state = mmR2Sent
	sa.p1Flight.accepted(p.Data, sa.send(isakmp.ExchangeMainMode, 0, payloads, false, sa.mmInfo(2)), sa.mmInfo(2))
}

// mainModeI2 reads the responder's choice and sends MM3.
func (e *Engine) mainModeI2(sa *isakmpSA, p Packet, m *isakmp.Message) {
	e.publishMessage(sa, events.Received, m, len(p.Data), sa.mmInfo(2))
	choice, err := acceptPhase1Reply(isakmp.First[*isakmp.SA](m), sa.conn.cfg.Proposals, sa.p1.auth.number())
	if err != nil {
		e.phase1Failed(sa, "Main Mode 2/6: "+err.Error(), nil)
		return
	}
	sa.choice = choice
	e.readVendorIDs(sa, m)
	e.publishProposalChosen(sa, nil)
	if err := sa.newDHKey(sa.choice.attrs.Group); err != nil {
		e.phase1Failed(sa, err.Error(), nil)
		return
	}
	p1 := sa.p1
	p1.gxi, p1.ni = p1.dh.Public(), e.nonce()
	payloads := []isakmp.Payload{&isakmp.KE{Data: p1.gxi}, &isakmp.Nonce{Data: p1.ni}}
	payloads = append(payloads, p1.auth.requests()...)
	payloads = append(payloads, e.natdPayloads(sa)...)
	payloads, ok := e.sealOut(sa, payloads, sa.mmInfo(3))
	if !ok {
		return
	}
	sa.state = mmI3Sent
	sa.sendRequest(&sa.p1Flight, isakmp.ExchangeMainMode, 0, payloads, false, sa.mmInfo(3), func() {
		e.phase1Failed(sa, fmt.Sprintf("no answer to Main Mode 3/6 from %s", sa.remote), nil)
	})
	sa.p1Flight.accepted(p.Data, sa.p1Flight.out, sa.mmInfo(3))
}

// mainModeR3 takes the initiator's DH value and nonce and sends MM4, then
// derives the keys while the initiator does the same.
func (e *Engine) mainModeR3(sa *isakmpSA, p Packet, m *isakmp.Message) {
	sa.proof = true // the peer echoed our cookie: its address is not forged
	e.publishMessage(sa, events.Received, m, len(p.Data), sa.mmInfo(3))
	p1 := sa.p1
	if p1.dh == nil { // before the peer's KE: public-key encryption tests that against it
		if err := sa.newDHKey(sa.choice.attrs.Group); err != nil {
			e.phase1Failed(sa, err.Error(), nil)
			return
		}
	}
	idii, ok := e.openIn(sa, p, m)
	if !ok {
		return
	}
	ke, nonce := isakmp.First[*isakmp.KE](m), isakmp.First[*isakmp.Nonce](m)
	if ke == nil || nonce == nil {
		e.malformedIn(sa, p, "Main Mode 3/6 lacks its KE or NONCE payload")
		return
	}
	p1.gxi, p1.ni, p1.sealedPeerID = ke.Data, bytes.Clone(nonce.Body()), idii
	e.detectNAT(sa, p, m)
	p1.gxr, p1.nr = p1.dh.Public(), e.nonce()
	payloads := []isakmp.Payload{&isakmp.KE{Data: p1.gxr}, &isakmp.Nonce{Data: p1.nr}}
	payloads = append(payloads, p1.auth.requests()...)
	payloads = append(payloads, e.natdPayloads(sa)...)
	if payloads, ok = e.sealOut(sa, payloads, sa.mmInfo(4)); !ok {
		return
	}
	sa.state = mmR4Sent
	sa.p1Flight.accepted(p.Data, sa.send(isakmp.ExchangeMainMode, 0, payloads, false, sa.mmInfo(4)), sa.mmInfo(4))
	if err := sa.deriveKeys(p1.gxi); err != nil {
		e.notifyPeer(sa, isakmpNotify(sa, isakmp.NotifyInvalidKeyInformation))
		e.phase1Failed(sa, "Main Mode 3/6: "+err.Error(), nil)
	}
}

// mainModeI4 takes the responder's DH value and nonce, derives the keys,
// settles NAT traversal and sends MM5, encrypted.
func (e *Engine) mainModeI4(sa *isakmpSA, p Packet, m *isakmp.Message) {
	e.publishMessage(sa, events.Received, m, len(p.Data), sa.mmInfo(4))
	idir, ok := e.openIn(sa, p, m)
	if !ok {
		return
	}
	ke, nonce := isakmp.First[*isakmp.KE](m), isakmp.First[*isakmp.Nonce](m)
	if ke == nil || nonce == nil {
		e.malformedIn(sa, p, "Main Mode 4/6 lacks its KE or NONCE payload")
		return
	}
	sa.p1.gxr, sa.p1.nr, sa.p1.sealedPeerID = ke.Data, bytes.Clone(nonce.Body()), idir
	if err := sa.deriveKeys(ke.Data); err != nil {
		e.notifyPeer(sa, isakmpNotify(sa, isakmp.NotifyInvalidKeyInformation))
		e.phase1Failed(sa, "Main Mode 4/6: "+err.Error(), nil)
		return
	}
	e.detectNAT(sa, p, m)
	e.floatIfNAT(sa)

	idii := sa.conn.localID.Payload()
	payloads, ok := e.withProof(sa, sa.idWithProof(idii), idii)
	if !ok {
		return
	}
	if e.firstContact(sa) {
		payloads = append(payloads, isakmp.NewInitialContact(sa.ckyI, sa.ckyR))
	}
	sa.state = mmI5Sent
	sa.sendRequest(&sa.p1Flight, isakmp.ExchangeMainMode, 0, payloads, true, sa.mmInfo(5), func() {
		e.phase1Failed(sa, fmt.Sprintf("no answer to Main Mode 5/6 from %s: the peer may have a different pre-shared key and be unable to decrypt it", sa.remote), nil)
	})
	sa.p1Flight.accepted(p.Data, sa.p1Flight.out, sa.mmInfo(5))
}

// mainModeR5 authenticates the initiator and answers with MM6.
func (e *Engine) mainModeR5(sa *isakmpSA, p Packet, m *isakmp.Message) {
	e.followFloat(sa, p)
	idii, ok := e.openMainModeProof(sa, p, m, 5)
	if !ok || !e.authenticatePeer(sa, m, idii) {
		return
	}
	idir := sa.conn.localID.Payload()
	payloads, ok := e.withProof(sa, sa.idWithProof(idir), idir)
	if !ok {
		return
	}
	sa.p1Flight.accepted(p.Data, sa.send(isakmp.ExchangeMainMode, 0, payloads, true, sa.mmInfo(6)), sa.mmInfo(6))
	e.readStatusNotifies(sa, m)
	sa.setEstablished()
}

// mainModeI6 authenticates the responder: phase 1 is done.
func (e *Engine) mainModeI6(sa *isakmpSA, p Packet, m *isakmp.Message) {
	idir, ok := e.openMainModeProof(sa, p, m, 6)
	if !ok || !e.authenticatePeer(sa, m, idir) {
		return
	}
	sa.p1Flight.accepted(p.Data, nil, sa.mmInfo(6))
	e.readStatusNotifies(sa, m)
	sa.setEstablished()
}

// openMainModeProof decrypts MM5 or MM6 and finds the peer's identity in
// it, next to its proof. Under another pre-shared key the message does not
// decrypt, or decrypts to garbage that lacks them; either is a failed
// authentication.
func (e *Engine) openMainModeProof(sa *isakmpSA, p Packet, m *isakmp.Message, n int) (*isakmp.ID, bool) {
	info := sa.mmInfo(n)
	if err := sa.decrypt(m); err != nil {
		e.publishMessage(sa, events.Received, m, len(p.Data), info)
		e.authFailed(sa, info.what()+" does not decrypt: "+sa.keysDiffer(), isakmp.NotifyAuthenticationFailed)
		return nil, false
	}
	e.publishMessage(sa, events.Received, m, len(p.Data), info)
	id := isakmp.First[*isakmp.ID](m)
	if sa.p1.sealedPeerID != nil { // sent, encrypted, in MM3/MM4
		id = sa.p1.sealedPeerID
	}
	if id == nil || !sa.p1.auth.carries(m) {
		peer, idName := sa.role.other(), "IDii"
		if peer == Responder {
			idName = "IDir"
		}
		e.authFailed(sa, fmt.Sprintf("%s lacks %s or %s (a wrong key makes garbage of the message)", info.what(), idName, sa.p1.auth.name(peer)), isakmp.NotifyAuthenticationFailed)
		return nil, false
	}
	return id, true
}

// acceptPhase1Reply checks the responder's SA payload: exactly one of the
// transforms we offered (RFC 2408 §4.2).
func acceptPhase1Reply(reply *isakmp.SA, ours []proposal.Proposal, method isakmp.AuthMethod) (phase1Choice, error) {
	if reply == nil || len(reply.Proposals) != 1 || len(reply.Proposals[0].Transforms) != 1 {
		return phase1Choice{}, fmt.Errorf("the responder must return exactly one proposal with one transform")
	}
	prop := reply.Proposals[0]
	a, err := isakmp.ParsePhase1Attributes(prop.Transforms[0].Attributes)
	if err != nil {
		return phase1Choice{}, fmt.Errorf("the chosen transform: %v", err)
	}
	s, known := phase1Proposal(a)
	if known && prop.Protocol == isakmp.ProtocolISAKMP && a.AuthMethod == method {
		for _, o := range ours {
			if o == s {
				return phase1Choice{suite: s, attrs: a, proposal: prop}, nil
			}
		}
	}
	return phase1Choice{}, fmt.Errorf("the responder chose %s, which we did not offer", s)
}

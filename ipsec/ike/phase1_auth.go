package ike

import (
	"crypto/hmac"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"

	"github.com/ipseclab/ipseclab/events"
	"github.com/ipseclab/ipseclab/ipsec/isakmp"
	"github.com/ipseclab/ipseclab/ipsec/keymat"
	"github.com/ipseclab/ipseclab/ipsec/pki"
)

// Phase 1 authentication (RFC 2409 §5). Whatever the method, each side
// proves its part in the exchange with a hash over it, computed with SKEYID:
//
//	HASH_I = prf(SKEYID, g^xi | g^xr | CKY-I | CKY-R | SAi_b | IDii_b)
//	HASH_R = prf(SKEYID, g^xr | g^xi | CKY-R | CKY-I | SAi_b | IDir_b)
//
// The methods differ in what SKEYID is made from, which is what only the
// genuine peer can know, and in how the hash travels:
//
//   - pre-shared key (§5.4): SKEYID = prf(key, Ni_b | Nr_b); the hash goes as
//     it is, in a HASH payload.
//   - signatures (§5.1): SKEYID = prf(Ni_b | Nr_b, g^xy); the hash is signed
//     into SIG_I or SIG_R, usually with a certificate in CERT. Hybrid
//     authentication signs only the gateway's; the client proves itself
//     with XAUTH once phase 1 is done.
//   - public-key encryption (§5.2, §5.3): SKEYID = prf(hash(Ni_b | Nr_b),
//     CKY-I | CKY-R); the hash goes in HASH, and only the holder of the
//     private key could read the nonce it covers. These also encrypt the
//     nonces and identities of MM3/MM4 (AM1/AM2): such a method is also a
//     sealer (phase1_auth_pkenc.go), which the modes let transform those
//     messages.
//
// An authMethod is one method's side of this. deriveKeys asks it for
// SKEYID's inputs, ourProof for our proof, authenticatePeer to check the
// peer's; the modes only ask whether a message carries a proof at all, and
// add what the method asks for beside the key exchange (a CERTREQ).
type authMethod interface {
	// number is the Authentication-Method attribute that the SA payload
	// offers and accepts.
	number() isakmp.AuthMethod
	// keying names the method in p and adds what SKEYID is made from
	// beyond what every method has (nonces, cookies, g^xy).
	keying(p *keymat.Phase1Params)
	// requests is what goes beside our KE and nonce (MM3, MM4, AM1, AM2).
	requests() []isakmp.Payload
	// proof is the payloads that carry our hash (HASH_I or HASH_R).
	proof(hash []byte) ([]isakmp.Payload, error)
	// carries reports whether m has a proof at all, so that a message
	// lacking one can be told from one whose proof fails.
	carries(m *isakmp.Message) bool
	// verify checks the proof in m of id against want, the hash that the
	// peer, in the role who, must have made. An *authError says which
	// notify tells the peer why; any other error is AUTHENTICATION-FAILED.
	verify(m *isakmp.Message, id *isakmp.ID, want []byte, who Role) error
	// name is what the proof of who is called: HASH_I, SIG_R.
	name(who Role) string
}

// authError is a failed authentication and the notify that names the reason
// to the peer (RFC 2408 §3.14.1).
type authError struct {
	notify isakmp.NotifyType
	msg    string
}

func (e *authError) Error() string { return e.msg }

// newAuthMethod is the method of the connection's configuration. The SA
// payload only confirms it: selectPhase1 and acceptPhase1Reply take no
// transform with another.
func newAuthMethod(e *Engine, c *conn) authMethod {
	switch c.cfg.Auth.Method {
	case AuthPubkey:
		return newPubkeyAuth(e, &c.cfg)
	case AuthRSAEncryption, AuthRSARevisedEncryption:
		return newPkencAuth(e, &c.cfg.Auth)
	case AuthHybrid:
		return newHybridAuth(e, &c.cfg)
	}
	return pskAuth{key: c.cfg.PSK, method: authNumber(&c.cfg)}
}

// authNumber is the Authentication-Method attribute of a connection's
// method, for the SA payloads, without building the method.
func authNumber(c *Connection) isakmp.AuthMethod {
	m := baseAuthNumber(c)
	if c.XAuth != nil {
		// XAUTH follows phase 1: the method says so, from the client's
		// side ("Init": the initiator of phase 1 is the one asked).
		switch m {
		case isakmp.AuthMethodPSK:
			return isakmp.AuthMethodXAuthInitPSK
		case isakmp.AuthMethodRSASig:
			return isakmp.AuthMethodXAuthInitRSA
		}
	}
	return m
}

func baseAuthNumber(c *Connection) isakmp.AuthMethod {
	switch c.Auth.Method {
	case AuthHybrid:
		return isakmp.AuthMethodHybridInitRSA
	case AuthPubkey:
		if c.Auth.Key != nil {
			if m, err := pki.AuthMethodOf(c.Auth.Key.Public()); err == nil {
				return m
			}
		}
	case AuthRSAEncryption:
		return isakmp.AuthMethodRSAEnc
	case AuthRSARevisedEncryption:
		return isakmp.AuthMethodRSARevisedEnc
	}
	return isakmp.AuthMethodPSK
}

// ourProof is the payloads that prove our identity id: HASH_I if we
// initiated phase 1, HASH_R if we responded, as the method carries it.
func (sa *isakmpSA) ourProof(id *isakmp.ID) ([]isakmp.Payload, error) {
	return sa.p1.auth.proof(sa.authHash(sa.role, id.Body()))
}

// authenticatePeer checks the peer's proof in m (MM5 or AM3 from an
// initiator, MM6 or AM2 from a responder) of id, the identity it claims (in
// the same message, or in AM1), and that id is the identity configured for
// it. Only then is the message authentic: it may move the IV chain (RFC
// 2409 App. B), and the peer is known by id. On failure the peer is told
// (AUTHENTICATION-FAILED, INVALID-ID-INFORMATION, or what the method
// found wrong with a certificate) and phase 1 ends.
func (e *Engine) authenticatePeer(sa *isakmpSA, m *isakmp.Message, id *isakmp.ID) bool {
	peer := sa.role.other()
	if err := sa.p1.auth.verify(m, id, sa.authHash(peer, id.Body()), peer); err != nil {
		notify := isakmp.NotifyAuthenticationFailed
		var ae *authError
		if errors.As(err, &ae) {
			notify = ae.notify
		}
		e.authFailed(sa, err.Error(), notify)
		return false
	}
	if err := sa.conn.checkRemoteID(id); err != nil {
		c := e.connForIdentity(sa, id)
		if c == nil {
			e.authFailed(sa, err.Error(), isakmp.NotifyInvalidIDInformation)
			return false
		}
		e.switchConnection(sa, c, id)
	}
	sa.peerID = identityOf(id)
	if v, ok := sa.p1.auth.(interface{ verifiedPeer() *x509.Certificate }); ok {
		e.publishPeerCertificate(sa, v.verifiedPeer())
	}
	if m.Header.Flags&isakmp.FlagEncryption != 0 {
		sa.ivs.Update(0, m.Ciphertext)
	}
	return true
}

// withProof adds our proof of id to payloads, or ends phase 1 when the
// method cannot make it (a signing key that fails).
func (e *Engine) withProof(sa *isakmpSA, payloads []isakmp.Payload, id *isakmp.ID) ([]isakmp.Payload, bool) {
	proof, err := sa.ourProof(id)
	if err != nil {
		e.phase1Failed(sa, "cannot make "+sa.p1.auth.name(sa.role)+": "+err.Error(), nil)
		return nil, false
	}
	return append(payloads, proof...), true
}

// sealOut hands our key exchange message (MM3, MM4, AM1, AM2) to the
// method, when it hides payloads there (a sealer), to turn into what goes
// on the wire. A failure ends phase 1: with the notify the method names, or
// without one (a key that cannot encrypt).
func (e *Engine) sealOut(sa *isakmpSA, payloads []isakmp.Payload, info msgInfo) ([]isakmp.Payload, bool) {
	s, ok := sa.p1.auth.(sealer)
	if !ok {
		return payloads, true
	}
	out, err := s.seal(sa, payloads)
	if err != nil {
		var ae *authError
		switch {
		case errors.As(err, &ae) && sa.ckyR != isakmp.Cookie{}:
			e.authFailed(sa, ae.msg, ae.notify)
		case ae != nil: // AM1: the peer knows nothing of this SA yet, nothing to tell it
			e.phase1Failed(sa, ae.msg, nil)
		default:
			e.phase1Failed(sa, "cannot make "+info.what()+": "+err.Error(), nil)
		}
		return nil, false
	}
	return out, true
}

// openIn gives the method, when it is a sealer, the peer's key exchange
// message to decrypt in place, before the mode reads it. It returns the
// peer's ID from it (nil when the method seals nothing), and false when
// the message cannot go on: malformed (counted, and the SA waits on), or
// refused (phase 1 ended).
func (e *Engine) openIn(sa *isakmpSA, p Packet, m *isakmp.Message) (*isakmp.ID, bool) {
	s, ok := sa.p1.auth.(sealer)
	if !ok {
		return nil, true
	}
	id, err := s.open(sa, m)
	if err != nil {
		var ae *authError
		if errors.As(err, &ae) {
			e.authFailed(sa, ae.msg, ae.notify)
		} else {
			e.phase1Failed(sa, sa.keyExchangeName()+": "+err.Error(), nil)
		}
		return nil, false
	}
	if id == nil {
		e.malformedIn(sa, p, sa.keyExchangeName()+" lacks its KE, NONCE or ID payload, or has them out of place")
		return nil, false
	}
	return id, true
}

// idWithProof is the ID that goes beside our proof in MM5 or MM6: ours,
// unless the method sent it encrypted in MM3/MM4 already.
func (sa *isakmpSA) idWithProof(id *isakmp.ID) []isakmp.Payload {
	if _, ok := sa.p1.auth.(sealer); ok {
		return nil
	}
	return []isakmp.Payload{id}
}

// keysDiffer says why a message under Ka does not decrypt: what the method
// knows, when it knows something (a payload of the peer's that did not
// decrypt), else what the lesson says of the method.
func (sa *isakmpSA) keysDiffer() string {
	if w, ok := sa.p1.auth.(interface{ undecryptedWhy() string }); ok {
		if why := w.undecryptedWhy(); why != "" {
			return why
		}
	}
	return sa.conn.lesson().keysDiffer
}

// authHash is HASH_I when who is the initiator, HASH_R when it is the
// responder, over idB, the body of who's ID payload, with the suite's prf
// unless the method names its own (ECDSA's curve hash).
func (sa *isakmpSA) authHash(who Role, idB []byte) []byte {
	prf := sa.keys.PRF
	if h, ok := pki.HashForECDSA(sa.p1.auth.number()); ok {
		prf, _ = keymat.NewPRF(h) // SHA-2 is always there
	}
	if who == Initiator {
		return sa.keys.HashIWith(prf, sa.p1.saiB, idB)
	}
	return sa.keys.HashRWith(prf, sa.p1.saiB, idB)
}

// other is the role of the peer of a side in role r.
func (r Role) other() Role {
	if r == Initiator {
		return Responder
	}
	return Initiator
}

// authLesson is what the timeline says of a method where the method matters.
type authLesson struct {
	established string // how the ISAKMP SA was authenticated
	failed      string // what the checks are, when one fails
	skeyid      string // where SKEYID comes from
	keysDiffer  string // why a message under the ISAKMP SA's key does not decrypt
	rejected    string // what the peer's AUTHENTICATION-FAILED most likely means
	peerCert    string // why the peer's certificate was trusted (certificate methods)
}

var authLessons = map[AuthKind]authLesson{
	AuthPSK: {
		established: "authenticated by the pre-shared key",
		failed:      "Each side proves it knows the pre-shared key with a hash keyed by it (HASH_I, HASH_R); with different keys the hashes, and even the decryption, fail.",
		skeyid:      "SKEYID comes from the pre-shared key and both nonces; SKEYID_d, _a and _e from it and the Diffie-Hellman secret; Ka, the encryption key, from SKEYID_e.",
		keysDiffer:  "the pre-shared keys differ",
		rejected:    "most likely the pre-shared keys (or identities) differ",
	},
	AuthPubkey: {
		established: "authenticated by certificates and signatures",
		failed:      "Each side signs its hash (HASH_I, HASH_R) with its private key and sends the certificate that binds that key to its identity. The verifier checks the chain up to a CA it trusts and its dates, that the certificate names the ID the peer claims, and then the signature; the notify says which check failed.",
		skeyid:      "With signatures SKEYID = prf(Ni_b | Nr_b, g^xy): the nonces and the Diffie-Hellman secret, nothing of either side's own (the signatures prove who they are); SKEYID_d, _a and _e follow from it, Ka from SKEYID_e.",
		keysDiffer:  "the two sides derived different keys: a value of the exchange changed on the way",
		rejected:    "its checks of our certificate or signature failed",
		peerCert:    "The CERT payload carried the peer's certificate: its chain leads to a CA this side trusts, it is within its dates, it names the identity the peer claimed, and its public key verified the peer's signature over its HASH.",
	},
	AuthHybrid: {
		established: "the gateway authenticated by its certificate and signature, the client not yet: XAUTH comes next",
		failed:      "In hybrid authentication the gateway signs its hash (SIG_R) with the private key of its certificate, and the client checks the chain up to its CA, the dates, the gateway's identity and the signature; the client's HASH_I proves nothing about the client, which XAUTH authenticates after phase 1.",
		skeyid:      "With hybrid authentication SKEYID = prf(Ni_b | Nr_b, g^xy), as with signatures: nothing of either side's own; the gateway's signature proves the gateway, XAUTH will prove the user.",
		keysDiffer:  "the two sides derived different keys: a value of the exchange changed on the way",
		rejected:    "its check of our HASH_I failed, or we of its certificate",
		peerCert:    "The CERT payload carried the gateway's certificate: its chain leads to a CA the client trusts, it is within its dates, it names the gateway's identity, and its key verified SIG_R.",
	},
	AuthRSAEncryption: {
		established: "authenticated by public-key encryption: each side read the nonce encrypted to its private key",
		failed:      pkencFailed,
		skeyid:      "With public-key encryption SKEYID = prf(hash(Ni_b | Nr_b), CKY-I | CKY-R): the nonces, which travelled encrypted to each side's RSA key, so that only the holders of the two private keys know them. The Diffie-Hellman secret enters with SKEYID_d, _a and _e; Ka follows from SKEYID_e.",
		keysDiffer:  pkencKeysDiffer,
		rejected:    pkencRejected,
		peerCert:    pkencPeerCert,
	},
	AuthRSARevisedEncryption: {
		established: "authenticated by revised public-key encryption: each side read the nonce encrypted to its private key",
		failed:      pkencFailed,
		skeyid:      "With public-key encryption SKEYID = prf(hash(Ni_b | Nr_b), CKY-I | CKY-R): the nonces, which travelled encrypted to each side's RSA key, so that only the holders of the two private keys know them. The revised method also made Ne_i = prf(Ni_b, CKY-I) and Ne_r = prf(Nr_b, CKY-R), cut to Ke_i and Ke_r for the cipher, which hid the KE and ID; they are discarded after use. SKEYID_d, _a and _e add the Diffie-Hellman secret; Ka follows from SKEYID_e.",
		keysDiffer:  pkencKeysDiffer,
		rejected:    pkencRejected,
		peerCert:    pkencPeerCert,
	},
}

// What the timeline says of both revisions of public-key encryption.
const (
	pkencFailed     = "Each side encrypted its nonce (and identity) to the other's RSA key, from a certificate known beforehand; SKEYID comes from both nonces, so only a side that decrypted the other's nonce with its private key computes the right HASH_I or HASH_R. A payload that does not decrypt is never answered as such, since that answer would let an attacker decrypt nonces (Bleichenbacher's attack): the exchange goes on with a random value and fails at the hash. Once the hash is right, the identity claimed must be one the peer's certificate names."
	pkencKeysDiffer = "the two sides derived different keys: one could not read the nonce encrypted to it (the other used a certificate whose key it does not hold), or a value changed on the way"
	pkencRejected   = "its check of our hash failed: one side could not read the nonce encrypted to it (a wrong or stale certificate for it), or a value changed on the way"
	pkencPeerCert   = "The peer's certificate was known beforehand: its public key encrypted our nonce, and the peer proved it holds the private key by reading it (its HASH, keyed by SKEYID from both nonces, is right); the certificate names the identity the peer claimed."
)

func (c *conn) lesson() authLesson { return authLessons[c.cfg.Auth.Method] }

// pskAuth is authentication with a pre-shared key (RFC 2409 §5.4): knowing
// the key is the proof, and a HASH payload carries it.
type pskAuth struct {
	key    string
	method isakmp.AuthMethod // PSK, or XAUTHInitPreShared when XAUTH follows
}

func (a pskAuth) number() isakmp.AuthMethod { return a.method }

func (pskAuth) requests() []isakmp.Payload { return nil }

func (a pskAuth) keying(p *keymat.Phase1Params) {
	p.AuthMethod, p.PreSharedKey = a.method, []byte(a.key)
}

func (pskAuth) proof(hash []byte) ([]isakmp.Payload, error) {
	return []isakmp.Payload{&isakmp.Hash{Data: hash}}, nil
}

func (pskAuth) carries(m *isakmp.Message) bool { return isakmp.First[*isakmp.Hash](m) != nil }

func (a pskAuth) verify(m *isakmp.Message, _ *isakmp.ID, want []byte, who Role) error {
	if h := isakmp.First[*isakmp.Hash](m); h == nil || !hmac.Equal(h.Data, want) {
		return fmt.Errorf("%s does not match: the pre-shared keys differ", a.name(who))
	}
	return nil
}

func (pskAuth) name(who Role) string {
	if who == Initiator {
		return "HASH_I"
	}
	return "HASH_R"
}

// connForIdentity finds, when the peer's proven identity is not the one its
// connection expects, another connection that expects it and that phase 1
// could not tell apart: the same mode, local address, acceptable peer
// address, method and key (the proof just checked holds for it too), and the
// suite chosen. A Main Mode responder picks its key by the initiator's
// address, before the identity arrives; strongSwan switches its peer
// configuration once the identity is known, and so do we.
func (e *Engine) connForIdentity(sa *isakmpSA, id *isakmp.ID) *conn {
	own := sa.conn.cfg
	for _, c := range e.conns {
		x := c.cfg
		if c == sa.conn || x.Mode != own.Mode || x.Local != own.Local || (x.Remote.IsValid() && x.Remote != sa.remote.Addr()) ||
			x.Auth.Method != own.Auth.Method || x.PSK != own.PSK || authNumber(&x) != authNumber(&own) ||
			!slices.Contains(x.Proposals, sa.choice.suite) || c.checkRemoteID(id) != nil {
			continue
		}
		if x.Auth.Method != AuthPSK && (len(x.Auth.Chain) == 0 || len(own.Auth.Chain) == 0 || !x.Auth.Chain[0].Equal(own.Auth.Chain[0])) {
			continue // another certificate of ours: the peer saw the first one's
		}
		return c
	}
	return nil
}

// switchConnection moves an ISAKMP SA to the connection its peer's identity
// names.
func (e *Engine) switchConnection(sa *isakmpSA, c *conn, id *isakmp.ID) {
	old := sa.moveTo(c)
	sa.alike = nil
	e.pub.Publish(events.Event{
		Kind: events.ISAKMPConn, Step: events.StepPhase1, Conn: c.cfg.Name,
		Message: fmt.Sprintf("ISAKMP SA %s/%s: the peer is %s, whom connection %s expects, not %s: switching to it", sa.ckyI, sa.ckyR, id, c.cfg.Name, old.cfg.Name),
		Explain: "In Main Mode with a pre-shared key the responder must choose the key before it sees who is calling: it chose by the address, which several connections accept with the same key. The identity in the encrypted fifth message now says which one the peer meant. Connections with different keys cannot be told apart this way: that is what Aggressive Mode (the identity in clear), XAUTH or certificates are for.",
		SA:      sa.info(), Fields: map[string]any{"was": old.cfg.Name, "peer_id": id.String()},
	})
}

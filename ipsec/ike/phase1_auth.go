package ike

import (
	"crypto/hmac"
	"fmt"

	"github.com/ipseclab/ipseclab/ipsec/isakmp"
	"github.com/ipseclab/ipseclab/ipsec/keymat"
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
//     nonces and identities of MM3/MM4 (AM1/AM2), which needs hooks there too.
//
// An authMethod is one method's side of this. deriveKeys asks it for
// SKEYID's inputs, ourProof for our proof, authenticatePeer to check the
// peer's; the modes only ask whether a message carries a proof at all.
type authMethod interface {
	// keying names the method in p and adds what SKEYID is made from
	// beyond what every method has (nonces, cookies, g^xy).
	keying(p *keymat.Phase1Params)
	// proof is the payloads that carry our hash (HASH_I or HASH_R).
	proof(hash []byte) []isakmp.Payload
	// carries reports whether m has a proof at all, so that a message
	// lacking one can be told from one whose proof fails.
	carries(m *isakmp.Message) bool
	// verify checks the proof in m against want, the hash that the peer,
	// in the role who, must have made.
	verify(m *isakmp.Message, want []byte, who Role) error
	// name is what the proof of who is called: HASH_I, SIG_R.
	name(who Role) string
}

// newAuthMethod is the method of the connection's configuration. The SA
// payload only confirms it: selectPhase1 and acceptPhase1Reply take no
// transform with another.
func newAuthMethod(c *conn) authMethod {
	return pskAuth{key: c.cfg.PSK}
}

// ourProof is the payloads that prove our identity id: HASH_I if we
// initiated phase 1, HASH_R if we responded, as the method carries it.
func (sa *isakmpSA) ourProof(id *isakmp.ID) []isakmp.Payload {
	return sa.p1.auth.proof(sa.authHash(sa.role, id.Body()))
}

// authenticatePeer checks the peer's proof in m (MM5 or AM3 from an
// initiator, MM6 or AM2 from a responder) of id, the identity it claims (in
// the same message, or in AM1), and that id is the identity configured for
// it. Only then is the message authentic: it may move the IV chain (RFC
// 2409 App. B), and the peer is known by id. On failure the peer is told
// (AUTHENTICATION-FAILED, or INVALID-ID-INFORMATION) and phase 1 ends.
func (e *Engine) authenticatePeer(sa *isakmpSA, m *isakmp.Message, id *isakmp.ID) bool {
	peer := sa.role.other()
	if err := sa.p1.auth.verify(m, sa.authHash(peer, id.Body()), peer); err != nil {
		e.authFailed(sa, err.Error(), isakmp.NotifyAuthenticationFailed)
		return false
	}
	if err := sa.conn.checkRemoteID(id); err != nil {
		e.authFailed(sa, err.Error(), isakmp.NotifyInvalidIDInformation)
		return false
	}
	sa.peerID = identityOf(id)
	if m.Header.Flags&isakmp.FlagEncryption != 0 {
		sa.ivs.Update(0, m.Ciphertext)
	}
	return true
}

// authHash is HASH_I when who is the initiator, HASH_R when it is the
// responder, over idB, the body of who's ID payload.
func (sa *isakmpSA) authHash(who Role, idB []byte) []byte {
	if who == Initiator {
		return sa.keys.HashI(sa.p1.saiB, idB)
	}
	return sa.keys.HashR(sa.p1.saiB, idB)
}

// other is the role of the peer of a side in role r.
func (r Role) other() Role {
	if r == Initiator {
		return Responder
	}
	return Initiator
}

// pskAuth is authentication with a pre-shared key (RFC 2409 §5.4): knowing
// the key is the proof, and a HASH payload carries it.
type pskAuth struct{ key string }

func (a pskAuth) keying(p *keymat.Phase1Params) {
	p.AuthMethod, p.PreSharedKey = isakmp.AuthMethodPSK, []byte(a.key)
}

func (pskAuth) proof(hash []byte) []isakmp.Payload {
	return []isakmp.Payload{&isakmp.Hash{Data: hash}}
}

func (pskAuth) carries(m *isakmp.Message) bool { return isakmp.First[*isakmp.Hash](m) != nil }

func (a pskAuth) verify(m *isakmp.Message, want []byte, who Role) error {
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

package ike

import (
	"bytes"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/ipseclab/ipseclab/events"
	"github.com/ipseclab/ipseclab/ipsec/isakmp"
	"github.com/ipseclab/ipseclab/ipsec/keymat"
	"github.com/ipseclab/ipseclab/ipsec/pki"
)

// Authentication with public-key encryption (RFC 2409 §5.2) and its revised
// mode (§5.3). Each side encrypts its nonce to the peer's RSA key, which it
// must know beforehand (Auth.PeerCert: the lab PKI, or peer-cert:), and the
// identities travel encrypted too:
//
//	§5.2  MM3: KE, HASH(1), <IDii_b>PubKey_r, <Ni_b>PubKey_r, NAT-D, NAT-D
//	      MM4: KE, <IDir_b>PubKey_i, <Nr_b>PubKey_i, NAT-D, NAT-D
//	§5.3  MM3: HASH(1), <Ni_b>PubKey_r, <KE_b>Ke_i, <IDii_b>Ke_i, <NAT-D>Ke_i, <NAT-D>Ke_i
//	      MM4: <Nr_b>PubKey_i, <KE_b>Ke_r, <IDir_b>Ke_r, <NAT-D>Ke_r, <NAT-D>Ke_r
//	both  MM5: HASH_I      MM6: HASH_R
//
// and in Aggressive Mode AM1 and AM2 are MM3 and MM4 with the SA in front
// (AM2 adds HASH_R and the NAT-D before the nonce, in the clear), AM3 is
// HASH_I. Only the bodies are encrypted: the generic payload headers stay
// in the clear, so a payload of type ID holds ciphertext (isakmp.DecodeSealed).
// §5.2 encrypts each body to the key with PKCS#1 v1.5, "RSA encryption MUST
// be encoded in PKCS #1 format"; §5.3 only the nonce, and the rest under the
// negotiated cipher with Ke_i = the Appendix B cut of Ne_i = prf(Ni_b,
// CKY-I) (Ke_r likewise), see keymat.NonceCipher.
//
// SKEYID = prf(hash(Ni_b | Nr_b), CKY-I | CKY-R) over the decrypted nonces:
// only the holder of a private key can read the nonce encrypted to it, so a
// side whose HASH_I or HASH_R (the usual formulas, over the decrypted
// IDii_b and IDir_b) is right has proved that it holds its key. The hashes
// go in HASH payloads, as with a pre-shared key.
//
// What the RFC leaves to us:
//
//   - HASH(1), "a hash (using the negotiated hash function) of the
//     certificate which the initiator is using to encrypt the nonce and
//     identity", lets a responder with several keys pick the right one. An
//     initiator cannot know whether the responder has several, so ours
//     always sends it: the hash of the certificate's DER. The responder
//     refuses one that names a certificate other than its own with
//     CERTIFICATE-UNAVAILABLE, before it decrypts anything. In Aggressive
//     Mode no hash is negotiated yet when AM1 goes, nor a cipher for the
//     revised mode: Connection.Validate makes all proposals share them.
//   - "All payloads-- in whatever order-- following the encrypted nonce
//     MUST be encrypted with Ke_i or Ke_r" (§5.3), and in Main Mode the
//     nonce or HASH(1) comes first: NAT-D, which RFC 3947 added later, is
//     encrypted there. In Aggressive Mode the SA comes first, and what the
//     RFC draws in the clear (HASH_R) and the extensions (vendor IDs, NAT-D)
//     go before the nonce.
//   - No reply ever says that a payload did not decrypt. A distinct answer
//     to PKCS#1 padding that fails is a Bleichenbacher oracle: Felsch et al.
//     ("The Dangers of Key Reuse", USENIX Security 2018) decrypted nonces of
//     these very methods on four vendors' gateways that way, and §5.3's
//     padding would give a CBC padding oracle on the identity. So a payload
//     that does not decrypt, or decrypts to something unusable, is replaced
//     by a random or harmless value, the exchange goes on as if nothing had
//     happened, and it fails at the HASH with AUTHENTICATION-FAILED, like
//     any wrong key; only our own timeline names the payload. For the same
//     reason the decrypted identity is checked against the peer's
//     certificate only once the HASH has proved the peer holds its key
//     (INVALID-ID-INFORMATION).
type pkencAuth struct {
	cfg     *Auth
	revised bool
	rand    io.Reader
	now     func() time.Time
	// undecrypted names what of the peer's did not decrypt ("the NONCE of
	// Main Mode 3/6"), for the reason its HASH fails.
	undecrypted []string
	verified    bool
}

func newPkencAuth(e *Engine, a *Auth) *pkencAuth {
	return &pkencAuth{cfg: a, revised: a.Method == AuthRSARevisedEncryption, rand: e.rand, now: e.clock.Now}
}

func (a *pkencAuth) number() isakmp.AuthMethod {
	if a.revised {
		return isakmp.AuthMethodRSARevisedEnc
	}
	return isakmp.AuthMethodRSAEnc
}

func (a *pkencAuth) keying(p *keymat.Phase1Params) { p.AuthMethod = a.number() }

// requests: nothing; the certificates are known beforehand.
func (a *pkencAuth) requests() []isakmp.Payload { return nil }

func (a *pkencAuth) proof(hash []byte) ([]isakmp.Payload, error) {
	return []isakmp.Payload{&isakmp.Hash{Data: hash}}, nil
}

func (a *pkencAuth) carries(m *isakmp.Message) bool { return isakmp.First[*isakmp.Hash](m) != nil }

func (a *pkencAuth) name(who Role) string { return pskAuth{}.name(who) }

// verify checks the peer's hash, then that its certificate names the
// identity it claimed.
func (a *pkencAuth) verify(m *isakmp.Message, id *isakmp.ID, want []byte, who Role) error {
	if why := a.undecryptedWhy(); why != "" {
		return &authError{isakmp.NotifyAuthenticationFailed, a.name(who) + " cannot match: " + why}
	}
	if h := isakmp.First[*isakmp.Hash](m); !hmac.Equal(h.Data, want) {
		return &authError{isakmp.NotifyAuthenticationFailed, fmt.Sprintf("%s does not match: the peer could not read our nonce (it lacks the private key of %q, to which we encrypted it), or a value changed on the way",
			a.name(who), dnString(a.cfg.PeerCert.RawSubject))}
	}
	if err := pki.CertifiesID(a.cfg.PeerCert, id.IDType, id.Data); err != nil {
		return &authError{isakmp.NotifyInvalidIDInformation, fmt.Sprintf("the peer proved it holds the key of %q but claims to be %s: %s", dnString(a.cfg.PeerCert.RawSubject), id, strings.TrimPrefix(err.Error(), "pki: "))}
	}
	a.verified = true
	return nil
}

// undecryptedWhy says what of the peer's did not decrypt, if anything: why
// its hash, and the messages under Ka, cannot be right.
func (a *pkencAuth) undecryptedWhy() string {
	if len(a.undecrypted) == 0 {
		return ""
	}
	return strings.Join(a.undecrypted, " and ") + " did not decrypt with our private key (the peer encrypted to another key than our certificate's, or the payload changed on the way), and the exchange went on with a random value rather than tell the peer"
}

func (a *pkencAuth) verifiedPeer() *x509.Certificate {
	if a.verified {
		return a.cfg.PeerCert
	}
	return nil
}

// checkPeerCert is done before anything is encrypted to the peer's key:
// when CAs are configured, they must vouch for it, for key encipherment.
func (a *pkencAuth) checkPeerCert() error {
	if len(a.cfg.CAs) == 0 {
		return nil
	}
	if err := pki.VerifyChain([]*x509.Certificate{a.cfg.PeerCert}, a.cfg.CAs, a.now(), x509.KeyUsageKeyEncipherment); err != nil {
		notify := isakmp.NotifyInvalidCertificate
		if errors.Is(err, pki.ErrUnknownCA) {
			notify = isakmp.NotifyInvalidCertAuthority
		}
		return &authError{notify, "the peer's certificate, to whose key our nonce would go: " + strings.TrimPrefix(err.Error(), "pki: ")}
	}
	return nil
}

// sealer is an authMethod that hides payloads of the key exchange messages
// (MM3, MM4, AM1, AM2) itself. The modes build these messages as for any
// method and hand them over: seal turns ours into what goes on the wire
// (and, in Main Mode, brings our ID there from MM5/MM6, which then carry
// only the hash), open turns the peer's back into plain payloads before
// the mode reads them. One mechanism, in one place, for both revisions.
type sealer interface {
	seal(sa *isakmpSA, payloads []isakmp.Payload) ([]isakmp.Payload, error)
	// open returns the peer's ID, decrypted; nil, and m untouched, when m
	// lacks the KE, the nonce or the ID, or has them out of place. It fails only when HASH(1) names a
	// certificate we do not hold: what does not decrypt is never an error
	// (see above).
	open(sa *isakmpSA, m *isakmp.Message) (*isakmp.ID, error)
}

// suiteKeys is the phase 1 hash and cipher the method works with: the ones
// chosen, or, for AM1, before the choice, the first proposal's (which every
// proposal shares: Connection.Validate).
func suiteKeys(sa *isakmpSA) (keymat.PRF, keymat.Cipher, error) {
	attrs := sa.choice.attrs
	if attrs.Hash == 0 {
		attrs, _ = phase1Suite(sa.conn.cfg.Proposals[0])
	}
	prf, err := keymat.NewPRF(attrs.Hash)
	if err != nil {
		return prf, keymat.Cipher{}, err
	}
	c, err := keymat.NewCipher(attrs.Encryption, attrs.KeyLength)
	return prf, c, err
}

// ownCookie is the cookie that keys our Ne (CKY-I for the initiator's Ne_i,
// CKY-R for the responder's Ne_r); peerCookie the peer's.
func (sa *isakmpSA) ownCookie() isakmp.Cookie {
	if sa.role == Initiator {
		return sa.ckyI
	}
	return sa.ckyR
}

func (sa *isakmpSA) peerCookie() isakmp.Cookie {
	if sa.role == Initiator {
		return sa.ckyR
	}
	return sa.ckyI
}

// sealed is a payload whose body is ciphertext: a payload of its type on
// the wire, opaque here.
func sealed(t isakmp.PayloadType, body []byte) isakmp.Payload {
	return &isakmp.Unknown{Kind: t, Data: body}
}

func (a *pkencAuth) seal(sa *isakmpSA, payloads []isakmp.Payload) ([]isakmp.Payload, error) {
	if err := a.checkPeerCert(); err != nil {
		return nil, err
	}
	prf, ciph, err := suiteKeys(sa)
	if err != nil {
		return nil, err
	}
	peerKey := a.cfg.PeerCert.PublicKey.(*rsa.PublicKey) // Connection.Validate checked it
	var (
		head, rest []isakmp.Payload
		ke         *isakmp.KE
		nonce      *isakmp.Nonce
		id         *isakmp.ID
	)
	for _, p := range payloads {
		switch p := p.(type) {
		case *isakmp.SA:
			head = append(head, p)
		case *isakmp.KE:
			ke = p
		case *isakmp.Nonce:
			nonce = p
		case *isakmp.ID:
			id = p
		default:
			rest = append(rest, p)
		}
	}
	if ke == nil || nonce == nil {
		return nil, errors.New("a key exchange message without KE or NONCE")
	}
	if id == nil { // Main Mode: our identity goes here, not with the hash
		id = sa.conn.localID.Payload()
	}
	if a.revised && sa.mode == AggressiveMode { // HASH_R, vendor IDs, NAT-D: before the nonce, in the clear
		head, rest = append(head, rest...), nil
	}
	if !a.revised && sa.mode == MainMode { // "HDR, KE, [ HASH(1), ] <IDii_b>PubKey_r, <Ni_b>PubKey_r"
		head, ke = append(head, ke), nil
	}
	if sa.role == Initiator { // HASH(1), which in §5.3 "MUST be followed by the encrypted nonce"
		head = append(head, &isakmp.Hash{Data: prf.Hash(a.cfg.PeerCert.Raw)})
	}
	encNonce, err := pki.Encrypt(peerKey, nonce.Body(), a.rand)
	if err != nil {
		return nil, err
	}
	if !a.revised {
		encID, err := pki.Encrypt(peerKey, id.Body(), a.rand)
		if err != nil {
			return nil, fmt.Errorf("our ID %s: %w", id, err)
		}
		if ke != nil { // Aggressive Mode: "HDR, SA, [ HASH(1),] KE, <IDii_b>Pubkey_r, <Ni_b>Pubkey_r"
			head = append(head, ke)
		}
		out := append(head, sealed(isakmp.PayloadID, encID), &isakmp.Nonce{Data: encNonce})
		return append(out, rest...), nil
	}
	ne := keymat.NonceKey(prf, nonce.Body(), sa.ownCookie())
	nc, err := keymat.NewNonceCipher(ciph, prf, ne)
	if err != nil {
		return nil, err
	}
	defer clear(ne)
	defer clear(nc.Key)
	out := append(head, &isakmp.Nonce{Data: encNonce}, sealed(isakmp.PayloadKE, nc.Seal(ke.Body())), sealed(isakmp.PayloadID, nc.Seal(id.Body())))
	for _, p := range rest {
		out = append(out, sealed(p.Type(), nc.Seal(p.Body())))
	}
	return out, nil
}

// keyExchangeName is the message the peer's nonce comes in.
func (sa *isakmpSA) keyExchangeName() string {
	switch {
	case sa.mode == AggressiveMode && sa.role == Responder:
		return "Aggressive Mode 1/3"
	case sa.mode == AggressiveMode:
		return "Aggressive Mode 2/3"
	case sa.role == Responder:
		return "Main Mode 3/6"
	}
	return "Main Mode 4/6"
}

// undecryptedID stands for an identity that did not decrypt; the HASH
// fails before anything reads it.
func undecryptedID() *isakmp.ID { return &isakmp.ID{IDType: isakmp.IDKeyID} }

func (a *pkencAuth) open(sa *isakmpSA, m *isakmp.Message) (*isakmp.ID, error) {
	prf, ciph, err := suiteKeys(sa)
	if err != nil {
		return nil, err
	}
	at := slices.IndexFunc(m.Payloads, func(p isakmp.Payload) bool { return p.Type() == isakmp.PayloadNonce })
	if at < 0 {
		return nil, nil // untouched: the mode says what is missing
	}
	hidden := m.Payloads // where the KE and ID must be: after the nonce, in the revised method
	if a.revised {
		hidden = m.Payloads[at+1:]
	}
	has := func(t isakmp.PayloadType) bool {
		return slices.ContainsFunc(hidden, func(p isakmp.Payload) bool { return p.Type() == t })
	}
	if !has(isakmp.PayloadKE) || !has(isakmp.PayloadID) {
		return nil, nil
	}
	if sa.role == Responder {
		for _, p := range m.Payloads[:at] {
			if h, ok := p.(*isakmp.Hash); ok && !hmac.Equal(h.Data, prf.Hash(a.cfg.Chain[0].Raw)) {
				return nil, &authError{isakmp.NotifyCertificateUnavailable, fmt.Sprintf("HASH(1) names a certificate this side does not hold (ours is %q): the peer encrypted its nonce and identity to another key, from a stale or wrong certificate for us", dnString(a.cfg.Chain[0].RawSubject))}
			}
		}
	}
	what := sa.keyExchangeName()
	nonceFailed := false
	failed := func(payload string) {
		if nonceFailed {
			return // what follows a nonce we could not read cannot decrypt either
		}
		nonceFailed = payload == "NONCE"
		a.undecrypted = append(a.undecrypted, "the "+payload+" of "+what)
		sa.e.publishLimited(events.Event{
			Kind: events.IKEMalformed, Step: events.StepPhase1, Conn: sa.conn.cfg.Name, Level: events.Warn,
			Message: fmt.Sprintf("%s from %s: its %s does not decrypt with our private key; going on with a random value, so that the peer learns nothing from us, and phase 1 will fail at the hash", what, sa.remote, payload),
			Explain: "A gateway that answered \"does not decrypt\" would hand an attacker a decryption oracle (Bleichenbacher's attack on PKCS#1 v1.5, used against these very IKEv1 methods in 2018). It goes on instead, and the failure looks like any wrong key.",
			SA:      sa.info(),
			Fields:  map[string]any{"peer": sa.remote.String(), "payload": payload},
		})
	}

	// The nonce, from the key only we hold.
	ni, err := pki.Decrypt(a.cfg.Key, m.Payloads[at].Body())
	if err != nil || len(ni) < 8 || len(ni) > 256 { // RFC 2409 §5: 8 to 256 bytes
		failed("NONCE")
		ni = make([]byte, 32)
		sa.e.random(ni)
	}
	m.Payloads[at] = &isakmp.Nonce{Data: ni}

	if !a.revised {
		var id *isakmp.ID
		for i, p := range m.Payloads {
			if p.Type() != isakmp.PayloadID {
				continue
			}
			plain, err := pki.Decrypt(a.cfg.Key, p.Body())
			if err == nil {
				id, err = parseID(plain)
			}
			if err != nil {
				failed("ID")
				id = undecryptedID()
			}
			m.Payloads[i] = id
			return id, nil
		}
		return nil, nil
	}

	// The revised method: every payload after the nonce, in order, under
	// Ke from the nonce just decrypted (and a random one makes garbage of
	// them all, which is as it should be).
	ne := keymat.NonceKey(prf, ni, sa.peerCookie())
	nc, err := keymat.NewNonceCipher(ciph, prf, ne)
	if err != nil {
		return nil, err
	}
	defer clear(ne)
	defer clear(nc.Key)
	out := append([]isakmp.Payload(nil), m.Payloads[:at+1]...)
	var id *isakmp.ID
	var ke bool
	for _, p := range m.Payloads[at+1:] {
		plain, err := nc.Open(p.Body()) // also moves the chain on
		switch t := p.Type(); {
		case t == isakmp.PayloadKE && !ke:
			ke = true
			// A value that SharedSecret would refuse must not make the
			// exchange end differently either: test it here, and use our
			// own public value in its place.
			secret, verr := sa.p1.dh.SharedSecret(plain)
			clear(secret)
			if err != nil || verr != nil {
				failed("KE")
				plain = sa.p1.dh.Public()
			}
			out = append(out, &isakmp.KE{Data: plain})
		case t == isakmp.PayloadID && id == nil:
			if err == nil {
				id, err = parseID(plain)
			}
			if err != nil {
				failed("ID")
				id = undecryptedID()
			}
			out = append(out, id)
		case t == isakmp.PayloadNATD || t == isakmp.PayloadNATDDraft:
			// Not covered by the hash, as in the clear: one that does not
			// decrypt counts as a mismatch (a NAT), like a forged one.
			if err != nil {
				plain = make([]byte, prf.Size())
				sa.e.random(plain)
			}
			out = append(out, &isakmp.NATD{Draft: t == isakmp.PayloadNATDDraft, Hash: plain})
		}
		// Anything else (an optional Cert-I, which we do not need) only
		// moved the chain.
	}
	m.Payloads = out
	return id, nil
}

// parseID decodes a decrypted ID body.
func parseID(body []byte) (*isakmp.ID, error) {
	return isakmp.ParseID(bytes.Clone(body))
}

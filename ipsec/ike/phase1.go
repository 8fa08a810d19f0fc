package ike

import (
	"github.com/ipseclab/ipseclab/ipsec/isakmp"
	"github.com/ipseclab/ipseclab/ipsec/keymat"
)

// Phase 1 (RFC 2409 §5) makes the ISAKMP SA, and needs a handful of values
// that nothing after it does: the Diffie-Hellman private key, both public
// values and nonces, and the initiator's SA payload (in Aggressive Mode its
// ID payload too) that HASH_I and HASH_R cover. They live in a phase1 that
// the SA holds only while Main or Aggressive Mode runs, as crypto/tls keeps
// a handshake's state apart from the connection. Once the SA is established,
// or the exchange fails, the phase1 goes and its secrets are wiped. What
// outlives it is what the SA works with: the cookies, the chosen suite, and
// keymat.Phase1Keys (SKEYID_d for KEYMAT, SKEYID_a for the hashes of Quick
// Mode and Informational, Ka and the IV chains). A new phase 1, to replace
// the SA, starts from scratch.

// p1State is where an ISAKMP SA stands: a step of its phase 1 exchange,
// named by what this side last sent, or established. The value is how
// `ipseclab sas` and a stalled Initiate show it. Each mode's file declares
// its states with the table of the steps that leave them.
type p1State string

const established p1State = "established" // phase 1 is done

// phase1Step takes the message that an SA in some state waits for: the next
// message of its Main or Aggressive Mode.
type phase1Step func(e *Engine, sa *isakmpSA, p Packet, m *isakmp.Message)

// steps is the state table of the SA's mode.
func (sa *isakmpSA) steps() map[p1State]phase1Step {
	if sa.mode == AggressiveMode {
		return aggressiveModeSteps
	}
	return mainModeSteps
}

// phase1 is the state of one phase 1 exchange in progress.
type phase1 struct {
	auth     authMethod         // how the two sides prove who they are
	dh       *keymat.PrivateKey // ours: x of g^x
	gxi, gxr []byte             // g^xi, g^xr: the bodies of the KE payloads
	ni, nr   []byte             // Ni_b, Nr_b: the bodies of the Nonce payloads (copies, wiped at the end)
	saiB     []byte             // SAi_b: the body of the initiator's SA payload, as sent or received
	idii     *isakmp.ID         // IDii in Aggressive Mode, from AM1 until AM3 carries HASH_I over it
	// sealedPeerID is the peer's ID in Main Mode when public-key
	// encryption sent it in MM3/MM4, decrypted, for its proof in MM5/MM6.
	sealedPeerID *isakmp.ID
}

func newPhase1(e *Engine, c *conn) *phase1 {
	return &phase1{auth: newAuthMethod(e, c)}
}

// wipe zeroes the secrets: the private key, and the nonces that went into
// SKEYID. The public values and payload bodies may share memory with the
// datagrams they came in, and are only dropped.
func (p1 *phase1) wipe() {
	if p1.dh != nil {
		p1.dh.Zero()
	}
	clear(p1.ni)
	clear(p1.nr)
}

// endPhase1 drops the exchange's state: the SA is established, failed, or
// destroyed. Repeats of the last message are still answered, from the
// cached reply in sa.p1Flight.
func (sa *isakmpSA) endPhase1() {
	if sa.p1 != nil {
		sa.p1.wipe()
		sa.p1 = nil
	}
}

// newDHKey draws the SA's phase 1 key pair.
func (sa *isakmpSA) newDHKey(g isakmp.GroupDescription) error {
	k, err := sa.e.newDH(g)
	sa.p1.dh = k
	return err
}

// deriveKeys computes g^xy with the peer's public value, then SKEYID and the
// rest (RFC 2409 §5, App. B). g^xy is wiped once they exist: Quick Mode's
// PFS makes its own.
func (sa *isakmpSA) deriveKeys(peerPublic []byte) error {
	p1 := sa.p1
	gxy, err := p1.dh.SharedSecret(peerPublic)
	if err != nil {
		return err
	}
	defer clear(gxy)
	prf, err := keymat.NewPRF(sa.choice.attrs.Hash)
	if err != nil {
		return err
	}
	ciph, err := keymat.NewCipher(sa.choice.attrs.Encryption, sa.choice.attrs.KeyLength)
	if err != nil {
		return err
	}
	params := keymat.Phase1Params{
		PRF: prf, Cipher: ciph,
		Ni: p1.ni, Nr: p1.nr, GXI: p1.gxi, GXR: p1.gxr, GXY: gxy, CookieI: sa.ckyI, CookieR: sa.ckyR,
	}
	p1.auth.keying(&params)
	keys, err := keymat.DerivePhase1(params)
	if err != nil {
		return err
	}
	if sa.block, err = keys.NewBlock(); err != nil {
		return err
	}
	sa.keys, sa.ivs = keys, keys.NewIVs()
	if sa.e.cfg.PublishKeys {
		sa.e.publishPhase1Keys(sa)
	}
	return nil
}

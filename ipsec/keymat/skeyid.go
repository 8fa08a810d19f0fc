package keymat

import (
	"crypto/cipher"
	"fmt"

	"github.com/ipseclab/ipseclab/ipsec/isakmp"
)

// SKEYIDPreSharedKey is SKEYID for pre-shared key authentication (RFC 2409
// §5): prf(pre-shared-key, Ni_b | Nr_b).
func SKEYIDPreSharedKey(prf PRF, psk, ni, nr []byte) []byte {
	return prf.Compute(psk, ni, nr)
}

// SKEYIDSignature is SKEYID for signature authentication (RFC 2409 §5), also
// used by hybrid authentication: prf(Ni_b | Nr_b, g^xy).
func SKEYIDSignature(prf PRF, ni, nr, gxy []byte) []byte {
	return prf.Compute(append(append([]byte(nil), ni...), nr...), gxy)
}

// SKEYIDPublicKeyEncryption is SKEYID for the public key encryption methods
// (RFC 2409 §5): prf(hash(Ni_b | Nr_b), CKY-I | CKY-R).
func SKEYIDPublicKeyEncryption(prf PRF, ni, nr []byte, ckyI, ckyR isakmp.Cookie) []byte {
	return prf.Compute(prf.Hash(ni, nr), ckyI[:], ckyR[:])
}

// authClass is how an authentication method derives SKEYID.
type authClass int

const (
	authPreShared authClass = iota + 1
	authSignature
	authEncryption
)

func classOf(m isakmp.AuthMethod) (authClass, error) {
	switch m {
	case isakmp.AuthMethodPSK, isakmp.AuthMethodXAuthInitPSK, isakmp.AuthMethodXAuthRespPSK:
		return authPreShared, nil
	case isakmp.AuthMethodDSS, isakmp.AuthMethodRSASig, isakmp.AuthMethodECDSA,
		isakmp.AuthMethodECDSAP256, isakmp.AuthMethodECDSAP384, isakmp.AuthMethodECDSAP521,
		isakmp.AuthMethodHybridInitRSA, isakmp.AuthMethodHybridRespRSA,
		isakmp.AuthMethodHybridInitDSS, isakmp.AuthMethodHybridRespDSS,
		isakmp.AuthMethodXAuthInitDSS, isakmp.AuthMethodXAuthRespDSS,
		isakmp.AuthMethodXAuthInitRSA, isakmp.AuthMethodXAuthRespRSA:
		return authSignature, nil
	case isakmp.AuthMethodRSAEnc, isakmp.AuthMethodRSARevisedEnc,
		isakmp.AuthMethodElGamalEnc, isakmp.AuthMethodElGamalRevisedEnc,
		isakmp.AuthMethodXAuthInitRSAEnc, isakmp.AuthMethodXAuthRespRSAEnc,
		isakmp.AuthMethodXAuthInitRSARevisedEnc, isakmp.AuthMethodXAuthRespRSARevisedEnc:
		return authEncryption, nil
	}
	return 0, fmt.Errorf("%w: authentication method %s", ErrUnsupported, m)
}

// DeriveSKEYIDs returns SKEYID_d, SKEYID_a and SKEYID_e (RFC 2409 §5):
//
//	SKEYID_d = prf(SKEYID, g^xy | CKY-I | CKY-R | 0)
//	SKEYID_a = prf(SKEYID, SKEYID_d | g^xy | CKY-I | CKY-R | 1)
//	SKEYID_e = prf(SKEYID, SKEYID_a | g^xy | CKY-I | CKY-R | 2)
func DeriveSKEYIDs(prf PRF, skeyid, gxy []byte, ckyI, ckyR isakmp.Cookie) (d, a, e []byte) {
	d = prf.Compute(skeyid, gxy, ckyI[:], ckyR[:], []byte{0})
	a = prf.Compute(skeyid, d, gxy, ckyI[:], ckyR[:], []byte{1})
	e = prf.Compute(skeyid, a, gxy, ckyI[:], ckyR[:], []byte{2})
	return d, a, e
}

// EncryptionKey returns Ka, the phase 1 encryption key of size bytes (RFC
// 2409 Appendix B). When SKEYID_e is long enough Ka is its first size bytes;
// otherwise it is the start of K1 | K2 | ... with K1 = prf(SKEYID_e, 0) and
// Kn = prf(SKEYID_e, K(n-1)).
func EncryptionKey(prf PRF, skeyidE []byte, size int) []byte {
	if len(skeyidE) >= size {
		return append([]byte(nil), skeyidE[:size]...)
	}
	out := make([]byte, 0, size+prf.Size())
	k := prf.Compute(skeyidE, []byte{0})
	for {
		out = append(out, k...)
		if len(out) >= size {
			return out[:size]
		}
		k = prf.Compute(skeyidE, k)
	}
}

// Phase1IV is the first IV of phase 1 (RFC 2409 Appendix B): hash(g^xi | g^xr)
// cut to the cipher's block size.
func Phase1IV(prf PRF, gxi, gxr []byte, blockSize int) []byte {
	return prf.Hash(gxi, gxr)[:blockSize]
}

// Phase1Params is what DerivePhase1 needs, all of it as sent or received on
// the wire: the nonces and public values are the bodies of the NONCE and KE
// payloads.
type Phase1Params struct {
	PRF              PRF
	Cipher           Cipher
	AuthMethod       isakmp.AuthMethod
	PreSharedKey     []byte // for the pre-shared key methods
	Ni, Nr           []byte // Ni_b, Nr_b
	GXI, GXR         []byte // g^xi, g^xr
	GXY              []byte // the Diffie-Hellman shared secret
	CookieI, CookieR isakmp.Cookie
}

// Phase1Keys is the keying material of one ISAKMP SA (RFC 2409 §5 and
// Appendix B) together with what its hashes need. Its methods compute the
// phase 1 and phase 2 hashes and the IPsec KEYMAT.
type Phase1Keys struct {
	PRF              PRF
	Cipher           Cipher
	CookieI, CookieR isakmp.Cookie
	GXI, GXR         []byte
	SKEYID           []byte
	SKEYIDd          []byte // derives IPsec keys
	SKEYIDa          []byte // authenticates phase 2 and informational messages
	SKEYIDe          []byte // derives Ka
	EncryptionKey    []byte // Ka
	IV               []byte // hash(g^xi | g^xr) cut to the block size
}

// DerivePhase1 computes SKEYID for the authentication method, then SKEYID_d,
// SKEYID_a, SKEYID_e, Ka and the phase 1 IV.
func DerivePhase1(p Phase1Params) (*Phase1Keys, error) {
	class, err := classOf(p.AuthMethod)
	if err != nil {
		return nil, err
	}
	var skeyid []byte
	switch class {
	case authPreShared:
		skeyid = SKEYIDPreSharedKey(p.PRF, p.PreSharedKey, p.Ni, p.Nr)
	case authSignature:
		skeyid = SKEYIDSignature(p.PRF, p.Ni, p.Nr, p.GXY)
	case authEncryption:
		skeyid = SKEYIDPublicKeyEncryption(p.PRF, p.Ni, p.Nr, p.CookieI, p.CookieR)
	}
	k := &Phase1Keys{
		PRF: p.PRF, Cipher: p.Cipher, CookieI: p.CookieI, CookieR: p.CookieR,
		GXI: p.GXI, GXR: p.GXR, SKEYID: skeyid,
	}
	k.SKEYIDd, k.SKEYIDa, k.SKEYIDe = DeriveSKEYIDs(p.PRF, skeyid, p.GXY, p.CookieI, p.CookieR)
	k.EncryptionKey = EncryptionKey(p.PRF, k.SKEYIDe, p.Cipher.KeySize())
	k.IV = Phase1IV(p.PRF, p.GXI, p.GXR, p.Cipher.BlockSize())
	return k, nil
}

// NewBlock returns the ISAKMP SA's block cipher keyed with Ka.
func (k *Phase1Keys) NewBlock() (cipher.Block, error) { return k.Cipher.NewBlock(k.EncryptionKey) }

// NewIVs returns an IV tracker for the ISAKMP SA, starting from the phase 1 IV.
func (k *Phase1Keys) NewIVs() *IVs { return NewIVs(k.PRF, k.Cipher.BlockSize(), k.IV) }

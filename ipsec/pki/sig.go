package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	_ "crypto/sha256" // the RFC 4754 hashes, for crypto.Hash.New
	_ "crypto/sha512"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"math/big"

	"github.com/ipseclab/ipseclab/ipsec/isakmp"
)

// ErrBadSignature is a SIG payload that does not verify with the peer's
// key: the peer does not hold the certificate's private key, or computed a
// different HASH_I/HASH_R (RFC 2409 §5.1). Phase 1 answers
// AUTHENTICATION-FAILED.
var ErrBadSignature = errors.New("pki: signature does not verify")

// AuthMethodOf is the phase 1 authentication method a key signs with: RSA
// signatures (3) for RSA, and for ECDSA the RFC 4754 method of its curve
// (9, 10, 11), since RFC 4754 ties each curve to one hash and one method
// number. A crypto.Signer is accepted too, for its public key.
func AuthMethodOf(pub crypto.PublicKey) (isakmp.AuthMethod, error) {
	if s, ok := pub.(crypto.Signer); ok {
		pub = s.Public()
	}
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return isakmp.AuthMethodRSASig, nil
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return isakmp.AuthMethodECDSAP256, nil
		case elliptic.P384():
			return isakmp.AuthMethodECDSAP384, nil
		case elliptic.P521():
			return isakmp.AuthMethodECDSAP521, nil
		}
	}
	return 0, fmt.Errorf("pki: a %s key has no IKEv1 signature method (RSA, or ECDSA on P-256, P-384 or P-521)", DescribeKey(pub))
}

// ecdsaParams is RFC 4754 §3's table: the hash and the byte size of r and
// s for each curve.
func ecdsaParams(pub *ecdsa.PublicKey) (crypto.Hash, int, error) {
	switch pub.Curve {
	case elliptic.P256():
		return crypto.SHA256, 32, nil
	case elliptic.P384():
		return crypto.SHA384, 48, nil
	case elliptic.P521():
		return crypto.SHA512, 66, nil
	}
	return 0, 0, fmt.Errorf("pki: ECDSA on %s has no IKEv1 method (RFC 4754 defines P-256, P-384 and P-521)", pub.Curve.Params().Name)
}

// Sign makes the SIG payload's data over hash (HASH_I or HASH_R) the way
// strongSwan's IKEv1 does, which is what a peer checks against:
//
//   - RSA: PKCS#1 v1.5 type 1 padding around hash itself, with no DigestInfo
//     (RFC 2409 §5.1 signs "HASH_I" directly, and the PRF output names no
//     hash algorithm an ASN.1 prefix could announce).
//   - ECDSA: hash is the digest that is signed, as it is (charon's
//     ECDSA_WITH_NULL): the caller computes HASH_I/HASH_R with the HMAC of
//     the curve's SHA-2 (RFC 4754 §4; see HashForECDSA), so it already has
//     the size the curve expects. The signature is r || s, each left-padded
//     to the curve's size (RFC 4754 §7), not the DER SEQUENCE of X.509.
func Sign(key crypto.Signer, hash []byte, rand io.Reader) ([]byte, error) {
	if len(hash) == 0 {
		return nil, errors.New("pki: nothing to sign")
	}
	switch pub := key.Public().(type) {
	case *rsa.PublicKey:
		sig, err := key.Sign(rand, hash, crypto.Hash(0))
		if err != nil {
			return nil, fmt.Errorf("pki: RSA signature: %w", err)
		}
		return sig, nil
	case *ecdsa.PublicKey:
		h, size, err := ecdsaParams(pub)
		if err != nil {
			return nil, err
		}
		der, err := key.Sign(rand, hash, h)
		if err != nil {
			return nil, fmt.Errorf("pki: ECDSA signature: %w", err)
		}
		var rs struct{ R, S *big.Int }
		if rest, err := asn1.Unmarshal(der, &rs); err != nil || len(rest) > 0 {
			return nil, fmt.Errorf("pki: ECDSA signer returned a malformed signature: %v", err)
		}
		sig := make([]byte, 2*size)
		rs.R.FillBytes(sig[:size])
		rs.S.FillBytes(sig[size:])
		return sig, nil
	}
	return nil, fmt.Errorf("pki: cannot sign with a %s key", DescribeKey(key.Public()))
}

// Verify checks a SIG payload's data made as Sign makes it. Every mismatch,
// including a signature of the wrong length, is ErrBadSignature.
func Verify(pub crypto.PublicKey, hash, sig []byte) error {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if err := rsa.VerifyPKCS1v15(k, crypto.Hash(0), hash, sig); err != nil {
			return fmt.Errorf("%w (RSA-%d, PKCS#1 v1.5 over the raw hash)", ErrBadSignature, k.N.BitLen())
		}
		return nil
	case *ecdsa.PublicKey:
		h, size, err := ecdsaParams(k)
		if err != nil {
			return err
		}
		if len(sig) != 2*size {
			return fmt.Errorf("%w: %d bytes, but an ECDSA %s signature (r|s) has %d",
				ErrBadSignature, len(sig), k.Curve.Params().Name, 2*size)
		}
		r := new(big.Int).SetBytes(sig[:size])
		s := new(big.Int).SetBytes(sig[size:])
		if !ecdsa.Verify(k, hash, r, s) {
			return fmt.Errorf("%w (ECDSA %s with %s)", ErrBadSignature, k.Curve.Params().Name, h)
		}
		return nil
	}
	return fmt.Errorf("pki: cannot verify with a %s key", DescribeKey(pub))
}

// HashForECDSA is the hash algorithm that HASH_I and HASH_R are computed
// with (as HMAC, keyed with SKEYID) when phase 1 authenticates with ECDSA
// method m, whatever PRF the suite negotiated: RFC 4754 ties each curve to
// one hash, and charon computes the signed hash with it. ok is false for
// the other methods, which use the suite's PRF.
func HashForECDSA(m isakmp.AuthMethod) (_ isakmp.HashAlgorithm, ok bool) {
	switch m {
	case isakmp.AuthMethodECDSAP256:
		return isakmp.HashSHA2_256, true
	case isakmp.AuthMethodECDSAP384:
		return isakmp.HashSHA2_384, true
	case isakmp.AuthMethodECDSAP521:
		return isakmp.HashSHA2_512, true
	}
	return 0, false
}

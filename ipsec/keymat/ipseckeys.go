package keymat

import (
	"fmt"

	"github.com/ipseclab/ipseclab/ipsec/isakmp"
)

// KeyMat returns length bytes of Quick Mode keying material for one IPsec SA
// (RFC 2409 §5.5):
//
//	KEYMAT = K1 | K2 | K3 | ...
//	K1 = prf(SKEYID_d, [g(qm)^xy |] protocol | SPI | Ni_b | Nr_b)
//	Kn = prf(SKEYID_d, K(n-1) | [g(qm)^xy |] protocol | SPI | Ni_b | Nr_b)
//
// gqmxy is the Quick Mode Diffie-Hellman secret when PFS was negotiated, nil
// otherwise. spi is the SPI chosen by the SA's destination: for the SA that
// carries traffic to the peer, the SPI the peer put in its proposal; for the
// inbound SA, our own.
func (k *Phase1Keys) KeyMat(proto isakmp.ProtocolID, spi, gqmxy, niB, nrB []byte, length int) []byte {
	seed := make([]byte, 0, len(gqmxy)+1+len(spi)+len(niB)+len(nrB))
	seed = append(append(append(append(append(seed, gqmxy...), byte(proto)), spi...), niB...), nrB...)
	out := make([]byte, 0, length+k.PRF.Size())
	var prev []byte
	for len(out) < length {
		prev = k.PRF.Compute(k.SKEYIDd, prev, seed)
		out = append(out, prev...)
	}
	return out[:length]
}

// IPsecKeys are the keys of one IPsec SA, cut from its KEYMAT in the order RFC
// 2409 §5.5 implies and RFC 4106 §8.1 / RFC 3686 §5.1 specify: the encryption
// key, then the salt of a counter-based cipher, then the integrity key.
type IPsecKeys struct {
	Encryption []byte
	Salt       []byte // 4 bytes for AES-GCM, AES-CTR and AES-GMAC; 3 for AES-CCM
	Integrity  []byte
}

// KeyLengths returns the sizes, in bytes, of the keys an AH, ESP or IPCOMP
// transform needs: encryption key, salt and integrity key. keyBits is the
// transform's Key Length attribute (0 when absent; AES then defaults to 128
// bits) and auth its Authentication Algorithm attribute (0 when absent).
func KeyLengths(proto isakmp.ProtocolID, id isakmp.TransformID, keyBits uint16, auth isakmp.AuthAlgorithm) (enc, salt, integ int, err error) {
	if integ, err = integrityKeyLength(auth); err != nil {
		return 0, 0, 0, err
	}
	switch proto {
	case isakmp.ProtocolIPComp:
		return 0, 0, 0, nil
	case isakmp.ProtocolAH:
		if auth == 0 {
			return 0, 0, 0, fmt.Errorf("%w: AH transform %s without an authentication algorithm", ErrUnsupported, isakmp.TransformName(proto, id))
		}
		return 0, 0, integ, nil
	case isakmp.ProtocolESP:
	default:
		return 0, 0, 0, fmt.Errorf("%w: protocol %s", ErrUnsupported, proto)
	}
	aesBits := func() (int, error) {
		switch keyBits {
		case 0:
			return 16, nil
		case 128, 192, 256:
			return int(keyBits) / 8, nil
		}
		return 0, fmt.Errorf("%w: %s with a %d-bit key", ErrUnsupported, isakmp.TransformName(proto, id), keyBits)
	}
	fixed := func(n int) (int, error) {
		if keyBits != 0 && int(keyBits) != 8*n {
			return 0, fmt.Errorf("%w: %s with a %d-bit key", ErrUnsupported, isakmp.TransformName(proto, id), keyBits)
		}
		return n, nil
	}
	switch id {
	case isakmp.ESPNull:
		enc, err = 0, nil
	case isakmp.ESPDES:
		enc, err = fixed(8)
	case isakmp.ESP3DES:
		enc, err = fixed(24)
	case isakmp.ESPAESCBC:
		enc, err = aesBits()
	case isakmp.ESPAESCTR, isakmp.ESPAESGCM8, isakmp.ESPAESGCM12, isakmp.ESPAESGCM16, isakmp.ESPNullAuthAESGMAC:
		enc, err = aesBits()
		salt = 4
	case isakmp.ESPAESCCM8, isakmp.ESPAESCCM12, isakmp.ESPAESCCM16:
		enc, err = aesBits()
		salt = 3
	default:
		return 0, 0, 0, fmt.Errorf("%w: ESP transform %s", ErrUnsupported, isakmp.TransformName(proto, id))
	}
	return enc, salt, integ, err
}

func integrityKeyLength(auth isakmp.AuthAlgorithm) (int, error) {
	switch auth {
	case 0:
		return 0, nil
	case isakmp.AuthAlgHMACMD5, isakmp.AuthAlgAESXCBCMAC:
		return 16, nil
	case isakmp.AuthAlgHMACSHA1:
		return 20, nil
	case isakmp.AuthAlgHMACSHA256:
		return 32, nil
	case isakmp.AuthAlgHMACSHA384:
		return 48, nil
	case isakmp.AuthAlgHMACSHA512:
		return 64, nil
	}
	return 0, fmt.Errorf("%w: authentication algorithm %s", ErrUnsupported, auth)
}

// SplitKeyMat cuts KEYMAT into an encryption key, a salt and an integrity key
// of the given lengths; keymat must hold at least their sum.
func SplitKeyMat(keymat []byte, enc, salt, integ int) IPsecKeys {
	return IPsecKeys{
		Encryption: append([]byte(nil), keymat[:enc]...),
		Salt:       append([]byte(nil), keymat[enc:enc+salt]...),
		Integrity:  append([]byte(nil), keymat[enc+salt:enc+salt+integ]...),
	}
}

// IPsecKeys derives the keys of one IPsec SA: KeyLengths for its transform,
// KeyMat for exactly that many bytes, SplitKeyMat. spi is the SPI chosen by
// the SA's destination (see KeyMat).
func (k *Phase1Keys) IPsecKeys(proto isakmp.ProtocolID, id isakmp.TransformID, keyBits uint16, auth isakmp.AuthAlgorithm,
	spi, gqmxy, niB, nrB []byte) (IPsecKeys, error) {
	enc, salt, integ, err := KeyLengths(proto, id, keyBits, auth)
	if err != nil {
		return IPsecKeys{}, err
	}
	return SplitKeyMat(k.KeyMat(proto, spi, gqmxy, niB, nrB, enc+salt+integ), enc, salt, integ), nil
}

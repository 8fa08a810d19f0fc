package keymat

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"fmt"
	"hash"

	"github.com/ipseclab/ipseclab/ipsec/isakmp"
)

// ErrUnsupported reports an algorithm or group this package does not
// implement; the exchange layer treats such a transform as unacceptable.
var ErrUnsupported = errors.New("keymat: unsupported algorithm")

// PRF is the pseudo-random function of an ISAKMP SA: HMAC with the negotiated
// hash algorithm (RFC 2409 §4, "prf"; RFC 4868 §2 for the SHA2 variants). It
// also offers the bare hash, which RFC 2409 uses for the phase 1 IV and RFC
// 3947 for NAT-D.
type PRF struct {
	alg  isakmp.HashAlgorithm
	hash func() hash.Hash
	size int
}

// NewPRF returns the PRF of a phase 1 Hash Algorithm: MD5 (1), SHA1 (2),
// SHA2-256 (4), SHA2-384 (5) or SHA2-512 (6).
func NewPRF(alg isakmp.HashAlgorithm) (PRF, error) {
	var h func() hash.Hash
	switch alg {
	case isakmp.HashMD5:
		h = md5.New
	case isakmp.HashSHA1:
		h = sha1.New
	case isakmp.HashSHA2_256:
		h = sha256.New
	case isakmp.HashSHA2_384:
		h = sha512.New384
	case isakmp.HashSHA2_512:
		h = sha512.New
	default:
		return PRF{}, fmt.Errorf("%w: hash %s", ErrUnsupported, alg)
	}
	return PRF{alg: alg, hash: h, size: h().Size()}, nil
}

// Algorithm returns the negotiated hash algorithm.
func (p PRF) Algorithm() isakmp.HashAlgorithm { return p.alg }

// Size is the output length of the PRF and of the hash, in bytes.
func (p PRF) Size() int { return p.size }

// Compute returns prf(key, data[0] | data[1] | ...).
func (p PRF) Compute(key []byte, data ...[]byte) []byte {
	m := hmac.New(p.hash, key)
	for _, d := range data {
		m.Write(d)
	}
	return m.Sum(nil)
}

// Hash returns hash(data[0] | data[1] | ...) with the negotiated hash.
func (p PRF) Hash(data ...[]byte) []byte {
	h := p.hash()
	for _, d := range data {
		h.Write(d)
	}
	return h.Sum(nil)
}

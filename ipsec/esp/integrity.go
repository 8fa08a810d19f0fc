package esp

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"fmt"
	"hash"
)

// icv computes truncated HMAC integrity check values (RFC 2104 HMAC, truncated
// to the first ICVSize bytes as RFC 2403, 2404 and 4868 §2.1 require).
// It keeps its HMAC state and output buffer, so it is not safe for concurrent
// use; an SA guards it with its own lock.
type icv struct {
	mac  hash.Hash
	size int
	sum  [64]byte
}

func newICV(alg IntegAlg, key []byte) (*icv, error) {
	if len(key) != alg.KeySize() {
		return nil, fmt.Errorf("%s: key is %d bytes, want %d", alg, len(key), alg.KeySize())
	}
	var h func() hash.Hash
	switch alg {
	case IntegHMACMD5_96:
		h = md5.New
	case IntegHMACSHA1_96:
		h = sha1.New
	case IntegHMACSHA256_128:
		h = sha256.New
	case IntegHMACSHA384_192:
		h = sha512.New384
	case IntegHMACSHA512_256:
		h = sha512.New
	default:
		return nil, fmt.Errorf("integrity algorithm %s has no HMAC", alg)
	}
	return &icv{mac: hmac.New(h, key), size: alg.ICVSize()}, nil
}

// compute writes the ICV of the concatenation of parts into out[:size].
func (m *icv) compute(out []byte, parts ...[]byte) {
	m.mac.Reset()
	for _, p := range parts {
		m.mac.Write(p)
	}
	s := m.mac.Sum(m.sum[:0])
	copy(out[:m.size], s)
}

// verify reports, in constant time, whether got is the ICV of parts.
func (m *icv) verify(got []byte, parts ...[]byte) bool {
	m.mac.Reset()
	for _, p := range parts {
		m.mac.Write(p)
	}
	s := m.mac.Sum(m.sum[:0])
	return subtle.ConstantTimeCompare(s[:m.size], got) == 1
}

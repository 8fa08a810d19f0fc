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

	"github.com/ipseclab/ipseclab/ipsec/esp/internal/hmac2"
)

// icv computes truncated HMAC integrity check values (RFC 2104 HMAC, truncated
// to the first ICVSize bytes as RFC 2403, 2404 and 4868 §2.1 require).
// It keeps its HMAC state and output buffer, so it is not safe for concurrent
// use; an SA guards it with its own lock.
//
// HMAC-SHA1 and HMAC-SHA256 on a CPU with the SHA extensions also have a
// read-only key for internal/hmac2, which computes two ICVs in the time of
// one and needs no lock: see sum2 and its callers, which pair the packets of
// a batch.
type icv struct {
	mac  hash.Hash
	pair *hmac2.Key // nil unless HMAC-SHA1 or -SHA256 with the SHA extensions
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
	m := &icv{mac: hmac.New(h, key), size: alg.ICVSize()}
	if h, ok := map[IntegAlg]hmac2.Hash{IntegHMACSHA1_96: hmac2.SHA1, IntegHMACSHA256_128: hmac2.SHA256}[alg]; ok && hmac2.Supported(h) {
		m.pair = hmac2.NewKey(h, key)
	}
	return m, nil
}

// pairs reports whether sum2 computes two ICVs for the price of one.
func (m *icv) pairs() bool { return m != nil && m.pair != nil }

// icvInput is the input of one ICV: the bytes on the wire, then, with ESN,
// the high-order half of the sequence number (RFC 4303 §2.2.1: covered, not
// sent), and where the untruncated HMAC goes.
type icvInput struct {
	m    *icv
	data []byte
	esn  bool
	seq  uint64
	out  *[hmac2.MaxSize]byte
}

func (in *icvInput) message(hi *[4]byte) hmac2.Message {
	msg := hmac2.Message{Key: in.m.pair, Data: in.data, Sum: in.out}
	if in.esn {
		be.PutUint32(hi[:], uint32(in.seq>>32))
		msg.Ext = hi[:]
	}
	return msg
}

// sum2 computes the HMACs of a and of b side by side (both of icvs that
// pair). It touches no state of either icv, so it needs no lock.
func sum2(a, b icvInput) {
	var ha, hb [4]byte
	hmac2.Sum2(a.message(&ha), b.message(&hb))
}

// compute writes the ICV of the concatenation of parts into out[:size].
func (m *icv) compute(out []byte, parts ...[]byte) {
	copy(out[:m.size], m.full(parts))
}

// verify reports, in constant time, whether got is the ICV of parts.
func (m *icv) verify(got []byte, parts ...[]byte) bool {
	return subtle.ConstantTimeCompare(m.full(parts)[:m.size], got) == 1
}

// full returns the untruncated HMAC of the concatenation of parts, in m.sum.
func (m *icv) full(parts [][]byte) []byte {
	if m.pair != nil && len(parts) <= 2 {
		msg := hmac2.Message{Key: m.pair, Data: parts[0], Sum: (*[hmac2.MaxSize]byte)(m.sum[:])}
		if len(parts) == 2 {
			msg.Ext = parts[1]
		}
		hmac2.Sum(msg)
		return m.sum[:m.pair.Size()]
	}
	m.mac.Reset()
	for _, p := range parts {
		m.mac.Write(p)
	}
	return m.mac.Sum(m.sum[:0])
}

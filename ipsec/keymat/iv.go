package keymat

import (
	"encoding/binary"
	"sync"
)

// maxExchangeIVs bounds the number of exchanges whose IV chain an IVs keeps;
// the oldest is forgotten first. Only authenticated messages create chains, so
// an attacker cannot fill it.
const maxExchangeIVs = 64

// IVs keeps the CBC IV chains of one ISAKMP SA (RFC 2409 Appendix B):
//
//   - phase 1 (message ID 0) starts from hash(g^xi | g^xr) cut to the block
//     size, and each message's IV is the last ciphertext block of the previous
//     encrypted phase 1 message;
//   - every later exchange (Quick Mode, Informational, Transaction) starts from
//     hash(last phase 1 CBC block | M-ID) cut to the block size, and chains on
//     the last ciphertext block of its own previous message.
//
// The chains move only when Update is called: after a message was sent, or
// after a received message was decrypted and its HASH verified, so a forged or
// corrupted message does not break the exchange. Several exchanges can be in
// progress at once. An IVs is safe for concurrent use.
type IVs struct {
	mu        sync.Mutex
	prf       PRF
	blockSize int
	phase1    []byte
	exchanges map[uint32][]byte
	order     []uint32 // message IDs in the order their chains were created
}

// NewIVs returns the IV state of an ISAKMP SA whose phase 1 IV is phase1IV
// (see Phase1IV and Phase1Keys.NewIVs).
func NewIVs(prf PRF, blockSize int, phase1IV []byte) *IVs {
	return &IVs{
		prf: prf, blockSize: blockSize,
		phase1:    append([]byte(nil), phase1IV[:blockSize]...),
		exchanges: map[uint32][]byte{},
	}
}

// IV returns the IV for the next message of the exchange with message ID mid
// (0 for phase 1). For an exchange not seen before it is derived from the last
// phase 1 block and mid, and nothing is stored until Update.
func (t *IVs) IV(mid uint32) []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	if mid == 0 {
		return append([]byte(nil), t.phase1...)
	}
	if iv, ok := t.exchanges[mid]; ok {
		return append([]byte(nil), iv...)
	}
	return t.prf.Hash(t.phase1, binary.BigEndian.AppendUint32(nil, mid))[:t.blockSize]
}

// Update records a message of exchange mid that was sent, or received and
// authenticated: the next IV of that exchange is the last ciphertext block.
// encrypted may be the whole datagram, whose encrypted body is at its end.
func (t *IVs) Update(mid uint32, encrypted []byte) {
	if len(encrypted) < t.blockSize {
		return
	}
	last := append([]byte(nil), encrypted[len(encrypted)-t.blockSize:]...)
	t.mu.Lock()
	defer t.mu.Unlock()
	if mid == 0 {
		t.phase1 = last
		return
	}
	if _, ok := t.exchanges[mid]; !ok {
		if len(t.order) == maxExchangeIVs {
			delete(t.exchanges, t.order[0])
			t.order = t.order[1:]
		}
		t.order = append(t.order, mid)
	}
	t.exchanges[mid] = last
}

// Forget drops the chain of a finished exchange.
func (t *IVs) Forget(mid uint32) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.exchanges[mid]; !ok {
		return
	}
	delete(t.exchanges, mid)
	for i, m := range t.order {
		if m == mid {
			t.order = append(t.order[:i], t.order[i+1:]...)
			break
		}
	}
}

package esp

import "sync"

// DefaultReplayWindow is the anti-replay window, in packets, of an SA whose
// config leaves it at zero. RFC 4303 §3.4.3 asks for at least 32 and recommends
// 64; a wider window tolerates the reordering of a multi-queue path at no cost.
const DefaultReplayWindow = 1024

// replayWindow is the receiver's sliding window of RFC 4303 §3.4.3 over 64-bit
// sequence numbers (the low 32 bits alone without ESN). The bitmap is a ring of
// 64-bit words, as in wireguard-go's replay filter and Linux's xfrm_replay_esn:
// moving the window right clears whole words instead of shifting the bitmap.
//
// A packet goes through it twice. check, before the ICV is verified, rejects
// duplicates and packets left of the window cheaply without changing anything.
// accept, after the ICV verified, checks again (another goroutine may have
// accepted the same number in between) and records the number, moving the right
// edge if it is new. An unauthenticated packet therefore never moves the window.
type replayWindow struct {
	mu   sync.Mutex
	size uint64   // packets; a multiple of 64
	top  uint64   // highest sequence number accepted so far; 0 before the first
	ring []uint64 // size/64+1 words; bit s%64 of word (s/64)%len is sequence number s
}

func newReplayWindow(size int) *replayWindow {
	if size <= 0 {
		size = DefaultReplayWindow
	}
	words := (size + 63) / 64
	return &replayWindow{size: uint64(words * 64), ring: make([]uint64, words+1)}
}

// replayVerdict says why a sequence number is or is not acceptable.
type replayVerdict uint8

const (
	replayOK        replayVerdict = iota
	replayDuplicate               // seen before, inside the window
	replayTooOld                  // left of the window
	replayZero                    // sequence number 0 is never sent (RFC 4303 §3.3.3)
)

func (v replayVerdict) String() string {
	switch v {
	case replayDuplicate:
		return "duplicate"
	case replayTooOld:
		return "older than the window"
	case replayZero:
		return "sequence number zero"
	}
	return "ok"
}

func (w *replayWindow) verdictLocked(seq uint64) replayVerdict {
	switch {
	case seq == 0:
		return replayZero
	case seq > w.top:
		return replayOK
	case w.top-seq >= w.size:
		return replayTooOld
	}
	if w.ring[(seq/64)%uint64(len(w.ring))]&(1<<(seq%64)) != 0 {
		return replayDuplicate
	}
	return replayOK
}

// check is the pre-ICV test: it changes nothing.
func (w *replayWindow) check(seq uint64) replayVerdict {
	w.mu.Lock()
	v := w.verdictLocked(seq)
	w.mu.Unlock()
	return v
}

// accept records seq after its packet authenticated.
func (w *replayWindow) accept(seq uint64) replayVerdict {
	w.mu.Lock()
	defer w.mu.Unlock()
	if v := w.verdictLocked(seq); v != replayOK {
		return v
	}
	n := uint64(len(w.ring))
	if seq > w.top {
		// Clear the words that the right edge moves over, at most the whole ring.
		cur, next := w.top/64, seq/64
		if next-cur >= n {
			clear(w.ring)
		} else {
			for i := cur + 1; i <= next; i++ {
				w.ring[i%n] = 0
			}
		}
		w.top = seq
	}
	w.ring[(seq/64)%n] |= 1 << (seq % 64)
	return replayOK
}

// inferSeq reconstructs a full 64-bit sequence number from the low 32 bits
// carried in the packet (RFC 4303 Appendix A2.2). The receiver assumes the
// packet lies in the window or to its right, choosing the high half closest to
// the window's top.
func (w *replayWindow) inferSeq(low uint32) uint64 {
	w.mu.Lock()
	top, size := w.top, w.size
	w.mu.Unlock()
	th, tl := uint32(top>>32), uint32(top)
	bottom := tl - uint32(size) + 1 // Tl - W + 1, modulo 2^32
	var sh uint32
	if uint64(tl) >= size-1 {
		// Case A: the window does not span a 2^32 boundary.
		sh = th
		if low < bottom {
			sh = th + 1
		}
	} else {
		// Case B: the window spans the boundary.
		sh = th
		if low >= bottom {
			sh = th - 1
		}
	}
	if top < size && sh == ^uint32(0) {
		sh = 0 // before the window has moved past 2^32, there is no high half below 0
	}
	return uint64(sh)<<32 | uint64(low)
}

// Package replay is the receiver's anti-replay window of RFC 4303 §3.4.3
// (and RFC 4302 §3.4.3, the same for AH) over 64-bit sequence numbers, with
// the inference of an extended sequence number's high half from its low half
// (RFC 4303 Appendix A). It is apart from package esp the way wireguard-go
// keeps its replay filter apart: it knows nothing of packets or keys.
package replay

import "sync"

// DefaultSize is the window, in packets, that New gives for a size of zero.
// RFC 4303 §3.4.3 asks for at least 32 and recommends 64; a wider window
// tolerates the reordering of a multi-queue path at no cost.
const DefaultSize = 1024

// Window is the sliding window over sequence numbers (the low 32 bits alone
// without ESN). The bitmap is a ring of 64-bit words, as in wireguard-go's
// replay filter and Linux's xfrm_replay_esn: moving the window right clears
// whole words instead of shifting the bitmap.
//
// A packet goes through it twice. Check, before the ICV is verified, rejects
// duplicates and packets left of the window cheaply without changing
// anything. Accept, after the ICV verified, checks again (another goroutine
// may have accepted the same number in between) and records the number,
// moving the right edge if it is new. An unauthenticated packet therefore
// never moves the window. A Window is safe for concurrent use.
type Window struct {
	mu   sync.Mutex
	size uint64   // packets; a multiple of 64
	top  uint64   // highest sequence number accepted so far; 0 before the first
	ring []uint64 // size/64+1 words; bit s%64 of word (s/64)%len is sequence number s
}

// New returns a window of size packets, rounded up to a multiple of 64;
// zero or less means DefaultSize.
func New(size int) *Window {
	if size <= 0 {
		size = DefaultSize
	}
	words := (size + 63) / 64
	return &Window{size: uint64(words * 64), ring: make([]uint64, words+1)}
}

// Verdict says why a sequence number is or is not acceptable.
type Verdict uint8

const (
	OK        Verdict = iota
	Duplicate         // seen before, inside the window
	TooOld            // left of the window
	Zero              // sequence number 0 is never sent (RFC 4303 §3.3.3)
)

func (v Verdict) String() string {
	switch v {
	case Duplicate:
		return "duplicate"
	case TooOld:
		return "older than the window"
	case Zero:
		return "sequence number zero"
	}
	return "ok"
}

func (w *Window) verdictLocked(seq uint64) Verdict {
	switch {
	case seq == 0:
		return Zero
	case seq > w.top:
		return OK
	case w.top-seq >= w.size:
		return TooOld
	}
	if w.ring[(seq/64)%uint64(len(w.ring))]&(1<<(seq%64)) != 0 {
		return Duplicate
	}
	return OK
}

// Check is the test before the ICV: it changes nothing.
func (w *Window) Check(seq uint64) Verdict {
	w.mu.Lock()
	v := w.verdictLocked(seq)
	w.mu.Unlock()
	return v
}

// Accept records seq once its packet has authenticated.
func (w *Window) Accept(seq uint64) Verdict {
	w.mu.Lock()
	defer w.mu.Unlock()
	if v := w.verdictLocked(seq); v != OK {
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
	return OK
}

// Top is the highest sequence number accepted so far, 0 before the first.
func (w *Window) Top() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.top
}

// Reset forgets every number accepted, so that a benchmark can replay one
// packet without a new window.
func (w *Window) Reset() {
	w.mu.Lock()
	clear(w.ring)
	w.top = 0
	w.mu.Unlock()
}

// InferSeq reconstructs a full 64-bit sequence number from the low 32 bits
// carried in the packet (RFC 4303 Appendix A2.2). The receiver assumes the
// packet lies in the window or to its right, choosing the high half closest
// to the window's top.
func (w *Window) InferSeq(low uint32) uint64 {
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

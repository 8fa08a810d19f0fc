package replay

import (
	"encoding/binary"
	"testing"
)

func TestWindowEdges(t *testing.T) {
	w := New(64)
	for _, c := range []struct {
		seq  uint64
		want Verdict
	}{
		{0, Zero},
		{1, OK},
		{1, Duplicate},
		{100, OK},    // right of the window: it moves to end at 100
		{36, TooOld}, // 100-36 = 64: just left of the window
		{37, OK},     // its left edge, never seen
		{37, Duplicate},
		{99, OK}, // out of order inside the window
		{1000, OK},
		{900, TooOld},
		{999, OK},
	} {
		if got := w.Check(c.seq); got != c.want {
			t.Fatalf("Check(%d) = %s, want %s", c.seq, got, c.want)
		}
		if got := w.Accept(c.seq); got != c.want {
			t.Fatalf("Accept(%d) = %s, want %s", c.seq, got, c.want)
		}
	}
	if w.Top() != 1000 {
		t.Fatalf("top %d", w.Top())
	}
	w.Reset()
	if w.Top() != 0 || w.Check(999) != OK {
		t.Fatal("Reset left numbers behind")
	}
}

// Check never changes the window: a number checked but not accepted (its
// ICV failed) may still come later with a good one.
func TestCheckChangesNothing(t *testing.T) {
	w := New(0)
	w.Accept(10)
	if w.Check(5000) != OK || w.Top() != 10 || w.Check(10) != Duplicate || w.Check(9) != OK {
		t.Fatal("Check moved the window")
	}
}

// RFC 4303 Appendix A2.2, both cases: the window inside one 2^32 span, and
// spanning the boundary.
func TestInferSeq(t *testing.T) {
	w := New(64)
	if got := w.InferSeq(5); got != 5 {
		t.Fatalf("before any packet: %#x", got)
	}
	if got := w.InferSeq(0xffffffff); got != 0xffffffff {
		t.Fatalf("no high half below zero: %#x", got)
	}
	w.Accept(1<<32 - 10) // case A: top far from the boundary
	for low, want := range map[uint32]uint64{
		0xfffffff0: 1<<32 - 16,         // in the window
		0xfffffffe: 1<<32 - 2,          // right of it, same span
		3:          1<<32 + 3,          // right of it, across the boundary
		0x10:       1<<32 + 0x10,       // below the window's bottom: the next span
		0xffffffb0: 1<<32 + 0xffffffb0, // left of the window: also read as the next span
	} {
		if got := w.InferSeq(low); got != want {
			t.Errorf("top 2^32-10, low %#x: %#x, want %#x", low, got, want)
		}
	}
	w.Accept(1<<32 + 5) // case B: the window spans the boundary
	for low, want := range map[uint32]uint64{
		0xfffffff0: 1<<32 - 16, // the old span, inside the window
		2:          1<<32 + 2,
		100:        1<<32 + 100,
	} {
		if got := w.InferSeq(low); got != want {
			t.Errorf("top 2^32+5, low %#x: %#x, want %#x", low, got, want)
		}
	}
}

// FuzzWindow runs sequences of numbers through the window and through a
// model that remembers every number: their verdicts must agree.
func FuzzWindow(f *testing.F) {
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0})
	f.Add(binary.LittleEndian.AppendUint64(binary.LittleEndian.AppendUint64(nil, 5000), 4000))
	f.Fuzz(func(t *testing.T, in []byte) {
		w := New(128)
		seen := map[uint64]bool{}
		var top uint64
		for len(in) >= 8 {
			// Small steps mostly, so that the window is exercised, not jumped.
			seq := binary.LittleEndian.Uint64(in) % (1 << 16)
			in = in[8:]
			want := OK
			switch {
			case seq == 0:
				want = Zero
			case seq <= top && top-seq >= 128:
				want = TooOld
			case seen[seq]:
				want = Duplicate
			}
			if got := w.Accept(seq); got != want {
				t.Fatalf("Accept(%d) with top %d: %s, want %s", seq, top, got, want)
			}
			if want == OK {
				seen[seq] = true
				top = max(top, seq)
			}
		}
	})
}

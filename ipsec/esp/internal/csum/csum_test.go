package csum

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// reference is RFC 1071's algorithm, word by word in network order.
func reference(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return uint16(s)
}

func TestAgainstReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	buf := make([]byte, 70000)
	for i := range buf {
		buf[i] = byte(rng.Uint32())
	}
	ones := bytes.Repeat([]byte{0xff}, 70000) // every carry path at once
	for _, src := range [][]byte{buf, ones} {
		for n := 0; n < 70000; n += 1 + n/16 {
			for _, off := range []int{0, 1, 3} {
				if off+n > len(src) {
					continue
				}
				b := src[off : off+n]
				want := reference(b)
				if got := Bytes(b).Fold(); got != want {
					t.Fatalf("Bytes, %d bytes at offset %d: %04x, want %04x", n, off, got, want)
				}
				dst := make([]byte, n+5)
				if got := CopyAndSum(dst[1:], b).Fold(); got != want {
					t.Fatalf("CopyAndSum, %d bytes at offset %d: %04x, want %04x", n, off, got, want)
				}
				if !bytes.Equal(dst[1:1+n], b) || dst[0] != 0 || dst[n+1] != 0 {
					t.Fatalf("CopyAndSum, %d bytes: copy wrong", n)
				}
			}
		}
	}
}

// TestPieces checks that sums of pieces at even offsets add up, as the TUN
// code uses them: pseudo-header, header, payload.
func TestPieces(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	b := make([]byte, 3000)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	for range 200 {
		cut := rng.IntN(len(b)/2) * 2
		end := cut + rng.IntN(len(b)-cut)
		got := Bytes(b[:cut]).Add(Bytes(b[cut:end])).Fold()
		if want := reference(b[:end]); got != want {
			t.Fatalf("cut at %d of %d: %04x, want %04x", cut, end, got, want)
		}
	}
	// The pseudo-header is what RFC 9293 lists, summed like any bytes.
	ph := PseudoHeaderIPv4([]byte{10, 1, 0, 10}, []byte{10, 2, 0, 10}, 6, 1420)
	if got, want := ph.Fold(), reference([]byte{10, 1, 0, 10, 10, 2, 0, 10, 0, 6, 0x05, 0x8c}); got != want {
		t.Errorf("pseudo-header %04x, want %04x", got, want)
	}
}

func FuzzCopyAndSum(f *testing.F) {
	f.Add([]byte("abc"))
	f.Fuzz(func(t *testing.T, b []byte) {
		want := reference(b)
		if got := Bytes(b).Fold(); got != want {
			t.Fatalf("Bytes %04x, want %04x", got, want)
		}
		dst := make([]byte, len(b))
		if got := CopyAndSum(dst, b).Fold(); got != want || !bytes.Equal(dst, b) {
			t.Fatalf("CopyAndSum %04x, want %04x", got, want)
		}
	})
}

func BenchmarkSum(b *testing.B) {
	src := make([]byte, 1400)
	dst := make([]byte, 1400)
	b.Run("generic", func(b *testing.B) {
		b.SetBytes(1400)
		for b.Loop() {
			generic(src)
		}
	})
	b.Run("Bytes", func(b *testing.B) {
		b.SetBytes(1400)
		for b.Loop() {
			Bytes(src)
		}
	})
	b.Run("copy", func(b *testing.B) {
		b.SetBytes(1400)
		for b.Loop() {
			copy(dst, src)
		}
	})
	b.Run("CopyAndSum", func(b *testing.B) {
		b.SetBytes(1400)
		for b.Loop() {
			CopyAndSum(dst, src)
		}
	})
}

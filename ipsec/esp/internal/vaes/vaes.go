// Package vaes is AES-GCM (RFC 4106's AEAD, NIST SP 800-38D) for the ESP data
// plane, written for the x86 VAES and VPCLMULQDQ instructions, which encrypt
// and multiply two blocks per instruction in 256-bit registers.
//
// It exists for speed only: crypto/cipher's GCM uses 128-bit AES-NI and
// PCLMULQDQ and pays a fixed cost per call that dominates ESP's 1400-byte
// packets. Where the CPU lacks these instructions, NewGCM returns
// crypto/cipher's GCM, so callers never need to know which one they hold.
//
// The GHASH arithmetic follows Gueron and Kounavis, "Intel Carry-Less
// Multiplication Instruction and its Usage for Computing the GCM Mode": blocks
// are byte-reflected into registers, H is pre-multiplied by x so that a
// product needs no final shift, and the 256-bit product is reduced with two
// multiplications by the folded polynomial 0xc2000000000000000000000000000001.
// Eight blocks are multiplied by H^8..H^1 and summed before one reduction.
package vaes

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"strconv"
	"sync/atomic"
	"unsafe"
)

const (
	blockSize = 16
	nonceSize = 12
	tagSize   = 16
)

var errOpen = errors.New("cipher: message authentication failed")

// NewGCM returns AES-GCM with a 12-byte nonce and a 16-byte tag for a 16-,
// 24- or 32-byte key.
func NewGCM(key []byte) (cipher.AEAD, error) {
	if !supported {
		return stdGCM(key)
	}
	return newGCM(key)
}

func stdGCM(key []byte) (cipher.AEAD, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

// gcm holds an expanded key. Its methods keep their scratch on the stack, so
// one value may be used by several goroutines at once, like crypto/cipher's.
type gcm struct {
	ks   keySchedule
	htab [8][16]byte // H^8 … H^1, byte-reflected and multiplied by x

	// Made by the first message that needs them, not by newGCM: an SA
	// set up in a negotiation waits for them on the negotiation's
	// critical path, and many SAs (a script's tunnel that goes down at
	// once, a rekey collision's duplicate) never carry a packet.
	powers atomic.Pointer[gcmPowers]
}

// gcmPowers are H^maxPowers … H^1, and each power's halves XORed together
// for Karatsuba multiplication: a message of up to maxPowers blocks is
// hashed with one reduction instead of one per eight blocks.
type gcmPowers struct {
	pow, kara [maxPowers][16]byte
}

// maxPowers covers an ESP packet on a 1500-byte path (94 blocks of AAD,
// payload and lengths) with room to spare. Longer messages are hashed eight
// blocks per reduction.
const maxPowers = 128

func newGCM(key []byte) (*gcm, error) {
	g := &gcm{}
	if err := g.ks.expand(key); err != nil {
		return nil, err
	}
	// H = E(K, 0^128), from the counter mode with an all-zero counter block.
	var zero, h [16]byte
	ctrXOR(&g.ks.enc, g.ks.rounds, &zero, &h[0], &zero[0], blockSize)
	g.htab[7] = reflectTimesX(h)
	for i := 6; i >= 0; i-- {
		// H^(8-i) = H^(7-i) · H: GHASH of one block under H with a zero
		// accumulator is exactly that product.
		var acc [16]byte
		in := reverse(g.htab[i+1])
		ghash(&g.htab, &acc, &in[0], blockSize)
		g.htab[i] = acc
	}
	return g, nil
}

// aggregated returns the powers of H, made on first use. Two goroutines
// that both find them missing both make them, alike, and one copy stays.
func (g *gcm) aggregated() *gcmPowers {
	if p := g.powers.Load(); p != nil {
		return p
	}
	p := new(gcmPowers)
	p.pow[maxPowers-1] = g.htab[7]
	for i := maxPowers - 2; i >= 0; i-- {
		var acc [16]byte
		in := reverse(p.pow[i+1])
		ghash(&g.htab, &acc, &in[0], blockSize)
		p.pow[i] = acc
	}
	for i, w := range p.pow {
		lo := binary.LittleEndian.Uint64(w[:8])
		hi := binary.LittleEndian.Uint64(w[8:])
		binary.LittleEndian.PutUint64(p.kara[i][:8], lo^hi)
		binary.LittleEndian.PutUint64(p.kara[i][8:], lo^hi)
	}
	g.powers.CompareAndSwap(nil, p)
	return g.powers.Load()
}

// reflectTimesX turns a GHASH key as AES produced it into the register form
// the multiplication expects: bytes reversed, then multiplied by x modulo
// the reflected polynomial.
func reflectTimesX(h [16]byte) [16]byte {
	lo := binary.BigEndian.Uint64(h[8:])
	hi := binary.BigEndian.Uint64(h[:8])
	carry := hi >> 63
	hi = hi<<1 | lo>>63
	lo <<= 1
	if carry != 0 {
		hi ^= 0xc200000000000000
		lo ^= 1
	}
	var out [16]byte
	binary.LittleEndian.PutUint64(out[:8], lo)
	binary.LittleEndian.PutUint64(out[8:], hi)
	return out
}

func reverse(b [16]byte) [16]byte {
	var r [16]byte
	for i := range b {
		r[i] = b[15-i]
	}
	return r
}

func (g *gcm) NonceSize() int { return nonceSize }
func (g *gcm) Overhead() int  { return tagSize }

func (g *gcm) Seal(dst, nonce, plaintext, additionalData []byte) []byte {
	if len(nonce) != nonceSize {
		panic("vaes: incorrect nonce length given to GCM: " + strconv.Itoa(len(nonce)))
	}
	ret, out := sliceForAppend(dst, len(plaintext)+tagSize)
	if inexactOverlap(out, plaintext) {
		panic("vaes: invalid buffer overlap")
	}
	j0 := counterBlock(nonce)
	ct := out[:len(plaintext)]
	if len(plaintext) > 0 {
		first := j0
		first[15] = 2
		ctrXOR(&g.ks.enc, g.ks.rounds, &first, &ct[0], &plaintext[0], len(plaintext))
	}
	g.tag((*[16]byte)(out[len(plaintext):]), &j0, additionalData, ct)
	return ret
}

func (g *gcm) Open(dst, nonce, ciphertext, additionalData []byte) ([]byte, error) {
	if len(nonce) != nonceSize {
		panic("vaes: incorrect nonce length given to GCM: " + strconv.Itoa(len(nonce)))
	}
	if len(ciphertext) < tagSize {
		return nil, errOpen
	}
	ct, wantTag := ciphertext[:len(ciphertext)-tagSize], ciphertext[len(ciphertext)-tagSize:]
	ret, out := sliceForAppend(dst, len(ct))
	if inexactOverlap(out, ct) {
		panic("vaes: invalid buffer overlap")
	}
	j0 := counterBlock(nonce)
	// The tag is checked before anything is decrypted, so a forged packet
	// never leaves plaintext in dst.
	var tag [16]byte
	g.tag(&tag, &j0, additionalData, ct)
	if subtle.ConstantTimeCompare(tag[:], wantTag) != 1 {
		return nil, errOpen
	}
	if len(ct) > 0 {
		first := j0
		first[15] = 2
		ctrXOR(&g.ks.enc, g.ks.rounds, &first, &out[0], &ct[0], len(ct))
	}
	return ret, nil
}

// counterBlock is J0 for a 96-bit nonce: the nonce, then the 32-bit counter 1
// (SP 800-38D §7.1 step 2). The payload is encrypted from inc32(J0), whose last
// byte is 2.
func counterBlock(nonce []byte) (j0 [16]byte) {
	copy(j0[:], nonce)
	j0[15] = 1
	return j0
}

// tag is GHASH over the additional data, the ciphertext and their lengths,
// masked with E(K, J0) (SP 800-38D §7.1 steps 5 and 6).
func (g *gcm) tag(out, j0 *[16]byte, aad, ct []byte) {
	if blocks := (len(aad)+blockSize-1)/blockSize + (len(ct)+blockSize-1)/blockSize + 1; blocks <= maxPowers {
		var a, c *byte
		if len(aad) > 0 {
			a = &aad[0]
		}
		if len(ct) > 0 {
			c = &ct[0]
		}
		p := g.aggregated()
		tagAggregated(&p.pow, &p.kara, maxPowers-blocks, a, len(aad), c, len(ct), &g.ks.enc, g.ks.rounds, j0, out)
		return
	}
	var acc [16]byte
	if len(aad) > 0 {
		ghash(&g.htab, &acc, &aad[0], len(aad))
	}
	if len(ct) > 0 {
		ghash(&g.htab, &acc, &ct[0], len(ct))
	}
	var lens [16]byte
	binary.BigEndian.PutUint64(lens[:8], uint64(len(aad))*8)
	binary.BigEndian.PutUint64(lens[8:], uint64(len(ct))*8)
	finish(&g.ks.enc, g.ks.rounds, &g.htab, &acc, j0, &lens, out)
}

// sliceForAppend extends in by n bytes, reallocating if needed, and returns
// the whole slice and the new tail (as crypto/cipher does).
func sliceForAppend(in []byte, n int) (head, tail []byte) {
	if total := len(in) + n; cap(in) >= total {
		head = in[:total]
	} else {
		head = make([]byte, total)
		copy(head, in)
	}
	tail = head[len(in):]
	return
}

// inexactOverlap reports whether x and y share memory at different offsets;
// exactly in-place operation is allowed.
func inexactOverlap(x, y []byte) bool {
	if len(x) == 0 || len(y) == 0 || &x[0] == &y[0] {
		return false
	}
	return uintptr(unsafe.Pointer(&x[0])) <= uintptr(unsafe.Pointer(&y[len(y)-1])) &&
		uintptr(unsafe.Pointer(&y[0])) <= uintptr(unsafe.Pointer(&x[len(x)-1]))
}

package keymat

import (
	"crypto/subtle"
	"fmt"

	"filippo.io/edwards25519"
	"filippo.io/edwards25519/field"
)

// X25519 (RFC 7748 §5) with the scalar kept here, not in crypto/ecdh, for
// the sake of key generation. crypto/ecdh computes a key's public value
// with the variable-base Montgomery ladder, the same work as the shared
// secret; a fixed-base multiplication on the birationally equivalent
// Edwards curve, with its precomputed table, gives the same u-coordinate
// for a fraction of that. Each negotiation generates a key on either side,
// and on two cores those keys were computed while the other side's
// messages waited for a processor.

// x25519Public returns the public value of scalar: the u-coordinate of
// [clamp(scalar)]B. The clamped scalar is a multiple of the cofactor, so
// reducing it modulo the group order (as SetBytesWithClamping does) gives
// the same point.
func x25519Public(scalar *[32]byte) []byte {
	s, err := edwards25519.NewScalar().SetBytesWithClamping(scalar[:])
	if err != nil {
		panic("keymat: a 32-byte scalar was refused: " + err.Error())
	}
	return new(edwards25519.Point).ScalarBaseMult(s).BytesMontgomery()
}

// x25519 returns X25519(scalar, u), the Montgomery ladder of RFC 7748 §5,
// or an error for a u of the wrong length or one that gives the all-zero
// output (a point of small order, RFC 8031 §2.1).
func x25519(scalar *[32]byte, u []byte) ([]byte, error) {
	if len(u) != 32 {
		return nil, fmt.Errorf("%w: %d bytes for curve25519, want 32", ErrInvalidPublicValue, len(u))
	}
	k := *scalar
	k[0] &= 248
	k[31] &= 127
	k[31] |= 64
	var x1, x2, z2, x3, z3, a, aa, b, bb, e, c, d, da, cb field.Element
	if _, err := x1.SetBytes(u); err != nil { // ignores the top bit, as §5 asks
		return nil, fmt.Errorf("%w: %v", ErrInvalidPublicValue, err)
	}
	x2.One()
	x3.Set(&x1)
	z3.One()
	swap := 0
	for t := 254; t >= 0; t-- {
		kt := int(k[t/8]>>(t%8)) & 1
		swap ^= kt
		x2.Swap(&x3, swap)
		z2.Swap(&z3, swap)
		swap = kt

		a.Add(&x2, &z2)
		aa.Square(&a)
		b.Subtract(&x2, &z2)
		bb.Square(&b)
		e.Subtract(&aa, &bb)
		c.Add(&x3, &z3)
		d.Subtract(&x3, &z3)
		da.Multiply(&d, &a)
		cb.Multiply(&c, &b)
		x3.Add(&da, &cb)
		x3.Square(&x3)
		z3.Subtract(&da, &cb)
		z3.Square(&z3)
		z3.Multiply(&z3, &x1)
		x2.Multiply(&aa, &bb)
		// z2 = E · (AA + a24·E) with a24 = 121665, which is BB + 121666·E.
		z2.Mult32(&e, 121666)
		z2.Add(&z2, &bb)
		z2.Multiply(&z2, &e)
	}
	x2.Swap(&x3, swap)
	z2.Swap(&z3, swap)
	out := x2.Multiply(&x2, z2.Invert(&z2)).Bytes()
	clear(k[:])
	if subtle.ConstantTimeCompare(out, make([]byte, 32)) == 1 {
		return nil, fmt.Errorf("%w: the all-zero curve25519 secret (a point of small order)", ErrInvalidPublicValue)
	}
	return out, nil
}

package vaes

import (
	"encoding/binary"
	"strconv"
)

// keySchedule is an AES key expanded as FIPS-197 §5.2 describes. Every round
// key is stored twice, side by side, so that one 256-bit load feeds both
// blocks of a VAES instruction.
type keySchedule struct {
	enc    [15][32]byte
	rounds int // 10, 12 or 14
}

type keySizeError int

func (k keySizeError) Error() string {
	return "vaes: invalid AES key size " + strconv.Itoa(int(k))
}

func (ks *keySchedule) expand(key []byte) error {
	nk := len(key) / 4
	switch len(key) {
	case 16, 24, 32:
	default:
		return keySizeError(len(key))
	}
	ks.rounds = nk + 6
	words := 4 * (ks.rounds + 1)
	var w [60]uint32
	for i := range nk {
		w[i] = binary.BigEndian.Uint32(key[4*i:])
	}
	rcon := uint32(1)
	for i := nk; i < words; i++ {
		t := w[i-1]
		switch {
		case i%nk == 0:
			t = subWord(t<<8|t>>24) ^ rcon<<24
			rcon = uint32(xtime(byte(rcon)))
		case nk > 6 && i%nk == 4:
			t = subWord(t)
		}
		w[i] = w[i-nk] ^ t
	}
	for r := 0; r <= ks.rounds; r++ {
		for j := range 4 {
			binary.BigEndian.PutUint32(ks.enc[r][4*j:], w[4*r+j])
		}
		copy(ks.enc[r][16:], ks.enc[r][:16])
	}
	return nil
}

func subWord(w uint32) uint32 {
	return uint32(sbox[w>>24])<<24 | uint32(sbox[w>>16&0xff])<<16 | uint32(sbox[w>>8&0xff])<<8 | uint32(sbox[w&0xff])
}

// xtime multiplies by x in AES's field GF(2^8) modulo x^8+x^4+x^3+x+1.
func xtime(b byte) byte {
	if b&0x80 != 0 {
		return b<<1 ^ 0x1b
	}
	return b << 1
}

// sbox is AES's S-box, computed rather than typed in: the multiplicative
// inverse in GF(2^8) followed by the affine map of FIPS-197 §5.1.1. p walks
// the field by powers of the generator 3 while q walks it by powers of 3's
// inverse, so q = 1/p at every step.
var sbox = func() (s [256]byte) {
	rotl := func(b byte, n uint) byte { return b<<n | b>>(8-n) }
	p, q := byte(1), byte(1)
	for {
		p = p ^ xtime(p)
		q ^= q << 1
		q ^= q << 2
		q ^= q << 4
		if q&0x80 != 0 {
			q ^= 0x09
		}
		s[p] = q ^ rotl(q, 1) ^ rotl(q, 2) ^ rotl(q, 3) ^ rotl(q, 4) ^ 0x63
		if p == 1 {
			break
		}
	}
	s[0] = 0x63
	return s
}()

// inverse is the key schedule of the equivalent inverse cipher (FIPS-197
// §5.3.5), which AESDEC expects: the round keys in reverse order, the middle
// ones passed through InvMixColumns.
func (ks *keySchedule) inverse() keySchedule {
	inv := keySchedule{rounds: ks.rounds}
	m9, m11, m13, m14 := &invMix[0], &invMix[1], &invMix[2], &invMix[3]
	for r := 0; r <= ks.rounds; r++ {
		k := ks.enc[ks.rounds-r]
		if r != 0 && r != ks.rounds {
			for c := 0; c < 16; c += 4 {
				a0, a1, a2, a3 := k[c], k[c+1], k[c+2], k[c+3]
				k[c] = m14[a0] ^ m11[a1] ^ m13[a2] ^ m9[a3]
				k[c+1] = m9[a0] ^ m14[a1] ^ m11[a2] ^ m13[a3]
				k[c+2] = m13[a0] ^ m9[a1] ^ m14[a2] ^ m11[a3]
				k[c+3] = m11[a0] ^ m13[a1] ^ m9[a2] ^ m14[a3]
			}
			copy(k[16:], k[:16])
		}
		inv.enc[r] = k
	}
	return inv
}

// invMix holds the products InvMixColumns takes, by 9, 11, 13 and 14, for
// every byte: an AES-128 decryption key schedule needs 576 of them, and
// computing each with gmul's loop took half the time of setting up an
// AES-CBC SA, four of which each negotiation installs.
var invMix = func() (t [4][256]byte) {
	for i, m := range []byte{9, 11, 13, 14} {
		for a := range 256 {
			t[i][a] = gmul(byte(a), m)
		}
	}
	return t
}()

// gmul multiplies in GF(2^8).
func gmul(a, b byte) byte {
	var p byte
	for b != 0 {
		if b&1 != 0 {
			p ^= a
		}
		a = xtime(a)
		b >>= 1
	}
	return p
}

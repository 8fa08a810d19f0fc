package keymat

import (
	"crypto/ecdh"
	"errors"
	"fmt"
	"io"
	"math/big"
	"sync"

	"github.com/ipseclab/ipseclab/ipsec/isakmp"
)

// ErrInvalidPublicValue reports a peer's Diffie-Hellman public value that is
// out of range, off the curve, of the wrong length, or that yields an all-zero
// X25519 secret. The exchange layer answers INVALID-KEY-INFORMATION.
var ErrInvalidPublicValue = errors.New("keymat: invalid Diffie-Hellman public value")

// Group is a Diffie-Hellman group: the MODP groups of RFC 2409 §6 and RFC 3526,
// the ECP groups of RFC 5903 and Curve25519 (RFC 8031).
//
// Wire encodings (what goes in the KE payload and what g^xy is):
//   - MODP: g^x and g^xy as big-endian integers left-padded to the length of
//     the prime (RFC 2409 §5, the "FillBytes" rule).
//   - ECP: the KE data is x | y, each coordinate padded to the field size, and
//     g^xy is the x coordinate of the shared point alone (RFC 5903 §7, §9).
//   - Curve25519: the 32-byte u-coordinate both ways (RFC 8031 §2).
type Group struct {
	id   isakmp.GroupDescription
	name string
	size int // bytes of a public value

	// MODP
	p, g, pMinus1 *big.Int
	expBits       int
	baseOnce      sync.Once
	baseTable     [][]*big.Int // baseTable[i][j-1] = g^(j * 16^i) mod p, j = 1..15

	// ECP and Curve25519
	curve      ecdh.Curve
	secretSize int
}

var groups = map[isakmp.GroupDescription]*Group{}

func init() {
	// Private exponents are short, as RFC 3526 §8 allows: twice the group's
	// strength, using the "minimum exponent size" RFC 7919 Appendix A gives
	// for safe-prime groups of the same size (225 bits for 2048, 275 for
	// 3072, 325 for 4096, 375 for 6144, 400 for 8192), rounded up to whole
	// bytes. Full-length exponents would cost several times more for no
	// security gain; the peer cannot tell the difference.
	for _, m := range []struct {
		id      isakmp.GroupDescription
		name    string
		prime   string
		expBits int
	}{
		{isakmp.GroupMODP768, "modp768", modp768Prime, 256},
		{isakmp.GroupMODP1024, "modp1024", modp1024Prime, 256},
		{isakmp.GroupMODP1536, "modp1536", modp1536Prime, 240},
		{isakmp.GroupMODP2048, "modp2048", modp2048Prime, 232},
		{isakmp.GroupMODP3072, "modp3072", modp3072Prime, 280},
		{isakmp.GroupMODP4096, "modp4096", modp4096Prime, 328},
		{isakmp.GroupMODP6144, "modp6144", modp6144Prime, 376},
		{isakmp.GroupMODP8192, "modp8192", modp8192Prime, 400},
	} {
		p, ok := new(big.Int).SetString(m.prime, 16)
		if !ok {
			panic("keymat: bad prime for " + m.name)
		}
		groups[m.id] = &Group{
			id: m.id, name: m.name, size: (p.BitLen() + 7) / 8,
			p: p, g: big.NewInt(2), pMinus1: new(big.Int).Sub(p, big.NewInt(1)), expBits: m.expBits,
		}
	}
	for _, e := range []struct {
		id    isakmp.GroupDescription
		name  string
		curve ecdh.Curve
		coord int
	}{
		{isakmp.GroupECP256, "ecp256", ecdh.P256(), 32},
		{isakmp.GroupECP384, "ecp384", ecdh.P384(), 48},
		{isakmp.GroupECP521, "ecp521", ecdh.P521(), 66},
	} {
		groups[e.id] = &Group{id: e.id, name: e.name, curve: e.curve, size: 2 * e.coord, secretSize: e.coord}
	}
	groups[isakmp.GroupCurve25519] = &Group{id: isakmp.GroupCurve25519, name: "curve25519", curve: ecdh.X25519(), size: 32, secretSize: 32}
}

// LookupGroup returns the group with the given Group Description: 1, 2, 5,
// 14–18, 19–21 or 31.
func LookupGroup(id isakmp.GroupDescription) (*Group, error) {
	if g, ok := groups[id]; ok {
		return g, nil
	}
	return nil, fmt.Errorf("%w: DH group %d (%s)", ErrUnsupported, uint16(id), id)
}

// ID returns the group's Group Description number.
func (g *Group) ID() isakmp.GroupDescription { return g.id }

// String returns the group's strongSwan proposal keyword ("modp2048",
// "ecp256", "curve25519").
func (g *Group) String() string { return g.name }

// PublicSize is the length of the group's public values, the KE payload data.
func (g *Group) PublicSize() int { return g.size }

// SecretSize is the length of the shared secret g^xy.
func (g *Group) SecretSize() int {
	if g.curve != nil {
		return g.secretSize
	}
	return g.size
}

// PrivateKey is one side's ephemeral Diffie-Hellman key.
type PrivateKey struct {
	group  *Group
	x      *big.Int // MODP exponent
	ec     *ecdh.PrivateKey
	x25519 *[32]byte // Curve25519 scalar, before clamping (x25519.go)
	public []byte
}

// maxKeyTries bounds rejection sampling, so that a broken random source (all
// zero bytes, say) gives an error instead of a loop.
const maxKeyTries = 64

// GenerateKey draws a private key from rand and computes its public value.
// All randomness comes from rand, so a deterministic reader gives
// reproducible keys in tests.
func (g *Group) GenerateKey(rand io.Reader) (*PrivateKey, error) {
	if g.curve != nil {
		return g.generateEC(rand)
	}
	buf := make([]byte, g.expBits/8)
	for range maxKeyTries {
		if _, err := io.ReadFull(rand, buf); err != nil {
			return nil, fmt.Errorf("keymat: reading randomness: %w", err)
		}
		x := new(big.Int).SetBytes(buf)
		if x.Cmp(big.NewInt(1)) <= 0 {
			continue
		}
		k := &PrivateKey{group: g, x: x, public: g.fixedBaseExp(buf).FillBytes(make([]byte, g.size))}
		clear(buf) // x holds the exponent now; this copy would outlive the key
		return k, nil
	}
	return nil, errors.New("keymat: random source keeps producing unusable exponents")
}

// fixedBaseExp returns g^x mod p for the big-endian exponent x (expBits/8
// bytes) with a table of powers of the fixed generator: one modular
// multiplication per nonzero 4-bit window of x, instead of a squaring per bit
// and a multiplication per window as for a variable base. It makes key
// generation several times cheaper than the shared-secret computation. The
// table is built on first use (a few exponentiations' worth of work).
func (g *Group) fixedBaseExp(x []byte) *big.Int {
	g.baseOnce.Do(g.buildBaseTable)
	r := big.NewInt(1)
	for i := range g.baseTable {
		nibble := x[len(x)-1-i/2] >> (4 * (i % 2)) & 0x0f
		if nibble != 0 {
			r.Mul(r, g.baseTable[i][nibble-1])
			r.Mod(r, g.p)
		}
	}
	return r
}

func (g *Group) buildBaseTable() {
	mulMod := func(a, b *big.Int) *big.Int {
		r := new(big.Int).Mul(a, b)
		return r.Mod(r, g.p)
	}
	g.baseTable = make([][]*big.Int, g.expBits/4)
	base := g.g // g^(16^i)
	for i := range g.baseTable {
		row := make([]*big.Int, 15)
		row[0] = base
		for j := 1; j < len(row); j++ {
			row[j] = mulMod(row[j-1], base)
		}
		g.baseTable[i] = row
		base = mulMod(row[len(row)-1], base)
	}
}

func (g *Group) generateEC(rand io.Reader) (*PrivateKey, error) {
	if g.id == isakmp.GroupCurve25519 {
		var k [32]byte
		if _, err := io.ReadFull(rand, k[:]); err != nil {
			return nil, fmt.Errorf("keymat: reading randomness: %w", err)
		}
		return &PrivateKey{group: g, x25519: &k, public: x25519Public(&k)}, nil
	}
	// crypto/ecdh ignores the reader passed to GenerateKey (Go 1.26), so draw
	// the scalar ourselves and let NewPrivateKey reject values out of range.
	buf := make([]byte, g.secretSize)
	for range maxKeyTries {
		if _, err := io.ReadFull(rand, buf); err != nil {
			return nil, fmt.Errorf("keymat: reading randomness: %w", err)
		}
		if g.id == isakmp.GroupECP521 {
			buf[0] &= 0x01 // a P-521 scalar has 521 bits
		}
		k, err := g.curve.NewPrivateKey(buf)
		if err != nil {
			continue
		}
		clear(buf) // crypto/ecdh keeps its own copy of the scalar
		// Drop the SEC 1 uncompressed-point prefix 0x04.
		return &PrivateKey{group: g, ec: k, public: k.PublicKey().Bytes()[1:]}, nil
	}
	return nil, errors.New("keymat: random source keeps producing unusable scalars")
}

// Group returns the key's group.
func (k *PrivateKey) Group() *Group { return k.group }

// Public returns the public value to send in the KE payload.
func (k *PrivateKey) Public() []byte { return append([]byte(nil), k.public...) }

// Zero wipes the private value once the key has served its exchange, so
// that it does not sit in memory for the life of whatever holds the key.
// The group and the public value stay; SharedSecret fails from then on. An EC
// scalar lives inside crypto/ecdh, which offers no way to wipe it: Zero drops
// the reference, and the bytes it was made from were wiped when the key was
// generated.
func (k *PrivateKey) Zero() {
	if k.x != nil {
		clear(k.x.Bits()) // Bits shares the integer's words
		k.x = nil
	}
	k.ec = nil
	if k.x25519 != nil {
		clear(k.x25519[:])
		k.x25519 = nil
	}
}

// SharedSecret validates the peer's public value and returns g^xy in the
// group's wire form. A MODP value must have the prime's length and satisfy
// 1 < y < p-1; an ECP value must be a point on the curve; a Curve25519 value
// must not produce the all-zero secret (RFC 8031 §2.1).
func (k *PrivateKey) SharedSecret(peer []byte) ([]byte, error) {
	g := k.group
	if k.x == nil && k.ec == nil && k.x25519 == nil {
		return nil, errors.New("keymat: the private key was zeroed")
	}
	if len(peer) != g.size {
		return nil, fmt.Errorf("%w: %d bytes for %s, want %d", ErrInvalidPublicValue, len(peer), g.name, g.size)
	}
	if g.curve == nil {
		y := new(big.Int).SetBytes(peer)
		if y.Cmp(big.NewInt(1)) <= 0 || y.Cmp(g.pMinus1) >= 0 {
			return nil, fmt.Errorf("%w: %s value out of range", ErrInvalidPublicValue, g.name)
		}
		return new(big.Int).Exp(y, k.x, g.p).FillBytes(make([]byte, g.size)), nil
	}
	if k.x25519 != nil {
		return x25519(k.x25519, peer)
	}
	pub, err := g.curve.NewPublicKey(append([]byte{4}, peer...))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidPublicValue, err)
	}
	secret, err := k.ec.ECDH(pub)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidPublicValue, err)
	}
	return secret, nil
}

package keymat

import (
	"bytes"
	"crypto/rand"
	"errors"
	"math/big"
	mrand "math/rand/v2"
	"testing"

	"github.com/ipseclab/ipseclab/ipsec/isakmp"
)

var allGroups = []isakmp.GroupDescription{
	isakmp.GroupMODP768, isakmp.GroupMODP1024, isakmp.GroupMODP1536, isakmp.GroupMODP2048,
	isakmp.GroupMODP3072, isakmp.GroupMODP4096, isakmp.GroupMODP6144, isakmp.GroupMODP8192,
	isakmp.GroupECP256, isakmp.GroupECP384, isakmp.GroupECP521, isakmp.GroupCurve25519,
}

func seeded(seed uint64) *mrand.ChaCha8 {
	var s [32]byte
	s[0] = byte(seed)
	return mrand.NewChaCha8(s)
}

func mustGroup(t testing.TB, id isakmp.GroupDescription) *Group {
	t.Helper()
	g, err := LookupGroup(id)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func TestEveryGroupAgrees(t *testing.T) {
	sizes := map[isakmp.GroupDescription][2]int{
		isakmp.GroupMODP768: {96, 96}, isakmp.GroupMODP1024: {128, 128}, isakmp.GroupMODP1536: {192, 192},
		isakmp.GroupMODP2048: {256, 256}, isakmp.GroupMODP3072: {384, 384}, isakmp.GroupMODP4096: {512, 512},
		isakmp.GroupMODP6144: {768, 768}, isakmp.GroupMODP8192: {1024, 1024},
		isakmp.GroupECP256: {64, 32}, isakmp.GroupECP384: {96, 48}, isakmp.GroupECP521: {132, 66},
		isakmp.GroupCurve25519: {32, 32},
	}
	for _, id := range allGroups {
		g := mustGroup(t, id)
		t.Run(g.String(), func(t *testing.T) {
			if g.ID() != id || g.PublicSize() != sizes[id][0] || g.SecretSize() != sizes[id][1] {
				t.Fatalf("sizes %d/%d, want %v", g.PublicSize(), g.SecretSize(), sizes[id])
			}
			for round := uint64(0); round < 3; round++ {
				a, err := g.GenerateKey(seeded(2 * round))
				if err != nil {
					t.Fatal(err)
				}
				b, err := g.GenerateKey(seeded(2*round + 1))
				if err != nil {
					t.Fatal(err)
				}
				if len(a.Public()) != g.PublicSize() || a.Group() != g {
					t.Fatalf("public value of %d bytes", len(a.Public()))
				}
				ab, err := a.SharedSecret(b.Public())
				if err != nil {
					t.Fatal(err)
				}
				ba, err := b.SharedSecret(a.Public())
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(ab, ba) || len(ab) != g.SecretSize() {
					t.Fatalf("secrets differ or have the wrong length (%d)", len(ab))
				}
			}
			// The same randomness gives the same key; other randomness another.
			x, _ := g.GenerateKey(seeded(9))
			y, _ := g.GenerateKey(seeded(9))
			z, _ := g.GenerateKey(rand.Reader)
			if !bytes.Equal(x.Public(), y.Public()) || bytes.Equal(x.Public(), z.Public()) {
				t.Errorf("key generation does not follow the injected randomness")
			}
		})
	}
}

// fixedReader returns its bytes, then zeros.
type fixedReader struct{ b []byte }

func (r *fixedReader) Read(p []byte) (int, error) {
	n := copy(p, r.b)
	r.b = r.b[n:]
	clear(p[n:])
	return len(p), nil
}

// TestRFC5903ECP256 is the test vector of RFC 5903 §8.1 (256-bit random ECP
// group): public values travel as x | y and g^ir is the x coordinate alone.
func TestRFC5903ECP256(t *testing.T) {
	g := mustGroup(t, isakmp.GroupECP256)
	i, err := g.GenerateKey(&fixedReader{unhex(t, "C88F01F510D9AC3F70A292DAA2316DE544E9AAB8AFE84049C62A9C57862D1433")})
	if err != nil {
		t.Fatal(err)
	}
	r, err := g.GenerateKey(&fixedReader{unhex(t, "C6EF9C5D78AE012A011164ACB397CE2088685D8F06BF9BE0B283AB46476BEE53")})
	if err != nil {
		t.Fatal(err)
	}
	gi := unhex(t, "DAD0B65394221CF9B051E1FECA5787D098DFE637FC90B9EF945D0C3772581180 5271A0461CDB8252D61F1C456FA3E59AB1F45B33ACCF5F58389E0577B8990BB3")
	gr := unhex(t, "D12DFB5289C8D4F81208B70270398C342296970A0BCCB74C736FC7554494BF63 56FBF3CA366CC23E8157854C13C58D6AAC23F046ADA30F8353E74F33039872AB")
	if !bytes.Equal(i.Public(), gi) || !bytes.Equal(r.Public(), gr) {
		t.Fatalf("public values\n %x\n %x", i.Public(), r.Public())
	}
	gir := unhex(t, "D6840F6B42F6EDAFD13116E0E12565202FEF8E9ECE7DCE03812464D04B9442DE")
	for _, c := range []struct {
		k    *PrivateKey
		peer []byte
	}{{i, gr}, {r, gi}} {
		s, err := c.k.SharedSecret(c.peer)
		if err != nil || !bytes.Equal(s, gir) {
			t.Errorf("g^ir = %x, %v", s, err)
		}
	}
}

// TestRFC7748X25519 is the Diffie-Hellman example of RFC 7748 §6.1, which RFC
// 8031 §2 uses unchanged for group 31.
func TestRFC7748X25519(t *testing.T) {
	g := mustGroup(t, isakmp.GroupCurve25519)
	alice, err := g.GenerateKey(&fixedReader{unhex(t, "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(alice.Public(), unhex(t, "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")) {
		t.Fatalf("Alice's public key %x", alice.Public())
	}
	s, err := alice.SharedSecret(unhex(t, "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"))
	if err != nil || !bytes.Equal(s, unhex(t, "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742")) {
		t.Errorf("shared secret %x, %v", s, err)
	}
}

func TestInvalidPeerValues(t *testing.T) {
	modp := mustGroup(t, isakmp.GroupMODP2048)
	mk, _ := modp.GenerateKey(seeded(1))
	pad := func(v *big.Int) []byte { return v.FillBytes(make([]byte, modp.PublicSize())) }
	ecp := mustGroup(t, isakmp.GroupECP256)
	ek, _ := ecp.GenerateKey(seeded(2))
	offCurve := ek.Public()
	offCurve[63] ^= 1
	x := mustGroup(t, isakmp.GroupCurve25519)
	xk, _ := x.GenerateKey(seeded(3))
	cases := []struct {
		name string
		k    *PrivateKey
		peer []byte
	}{
		{"MODP 0", mk, pad(big.NewInt(0))},
		{"MODP 1", mk, pad(big.NewInt(1))},
		{"MODP p-1", mk, pad(modp.pMinus1)},
		{"MODP p", mk, pad(modp.p)},
		{"MODP all ones", mk, bytes.Repeat([]byte{0xff}, modp.PublicSize())},
		{"MODP value not padded", mk, mk.Public()[1:]},
		{"MODP value with an extra byte", mk, append([]byte{0}, mk.Public()...)},
		{"ECP point off the curve", ek, offCurve},
		{"ECP point at infinity (all zero)", ek, make([]byte, 64)},
		{"ECP with the SEC 1 prefix", ek, append([]byte{4}, ek.Public()...)},
		{"X25519 all-zero u (low order, zero secret)", xk, make([]byte, 32)},
		{"X25519 u = 1 (low order)", xk, append([]byte{1}, make([]byte, 31)...)},
		{"X25519 of 31 bytes", xk, make([]byte, 31)},
	}
	for _, c := range cases {
		if _, err := c.k.SharedSecret(c.peer); !errors.Is(err, ErrInvalidPublicValue) {
			t.Errorf("%s: %v", c.name, err)
		}
	}
	if _, err := LookupGroup(isakmp.GroupEC2N155); !errors.Is(err, ErrUnsupported) {
		t.Errorf("EC2N group: %v", err)
	}
}

func TestBrokenRandomSource(t *testing.T) {
	// All-zero randomness is an invalid scalar or exponent for every group
	// but X25519 (whose clamping makes any string a key).
	for _, id := range []isakmp.GroupDescription{isakmp.GroupMODP2048, isakmp.GroupECP256, isakmp.GroupECP521} {
		if _, err := mustGroup(t, id).GenerateKey(&fixedReader{}); err == nil {
			t.Errorf("%s: key from all-zero randomness", id)
		}
	}
	if _, err := mustGroup(t, isakmp.GroupMODP2048).GenerateKey(bytes.NewReader(nil)); err == nil {
		t.Errorf("key from an empty reader")
	}
}

// TestMODPPrimesFollowTheRFCFormula recomputes every MODP prime from pi, the
// way RFC 2409 §6 and RFC 3526 define them, so that a mistyped digit cannot
// hide in modp_primes.go.
func TestMODPPrimesFollowTheRFCFormula(t *testing.T) {
	ks := map[isakmp.GroupDescription]int64{
		isakmp.GroupMODP768: 149686, isakmp.GroupMODP1024: 129093, isakmp.GroupMODP1536: 741804,
		isakmp.GroupMODP2048: 124476, isakmp.GroupMODP3072: 1690314, isakmp.GroupMODP4096: 240904,
		isakmp.GroupMODP6144: 929484, isakmp.GroupMODP8192: 4743158,
	}
	for id, k := range ks {
		g := mustGroup(t, id)
		n := uint(g.p.BitLen())
		// p = 2^n - 2^(n-64) - 1 + 2^64 * (floor(2^(n-130) * pi) + k)
		want := new(big.Int).Lsh(big.NewInt(1), n)
		want.Sub(want, new(big.Int).Lsh(big.NewInt(1), n-64))
		want.Sub(want, big.NewInt(1))
		term := new(big.Int).Add(piTimesPowerOfTwo(n-130), big.NewInt(k))
		want.Add(want, term.Lsh(term, 64))
		if want.Cmp(g.p) != 0 {
			t.Errorf("%s: prime differs from the RFC formula", g)
		}
		if g.g.Int64() != 2 {
			t.Errorf("%s: generator %v", g, g.g)
		}
	}
}

// piTimesPowerOfTwo returns floor(pi * 2^bits), from Machin's formula
// pi = 16 arctan(1/5) - 4 arctan(1/239) in fixed point with guard bits.
func piTimesPowerOfTwo(bits uint) *big.Int {
	const guard = 64
	prec := bits + guard
	arctanInv := func(x int64) *big.Int {
		one := new(big.Int).Lsh(big.NewInt(1), prec)
		x2 := big.NewInt(x * x)
		term := new(big.Int).Div(one, big.NewInt(x))
		sum := new(big.Int).Set(term)
		for n, sign := int64(3), -1; term.Sign() != 0; n, sign = n+2, -sign {
			term.Div(term, x2)
			t := new(big.Int).Div(term, big.NewInt(n))
			if sign < 0 {
				sum.Sub(sum, t)
			} else {
				sum.Add(sum, t)
			}
		}
		return sum
	}
	pi := new(big.Int).Mul(arctanInv(5), big.NewInt(16))
	pi.Sub(pi, new(big.Int).Mul(arctanInv(239), big.NewInt(4)))
	return pi.Rsh(pi, guard)
}

// BenchmarkDH measures one side's Diffie-Hellman work in a negotiation: a key
// pair, then the shared secret with the peer's public value.
func BenchmarkDH(b *testing.B) {
	for _, id := range allGroups {
		g := mustGroup(b, id)
		peer, err := g.GenerateKey(rand.Reader)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(g.String(), func(b *testing.B) {
			for b.Loop() {
				k, err := g.GenerateKey(rand.Reader)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := k.SharedSecret(peer.Public()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestFixedBaseExponentiation compares the precomputed-table exponentiation
// key generation uses with big.Int.Exp.
func TestFixedBaseExponentiation(t *testing.T) {
	for _, id := range []isakmp.GroupDescription{isakmp.GroupMODP768, isakmp.GroupMODP2048, isakmp.GroupMODP4096} {
		g := mustGroup(t, id)
		r := seeded(uint64(id))
		xs := [][]byte{bytes.Repeat([]byte{0xff}, g.expBits/8), append(make([]byte, g.expBits/8-1), 2)}
		for range 5 {
			x := make([]byte, g.expBits/8)
			r.Read(x)
			xs = append(xs, x)
		}
		for _, x := range xs {
			want := new(big.Int).Exp(g.g, new(big.Int).SetBytes(x), g.p)
			if got := g.fixedBaseExp(x); got.Cmp(want) != 0 {
				t.Fatalf("%s: 2^%x differs", g, x)
			}
		}
	}
}

// TestZeroWipesThePrivateValue: after Zero, the words of a MODP exponent read
// zero through a reference taken before, no group computes a shared secret
// with the key any more, and its public value and group are still there.
func TestZeroWipesThePrivateValue(t *testing.T) {
	for _, id := range []isakmp.GroupDescription{isakmp.GroupMODP2048, isakmp.GroupECP256, isakmp.GroupCurve25519} {
		g := mustGroup(t, id)
		t.Run(g.String(), func(t *testing.T) {
			k, err := g.GenerateKey(seeded(1))
			if err != nil {
				t.Fatal(err)
			}
			peer, _ := g.GenerateKey(seeded(2))
			var words []big.Word
			if k.x != nil {
				words = k.x.Bits()
			}
			public := k.Public()
			k.Zero()
			for i, w := range words {
				if w != 0 {
					t.Fatalf("word %d of the exponent survived Zero", i)
				}
			}
			if k.x != nil || k.ec != nil {
				t.Error("the key still holds its private value")
			}
			if _, err := k.SharedSecret(peer.Public()); err == nil {
				t.Error("a zeroed key computed a shared secret")
			}
			if !bytes.Equal(k.Public(), public) || k.Group() != g {
				t.Error("Zero changed the public value or the group")
			}
			k.Zero() // twice is harmless
		})
	}
}

package keymat

import (
	"bytes"
	"crypto/ecdh"
	"testing"

	"github.com/ipseclab/ipseclab/ipsec/isakmp"
)

// TestX25519AgreesWithCryptoECDH: for random scalars, and for scalars and
// u-coordinates with the bits clamping and §5's decoding ignore set, the
// fixed-base public value and the ladder give crypto/ecdh's answers.
func TestX25519AgreesWithCryptoECDH(t *testing.T) {
	r := seeded(25519)
	curve := ecdh.X25519()
	for i := range 200 {
		var a, b [32]byte
		r.Read(a[:])
		r.Read(b[:])
		if i == 0 {
			a, b = [32]byte{}, [32]byte{} // clamping makes these valid
			for j := range b {
				b[j] = 0xff
			}
		}
		ka, _ := curve.NewPrivateKey(a[:])
		kb, _ := curve.NewPrivateKey(b[:])
		if got := x25519Public(&a); !bytes.Equal(got, ka.PublicKey().Bytes()) {
			t.Fatalf("public value of %x: %x, crypto/ecdh says %x", a, got, ka.PublicKey().Bytes())
		}
		u := kb.PublicKey().Bytes()
		want, _ := ka.ECDH(kb.PublicKey())
		if got, err := x25519(&a, u); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("X25519(%x, %x) = %x, %v; crypto/ecdh says %x", a, u, got, err, want)
		}
		// §5: the top bit of u is ignored.
		u[31] |= 0x80
		if got, err := x25519(&a, u); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("with the top bit of u set: %x, %v; want %x", got, err, want)
		}
	}
}

// TestRFC7748IteratedX25519 is the iterated test of RFC 7748 §5.2, to 1,000.
func TestRFC7748IteratedX25519(t *testing.T) {
	k := [32]byte{9}
	u := [32]byte{9}
	for i := 1; i <= 1000; i++ {
		out, err := x25519(&k, u[:])
		if err != nil {
			t.Fatal(err)
		}
		u, k = k, [32]byte(out)
		switch i {
		case 1:
			if want := "422c8e7a6227d7bca1350b3e2bb7279f7897b87bb6854b783c60e80311ae3079"; !bytes.Equal(k[:], unhex(t, want)) {
				t.Fatalf("after 1 iteration: %x", k)
			}
		case 1000:
			if want := "684cf59ba83309552800ef566f2f4d3c1c3887c49360e3875f2eb94d99532c51"; !bytes.Equal(k[:], unhex(t, want)) {
				t.Fatalf("after 1,000 iterations: %x", k)
			}
		}
	}
}

// TestZeroWipesTheX25519Scalar: Zero clears the scalar itself.
func TestZeroWipesTheX25519Scalar(t *testing.T) {
	k, err := mustGroup(t, isakmp.GroupCurve25519).GenerateKey(seeded(7))
	if err != nil {
		t.Fatal(err)
	}
	scalar := k.x25519
	k.Zero()
	if *scalar != [32]byte{} {
		t.Fatal("the scalar survived Zero")
	}
	if _, err := k.SharedSecret(k.Public()); err == nil {
		t.Fatal("a zeroed key computed a shared secret")
	}
}

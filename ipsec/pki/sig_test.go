package pki

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/ipseclab/ipseclab/internal/testenv"
	"github.com/ipseclab/ipseclab/ipsec/isakmp"
)

// signerOnly hides the concrete key type, as a hardware key would: Sign
// must work through the crypto.Signer interface alone.
type signerOnly struct{ crypto.Signer }

func TestSignVerify(t *testing.T) {
	// HASH_I is the negotiated PRF's output: 16 (MD5), 20 (SHA-1) or up to
	// 64 bytes (SHA2-512).
	hashes := map[string][]byte{"SHA-1 size": make([]byte, 20), "SHA-512 size": make([]byte, 64)}
	for _, h := range hashes {
		rand.Read(h)
	}
	for _, tc := range []struct {
		name   string
		key    crypto.Signer
		sigLen int
		method isakmp.AuthMethod
	}{
		{"RSA-2048", rsaKey(), 256, isakmp.AuthMethodRSASig},
		{"RSA-2048 behind crypto.Signer", signerOnly{rsaKey()}, 256, isakmp.AuthMethodRSASig},
		{"ECDSA P-256", ecKey(t, elliptic.P256()), 64, isakmp.AuthMethodECDSAP256},
		{"ECDSA P-384", ecKey(t, elliptic.P384()), 96, isakmp.AuthMethodECDSAP384},
		{"ECDSA P-521", ecKey(t, elliptic.P521()), 132, isakmp.AuthMethodECDSAP521},
		{"ECDSA P-256 behind crypto.Signer", signerOnly{ecKey(t, elliptic.P256())}, 64, isakmp.AuthMethodECDSAP256},
	} {
		for hname, hash := range hashes {
			t.Run(tc.name+"/"+hname, func(t *testing.T) {
				if m, err := AuthMethodOf(tc.key.Public()); err != nil || m != tc.method {
					t.Errorf("AuthMethodOf = %v, %v; want %v", m, err, tc.method)
				}
				sig, err := Sign(tc.key, hash, rand.Reader)
				if err != nil {
					t.Fatal(err)
				}
				if len(sig) != tc.sigLen {
					t.Fatalf("signature of %d bytes, want %d", len(sig), tc.sigLen)
				}
				pub := tc.key.Public()
				if err := Verify(pub, hash, sig); err != nil {
					t.Fatalf("Verify of our own signature: %v", err)
				}
				for _, bit := range []int{0, 7, len(sig)*8/2 + 3, len(sig)*8 - 1} {
					bad := bytes.Clone(sig)
					bad[bit/8] ^= 1 << (bit % 8)
					if err := Verify(pub, hash, bad); !errors.Is(err, ErrBadSignature) {
						t.Errorf("signature with bit %d flipped: %v, want ErrBadSignature", bit, err)
					}
				}
				// The first byte: ECDSA reads only the leftmost bits of a digest
				// longer than the curve (the engine's never is).
				badHash := bytes.Clone(hash)
				badHash[0] ^= 0x80
				if err := Verify(pub, badHash, sig); !errors.Is(err, ErrBadSignature) {
					t.Errorf("other hash: %v, want ErrBadSignature", err)
				}
				for _, n := range []int{len(sig) - 1, len(sig) + 1, 0} {
					wrong := make([]byte, n)
					copy(wrong, sig)
					if err := Verify(pub, hash, wrong); !errors.Is(err, ErrBadSignature) {
						t.Errorf("signature of %d bytes: %v, want ErrBadSignature", n, err)
					}
				}
			})
		}
	}
}

// The ECDSA format checked with the standard library directly: r and s are
// the two fixed-width halves (RFC 4754 §7), over the hash itself, which the
// engine computed with the curve's HMAC (charon's ECDSA_WITH_NULL).
func TestECDSAFormatIndependently(t *testing.T) {
	hash := sha1.Sum([]byte("HASH_I"))
	for _, tc := range []struct {
		curve  elliptic.Curve
		digest func([]byte) []byte
	}{
		{elliptic.P256(), func(b []byte) []byte { d := sha256.Sum256(b); return d[:] }},
		{elliptic.P384(), func(b []byte) []byte { d := sha512.Sum384(b); return d[:] }},
		{elliptic.P521(), func(b []byte) []byte { d := sha512.Sum512(b); return d[:] }},
	} {
		key := ecKey(t, tc.curve)
		sig, err := Sign(key, hash[:], rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		size := (tc.curve.Params().BitSize + 7) / 8
		if len(sig) != 2*size {
			t.Fatalf("%s: %d bytes, want %d", tc.curve.Params().Name, len(sig), 2*size)
		}
		r, s := new(big.Int).SetBytes(sig[:size]), new(big.Int).SetBytes(sig[size:])
		if !ecdsa.Verify(&key.PublicKey, hash[:], r, s) {
			t.Errorf("%s: r|s does not verify over the hash itself", tc.curve.Params().Name)
		}
		if ecdsa.Verify(&key.PublicKey, tc.digest(hash[:]), r, s) {
			t.Errorf("%s: r|s verifies over SHA-2(hash); charon signs the hash as it is", tc.curve.Params().Name)
		}
	}
}

// RFC 4754 §8.1's test vector: the signature of "abc" with ECDSA-256, whose
// SHA-256 is what is signed. Verify must accept it as published, r then s.
func TestVerifyRFC4754Vector(t *testing.T) {
	unhex := func(s string) []byte {
		b, err := hex.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	pub := &ecdsa.PublicKey{
		Curve: elliptic.P256(),
		X:     new(big.Int).SetBytes(unhex("2442A5CC0ECD015FA3CA31DC8E2BBC70BF42D60CBCA20085E0822CB04235E970")),
		Y:     new(big.Int).SetBytes(unhex("6FC98BD7E50211A4A27102FA3549DF79EBCB4BF246B80945CDDFE7D509BBFD7D")),
	}
	sig := unhex("CB28E0999B9C7715FD0A80D8E47A77079716CBBF917DD72E97566EA1C066957C" +
		"86FA3BB4E26CAD5BF90B7F81899256CE7594BB1EA0C89212748BFF3B3D5B0315")
	abc := sha256.Sum256([]byte("abc")) // the vector's message digest: Verify takes the digest
	if err := Verify(pub, abc[:], sig); err != nil {
		t.Fatalf("RFC 4754 §8.1 vector: %v", err)
	}
	sig[0] ^= 1
	if err := Verify(pub, abc[:], sig); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("damaged vector: %v", err)
	}
}

// The RSA format checked independently: s^e mod n, by math/big, must be
// EMSA-PKCS1-v1_5 with the hash itself as T, 00 01 FF..FF 00 || HASH, with
// no DigestInfo in front (strongSwan's IKEv1 signature).
func TestRSASignatureFormat(t *testing.T) {
	key := rsaKey()
	for _, n := range []int{16, 20, 32, 64} {
		hash := make([]byte, n)
		rand.Read(hash)
		sig, err := Sign(key, hash, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		k := key.PublicKey.Size()
		if len(sig) != k {
			t.Fatalf("signature of %d bytes, want %d", len(sig), k)
		}
		m := new(big.Int).Exp(new(big.Int).SetBytes(sig), big.NewInt(int64(key.PublicKey.E)), key.PublicKey.N)
		em := m.FillBytes(make([]byte, k))
		want := append([]byte{0x00, 0x01}, bytes.Repeat([]byte{0xff}, k-3-n)...)
		want = append(append(want, 0x00), hash...)
		if !bytes.Equal(em, want) {
			t.Fatalf("hash of %d bytes: s^e mod n =\n%x\nwant\n%x", n, em, want)
		}
	}
}

// openssl's `pkeyutl -sign` without -digest makes the same raw PKCS#1
// signature; RSA PKCS#1 v1.5 is deterministic, so the bytes must be equal.
func TestRSASignatureMatchesOpenSSL(t *testing.T) {
	openssl := testenv.NeedCommand(t, "openssl")
	dir := t.TempDir()
	keyPEM, err := EncodePrivateKeyPEM(rsaKey())
	if err != nil {
		t.Fatal(err)
	}
	hash := sha1.Sum([]byte("HASH_R"))
	keyPath, inPath, outPath := filepath.Join(dir, "k.pem"), filepath.Join(dir, "in"), filepath.Join(dir, "sig")
	os.WriteFile(keyPath, keyPEM, 0o600)
	os.WriteFile(inPath, hash[:], 0o600)
	out, err := exec.Command(openssl, "pkeyutl", "-sign", "-inkey", keyPath, "-in", inPath, "-out", outPath).CombinedOutput()
	if err != nil {
		t.Fatalf("openssl pkeyutl: %v\n%s", err, out)
	}
	want, err := os.ReadFile(outPath)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Sign(rsaKey(), hash[:], rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("Sign differs from openssl pkeyutl -sign:\n%x\n%x", got, want)
	}
	if err := Verify(&rsaKey().PublicKey, hash[:], want); err != nil {
		t.Fatalf("Verify of openssl's signature: %v", err)
	}
}

func TestSignVerifyErrors(t *testing.T) {
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	if _, err := Sign(ed, []byte{1}, rand.Reader); err == nil {
		t.Error("Sign with Ed25519 succeeded")
	}
	if _, err := Sign(rsaKey(), nil, rand.Reader); err == nil {
		t.Error("Sign of an empty hash succeeded")
	}
	// An RSA-2048 signature holds at most 245 bytes of hash.
	if _, err := Sign(rsaKey(), make([]byte, 246), rand.Reader); err == nil {
		t.Error("Sign of a 246-byte hash with RSA-2048 succeeded")
	}
	if err := Verify(ed.Public(), []byte{1}, make([]byte, 64)); err == nil || errors.Is(err, ErrBadSignature) {
		t.Errorf("Verify with Ed25519: %v, want an unsupported-key error", err)
	}
	p224 := ecKey(t, elliptic.P224())
	if _, err := Sign(p224, []byte{1}, rand.Reader); err == nil {
		t.Error("Sign with P-224 succeeded")
	}
	if _, err := AuthMethodOf(p224.Public()); err == nil {
		t.Error("AuthMethodOf(P-224) succeeded")
	}
	if _, err := AuthMethodOf(ed.Public()); err == nil {
		t.Error("AuthMethodOf(Ed25519) succeeded")
	}
	if m, err := AuthMethodOf(rsaKey()); err != nil || m != isakmp.AuthMethodRSASig {
		t.Errorf("AuthMethodOf(private key) = %v, %v", m, err)
	}
}

package pki

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseKeyType(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    KeyType
		wantErr bool
	}{
		{"", RSA2048, false},
		{"rsa-2048", RSA2048, false},
		{"rsa-3072", RSA3072, false},
		{"ecdsa-p256", ECDSAP256, false},
		{"ecdsa-p384", ECDSAP384, false},
		{"ecdsa-p521", ECDSAP521, false},
		{"ecdsa-p224", "", true},
		{"RSA-2048", "", true},
		{"rsa", "", true},
	} {
		got, err := ParseKeyType(tc.in)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("ParseKeyType(%q) = %q, %v; want %q, error %v", tc.in, got, err, tc.want, tc.wantErr)
		}
		if err != nil {
			for _, name := range KeyTypes {
				if !strings.Contains(err.Error(), string(name)) {
					t.Errorf("ParseKeyType(%q) error %q does not list %s", tc.in, err, name)
				}
			}
		}
	}
}

func TestGenerateKey(t *testing.T) {
	for _, tc := range []struct {
		t      KeyType
		desc   string
		method string
	}{
		{RSA2048, "RSA-2048", "RSA-SIG"},
		{RSA3072, "RSA-3072", "RSA-SIG"},
		{ECDSAP256, "ECDSA P-256", "ECDSA with SHA-256 on the P-256 curve"},
		{ECDSAP384, "ECDSA P-384", "ECDSA with SHA-384 on the P-384 curve"},
	} {
		t.Run(string(tc.t), func(t *testing.T) {
			// RSA-3072 generation takes from 0.2 to several seconds on a
			// busy machine.
			if tc.t == RSA3072 && testing.Short() {
				t.Skip("RSA-3072 key generation is slow; skipped in -short mode")
			}
			k, err := GenerateKey(tc.t, rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			if got := DescribeKey(k.Public()); got != tc.desc {
				t.Errorf("key is %s, want %s", got, tc.desc)
			}
			m, err := AuthMethodOf(k.Public())
			if err != nil || m.String() != tc.method {
				t.Errorf("AuthMethodOf = %v, %v; want %s", m, err, tc.method)
			}
		})
	}
	if _, err := GenerateKey("dsa-1024", rand.Reader); err == nil {
		t.Error("GenerateKey(dsa-1024) succeeded")
	}
}

// keyEncodings writes a key in every encoding ParsePrivateKey accepts.
func keyEncodings(t *testing.T, k crypto.Signer) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	p8, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	out["PKCS#8 DER"] = p8
	out["PKCS#8 PEM"] = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8})
	switch k := k.(type) {
	case *rsa.PrivateKey:
		p1 := x509.MarshalPKCS1PrivateKey(k)
		out["PKCS#1 DER"] = p1
		out["PKCS#1 PEM"] = pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: p1})
	case *ecdsa.PrivateKey:
		sec1, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		out["SEC1 DER"] = sec1
		out["SEC1 PEM"] = pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1})
		// As `openssl ecparam -genkey` writes it: parameters first.
		params := pem.EncodeToMemory(&pem.Block{Type: "EC PARAMETERS", Bytes: []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07}})
		out["SEC1 PEM after EC PARAMETERS"] = append(params, out["SEC1 PEM"]...)
	}
	return out
}

func TestPrivateKeyRoundTrip(t *testing.T) {
	keys := map[string]crypto.Signer{
		"RSA-2048":    rsaKey(),
		"ECDSA P-256": ecKey(t, elliptic.P256()),
		"ECDSA P-384": ecKey(t, elliptic.P384()),
		"ECDSA P-521": ecKey(t, elliptic.P521()),
	}
	for kname, k := range keys {
		for ename, data := range keyEncodings(t, k) {
			t.Run(kname+"/"+ename, func(t *testing.T) {
				got, err := ParsePrivateKey(data)
				if err != nil {
					t.Fatal(err)
				}
				if !got.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(k.Public()) {
					t.Fatal("parsed key differs from the original")
				}
			})
		}
		t.Run(kname+"/EncodePrivateKeyPEM", func(t *testing.T) {
			data, err := EncodePrivateKeyPEM(k)
			if err != nil {
				t.Fatal(err)
			}
			if b, _ := pem.Decode(data); b == nil || b.Type != "PRIVATE KEY" {
				t.Fatalf("EncodePrivateKeyPEM wrote %q, want a PKCS#8 PRIVATE KEY block", data)
			}
			got, err := ParsePrivateKey(data)
			if err != nil {
				t.Fatal(err)
			}
			if err := sameKey(got, k); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// sameKey compares two private keys through their public halves.
func sameKey(a, b crypto.Signer) error {
	if !a.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(b.Public()) {
		return errors.New("keys differ")
	}
	return nil
}

func TestParsePrivateKeyErrors(t *testing.T) {
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	edDER, err := x509.MarshalPKCS8PrivateKey(edKey)
	if err != nil {
		t.Fatal(err)
	}
	ca := testCA(t, "CA")
	for _, tc := range []struct {
		name, data, want string
	}{
		{"empty", "", "neither PEM nor"},
		{"garbage DER", "\x30\x03\x02\x01\x00", "neither PEM nor"},
		{"text", "hello", "neither PEM nor"},
		{"certificate only", string(EncodeCertificatePEM(ca.Cert)), "no private key in the file (it holds CERTIFICATE)"},
		{"encrypted PKCS#8", string(pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte{1}})), "encrypted"},
		{"encrypted legacy", string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Headers: map[string]string{"Proc-Type": "4,ENCRYPTED"}, Bytes: []byte{1}})), "encrypted"},
		{"corrupt PEM key", string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: []byte{1, 2, 3}})), "EC PRIVATE KEY"},
		{"Ed25519 PEM", string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: edDER})), "no IKEv1 authentication method"},
		{"Ed25519 DER", string(edDER), "no IKEv1 authentication method"},
		{"unterminated PEM", "-----BEGIN PRIVATE KEY-----\nAAAA\n", "no PEM block"},
		{"EC PARAMETERS alone", string(pem.EncodeToMemory(&pem.Block{Type: "EC PARAMETERS", Bytes: []byte{6, 0}})), "it holds EC PARAMETERS"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParsePrivateKey([]byte(tc.data))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ParsePrivateKey: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestLoadPrivateKeyNamesTheFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "bad.key")
	if err := os.WriteFile(path, []byte("junk"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadPrivateKey(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("LoadPrivateKey: %v, want an error naming %s", err, path)
	}
	if _, err := LoadPrivateKey(filepath.Join(dir, "missing.key")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("LoadPrivateKey of a missing file: %v, want ErrNotExist", err)
	}
}

func TestKeyMatches(t *testing.T) {
	ca := testCA(t, "CA")
	rsaCred, err := ca.Issue(IssueRequest{KeyType: RSA2048, NotBefore: testNow, NotAfter: testNow.Add(time.Hour)}, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecOther := ecKey(t, elliptic.P256())
	for _, tc := range []struct {
		name  string
		cert  *x509.Certificate
		key   crypto.Signer
		match bool
	}{
		{"CA and its key", ca.Cert, ca.Key, true},
		{"RSA leaf and its key", rsaCred.Leaf(), rsaCred.Key, true},
		{"ECDSA cert, other ECDSA key", ca.Cert, ecOther, false},
		{"ECDSA cert, RSA key", ca.Cert, rsaCred.Key, false},
		{"RSA cert, other RSA key", rsaCred.Leaf(), rsaKey2(), false},
		{"RSA cert, ECDSA key", rsaCred.Leaf(), ca.Key, false},
		{"no key", ca.Cert, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := KeyMatches(tc.cert, tc.key)
			if tc.match != (err == nil) {
				t.Fatalf("KeyMatches = %v, want match %v", err, tc.match)
			}
			if err != nil && !errors.Is(err, ErrKeyMismatch) {
				t.Fatalf("KeyMatches error %v is not ErrKeyMismatch", err)
			}
		})
	}
	err = KeyMatches(ca.Cert, rsaCred.Key)
	if !strings.Contains(err.Error(), "RSA-2048") || !strings.Contains(err.Error(), "ECDSA P-256") || !strings.Contains(err.Error(), "CN=CA") {
		t.Errorf("KeyMatches message %q should name both keys and the certificate", err)
	}
}

func TestDescribeKey(t *testing.T) {
	if got := DescribeKey(bytes.NewReader(nil)); !strings.Contains(got, "Reader") {
		t.Errorf("DescribeKey of a non-key = %q", got)
	}
}

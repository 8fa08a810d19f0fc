package pki

import (
	"crypto/rand"
	"crypto/x509"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// testLab has three nodes; with RSA, one of them has an RSA key, which
// costs a key generation.
func testLab(t *testing.T, withRSA bool) *Lab {
	t.Helper()
	ca := testCA(t, "ipseclab lab demo CA")
	lab := &Lab{CA: ca, Nodes: map[string]*Credential{}}
	first := ECDSAP256
	if withRSA {
		first = RSA2048
	}
	for name, kt := range map[string]KeyType{"gw-a": first, "gw-b": ECDSAP256, "gw-c": ECDSAP384} {
		cred, err := ca.Issue(IssueRequest{RawSubject: mustDN(t, "CN="+name), DNSNames: []string{name + ".lab"},
			KeyType: kt, NotBefore: testNow, NotAfter: testNow.AddDate(1, 0, 0)}, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		lab.Nodes[name] = cred
	}
	return lab
}

func TestLabDirRoundTrip(t *testing.T) {
	lab := testLab(t, true)
	dir := filepath.Join(t.TempDir(), "state", "pki")
	if err := lab.WriteDir(dir); err != nil {
		t.Fatal(err)
	}

	wantModes := map[string]fs.FileMode{"ca.pem": 0o644, "ca.key": 0o600}
	for name := range lab.Nodes {
		wantModes[name+".pem"], wantModes[name+".key"] = 0o644, 0o600
	}
	st, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o700 {
		t.Errorf("%s has mode %o, want 700", dir, st.Mode().Perm())
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		want, ok := wantModes[e.Name()]
		if !ok {
			t.Errorf("unexpected file %s", e.Name())
			continue
		}
		if info.Mode().Perm() != want {
			t.Errorf("%s has mode %o, want %o", e.Name(), info.Mode().Perm(), want)
		}
	}
	if len(names) != len(wantModes) {
		sort.Strings(names)
		t.Errorf("files %v, want %d", names, len(wantModes))
	}

	back, err := ReadLabDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !back.CA.Cert.Equal(lab.CA.Cert) || KeyMatches(back.CA.Cert, back.CA.Key) != nil {
		t.Error("CA differs after the round trip")
	}
	if len(back.Nodes) != len(lab.Nodes) {
		t.Fatalf("%d nodes back, want %d", len(back.Nodes), len(lab.Nodes))
	}
	for name, cred := range lab.Nodes {
		got := back.Nodes[name]
		if got == nil || len(got.Chain) != len(cred.Chain) || !got.Leaf().Equal(cred.Leaf()) {
			t.Errorf("node %s: chain differs", name)
			continue
		}
		if err := sameKey(got.Key, cred.Key); err != nil {
			t.Errorf("node %s: %v", name, err)
		}
		if err := VerifyChain(got.Chain, []*x509.Certificate{back.CA.Cert}, testNow.Add(time.Hour), x509.KeyUsageDigitalSignature); err != nil {
			t.Errorf("node %s: %v", name, err)
		}
	}

	// Rewriting repairs a key file someone made readable.
	keyPath := filepath.Join(dir, "gw-a.key")
	if err := os.Chmod(keyPath, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := lab.WriteDir(dir); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(keyPath); st.Mode().Perm() != 0o600 {
		t.Errorf("rewritten key has mode %o", st.Mode().Perm())
	}
}

// An export (no CA key) reads back with a nil CA key.
func TestLabDirExport(t *testing.T) {
	lab := testLab(t, false)
	export := &Lab{CA: &CA{Cert: lab.CA.Cert}, Nodes: lab.Nodes}
	dir := t.TempDir()
	if err := export.WriteDir(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "ca.key")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("export wrote ca.key: %v", err)
	}
	back, err := ReadLabDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if back.CA.Key != nil || len(back.Nodes) != 3 {
		t.Errorf("export read back with CA key %v and %d nodes", back.CA.Key != nil, len(back.Nodes))
	}
}

func TestLabWriteDirErrors(t *testing.T) {
	lab := testLab(t, false)
	cred := lab.Nodes["gw-a"]
	for _, tc := range []struct {
		name string
		lab  *Lab
		want string
	}{
		{"no CA", &Lab{}, "no CA"},
		{"path in name", &Lab{CA: lab.CA, Nodes: map[string]*Credential{"../x": cred}}, "cannot name a file"},
		{"hidden name", &Lab{CA: lab.CA, Nodes: map[string]*Credential{".x": cred}}, "cannot name a file"},
		{"empty name", &Lab{CA: lab.CA, Nodes: map[string]*Credential{"": cred}}, "cannot name a file"},
		{"node named ca", &Lab{CA: lab.CA, Nodes: map[string]*Credential{"ca": cred}}, "collides"},
		{"node without key", &Lab{CA: lab.CA, Nodes: map[string]*Credential{"gw": {Chain: cred.Chain}}}, "no key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			err := tc.lab.WriteDir(dir)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("WriteDir: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestReadLabDirErrors(t *testing.T) {
	lab := testLab(t, false)
	for _, tc := range []struct {
		name  string
		spoil func(dir string)
		want  string
	}{
		{"no ca.pem", func(dir string) { os.Remove(filepath.Join(dir, "ca.pem")) }, "ca.pem"},
		{"node key missing", func(dir string) { os.Remove(filepath.Join(dir, "gw-b.key")) }, "node gw-b"},
		{"node key swapped", func(dir string) {
			os.Rename(filepath.Join(dir, "gw-a.key"), filepath.Join(dir, "gw-b.key"))
			os.Remove(filepath.Join(dir, "gw-a.pem"))
		}, "gw-b.key"},
		{"CA key swapped", func(dir string) {
			data, _ := os.ReadFile(filepath.Join(dir, "gw-b.key"))
			os.WriteFile(filepath.Join(dir, "ca.key"), data, 0o600)
		}, "ca.key"},
		{"corrupt cert", func(dir string) { os.WriteFile(filepath.Join(dir, "gw-c.pem"), []byte("x"), 0o644) }, "gw-c.pem"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := lab.WriteDir(dir); err != nil {
				t.Fatal(err)
			}
			tc.spoil(dir)
			_, err := ReadLabDir(dir)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ReadLabDir: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

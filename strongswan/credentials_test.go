package strongswan

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testCert makes a certificate for key, a CA's or an end entity's, signed by
// parent's key (self-signed when parent is nil).
func testCert(t *testing.T, cn string, key crypto.Signer, ca bool, parent *x509.Certificate, parentKey crypto.Signer) *x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{Organization: []string{"Lab"}, CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	if ca {
		tmpl.IsCA, tmpl.BasicConstraintsValid, tmpl.KeyUsage = true, true, x509.KeyUsageCertSign
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), parentKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func ecKey(t *testing.T, curve elliptic.Curve) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(curve, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// pubkeyMaterial is gw-a's leaf under an intermediate under a root, and
// gw-b's certificate under the root.
type pubkeyMaterial struct {
	root, inter, leaf, peer *x509.Certificate
	key                     *ecdsa.PrivateKey
}

func newPubkeyMaterial(t *testing.T) pubkeyMaterial {
	rootKey, interKey, key, peerKey := ecKey(t, elliptic.P256()), ecKey(t, elliptic.P256()), ecKey(t, elliptic.P256()), ecKey(t, elliptic.P256())
	root := testCert(t, "Lab Root", rootKey, true, nil, nil)
	inter := testCert(t, "Lab Intermediate", interKey, true, root, rootKey)
	return pubkeyMaterial{
		root:  root,
		inter: inter,
		leaf:  testCert(t, "gw-a", key, false, inter, interKey),
		peer:  testCert(t, "gw-b", peerKey, false, root, rootKey),
		key:   key,
	}
}

// pubkeyConfig is the office connection authenticated by certificates, with
// gw-b's certificate pinned.
func pubkeyConfig(m pubkeyMaterial) Config {
	c := officeConfig()
	conn := &c.Connections[0]
	conn.LocalAuth, conn.RemoteAuth, conn.PSK = "pubkey", "pubkey", ""
	conn.LocalID, conn.RemoteID = "dn:O=Lab, CN=gw-a", "fqdn:gw-b.lab"
	conn.LocalCerts = []*x509.Certificate{m.leaf, m.inter}
	conn.PrivateKey = m.key
	conn.CACerts = []*x509.Certificate{m.root}
	conn.PeerCert = m.peer
	return c
}

func TestSwanctlConfPubkey(t *testing.T) {
	conf, err := pubkeyConfig(newPubkeyMaterial(t)).SwanctlConf()
	if err != nil {
		t.Fatal(err)
	}
	sections := map[string][]string{} // lines by the section they are in
	var path []string
	for _, l := range strings.Split(conf, "\n") {
		l = strings.TrimSpace(l)
		switch {
		case strings.HasSuffix(l, " {"):
			path = append(path, strings.TrimSuffix(l, " {"))
		case l == "}":
			path = path[:len(path)-1]
		case l != "":
			key := strings.Join(path, ".")
			sections[key] = append(sections[key], l)
		}
	}
	want := map[string][]string{
		"connections.office.local": {`auth = "pubkey"`, `id = "O=Lab, CN=gw-a"`, `certs = "office.local.pem"`},
		// swanctl resolves cacerts in x509ca/ and certs in x509/.
		"connections.office.remote": {`auth = "pubkey"`, `id = "fqdn:gw-b.lab"`, `cacerts = "office.ca-1.pem"`, `certs = "office.peer.pem"`},
	}
	for sec, lines := range want {
		if strings.Join(sections[sec], "\n") != strings.Join(lines, "\n") {
			t.Errorf("section %s is\n%s\nwant\n%s", sec, strings.Join(sections[sec], "\n"), strings.Join(lines, "\n"))
		}
	}
	if strings.Contains(conf, "ike-office") || strings.Contains(conf, "secret =") {
		t.Errorf("a pubkey connection must write no shared secret:\n%s", conf)
	}
}

func TestCredentialFiles(t *testing.T) {
	m := newPubkeyMaterial(t)
	cfg := pubkeyConfig(m)
	psk := officeConfig().Connections[0]
	psk.Name, psk.Children = "psk-only", nil
	cfg.Connections = append(cfg.Connections, psk)
	files, err := cfg.credentialFiles()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	// A file left by an earlier configuration must not survive.
	if err := os.MkdirAll(filepath.Join(dir, "x509"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "x509", "stale.pem"), pemCert(m.peer), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := writeCredentials(dir, files); err != nil {
		t.Fatal(err)
	}

	wantCerts := map[string]*x509.Certificate{
		"x509/office.local.pem":     m.leaf,
		"x509/office.peer.pem":      m.peer,
		"x509ca/office.chain-1.pem": m.inter,
		"x509ca/office.ca-1.pem":    m.root,
	}
	for name, want := range wantCerts {
		p := filepath.Join(dir, name)
		b, err := os.ReadFile(p)
		if err != nil {
			t.Error(err)
			continue
		}
		blk, _ := pem.Decode(b)
		if blk == nil || blk.Type != "CERTIFICATE" || string(blk.Bytes) != string(want.Raw) {
			t.Errorf("%s does not hold %s as PEM", name, want.Subject)
		}
		if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o644 {
			t.Errorf("%s mode %v, want 0644", name, fi.Mode().Perm())
		}
	}
	keyPath := filepath.Join(dir, "pkcs8", "office.key.pem")
	b, err := os.ReadFile(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		t.Fatalf("%s is not a PKCS#8 PEM key", keyPath)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil || !m.key.Equal(k) {
		t.Errorf("%s holds another key (%v)", keyPath, err)
	}
	if fi, _ := os.Stat(keyPath); fi.Mode().Perm() != 0o600 {
		t.Errorf("key mode %v, want 0600", fi.Mode().Perm())
	}
	for _, d := range credDirs {
		fi, err := os.Stat(filepath.Join(dir, d))
		if err != nil || fi.Mode().Perm() != 0o700 {
			t.Errorf("%s: %v, mode %v, want a 0700 directory", d, err, fi.Mode().Perm())
		}
	}
	all, _ := filepath.Glob(filepath.Join(dir, "*", "*"))
	if len(all) != len(wantCerts)+1 {
		t.Errorf("files %v, want the four certificates and the key only (the PSK connection has none, the stale file is gone)", all)
	}

	// A PSK-only configuration empties the directories.
	if err := writeCredentials(dir, nil); err != nil {
		t.Fatal(err)
	}
	if all, _ := filepath.Glob(filepath.Join(dir, "*", "*")); len(all) != 0 {
		t.Errorf("files left after a PSK-only configuration: %v", all)
	}
}

func TestValidatePubkey(t *testing.T) {
	m := newPubkeyMaterial(t)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	p224 := ecKey(t, elliptic.P224())
	for name, tc := range map[string]struct {
		mutate func(*Connection)
		want   string
	}{
		"no certificate":   {func(c *Connection) { c.LocalCerts = nil }, "needs a local certificate"},
		"no key":           {func(c *Connection) { c.PrivateKey = nil }, "needs the private key"},
		"another key":      {func(c *Connection) { c.PrivateKey = rsaKey }, "does not belong to the local certificate"},
		"nothing to trust": {func(c *Connection) { c.CACerts, c.PeerCert = nil, nil }, "CA certificate to trust"},
		"mixed methods":    {func(c *Connection) { c.RemoteAuth = "psk"; c.PSK = "x" }, "same method"},
		"unknown method":   {func(c *Connection) { c.LocalAuth = "eap" }, `auth "eap"`},
		"ed25519":          {func(c *Connection) { c.PrivateKey = edKey }, "want *rsa.PrivateKey or *ecdsa.PrivateKey"},
		"p-224":            {func(c *Connection) { c.PrivateKey = p224 }, "P-256, P-384 or P-521"},
		"unparsed cert":    {func(c *Connection) { c.CACerts = []*x509.Certificate{{}} }, "empty"},
		"nil cert":         {func(c *Connection) { c.LocalCerts = []*x509.Certificate{nil} }, "empty"},
		"psk with a cert":  {func(c *Connection) { c.LocalAuth, c.RemoteAuth, c.PSK = "", "", "x" }, "auth is psk"},
		"psk without secret": {func(c *Connection) {
			c.LocalAuth, c.RemoteAuth, c.LocalCerts, c.PrivateKey, c.CACerts, c.PeerCert = "psk", "", nil, nil, nil, nil
		}, "needs a secret"},
		"unparsed peer cert":   {func(c *Connection) { c.PeerCert = &x509.Certificate{} }, "peer certificate is empty"},
		"control char in id":   {func(c *Connection) { c.LocalID = "dn:CN=a\nb" }, "control character"},
		"pinned peer, no CA":   {func(c *Connection) { c.CACerts = nil }, ""},
		"CA, no pinned peer":   {func(c *Connection) { c.PeerCert = nil }, ""},
		"leaf alone, no chain": {func(c *Connection) { c.LocalCerts = c.LocalCerts[:1] }, ""},
	} {
		cfg := pubkeyConfig(m)
		tc.mutate(&cfg.Connections[0])
		err := cfg.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: error %v, want one saying %q", name, err, tc.want)
		}
	}
	if err := pubkeyConfig(m).Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestSwanID(t *testing.T) {
	for in, want := range map[string]string{
		"dn:O=Lab, CN=gw-a":   "O=Lab, CN=gw-a",
		"DN: CN=gw-a":         "CN=gw-a",
		"fqdn:gw-b.lab":       "fqdn:gw-b.lab",
		"email:a@lab":         "email:a@lab",
		"192.0.2.1":           "192.0.2.1",
		"":                    "",
		"dnsname.example.org": "dnsname.example.org",
	} {
		if got := swanID(in); got != want {
			t.Errorf("swanID(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestHybridCredentials: in Hybrid mode the gateway has a certificate and
// key and trusts no CA, the client trusts the CA and has neither.
func TestHybridCredentials(t *testing.T) {
	rootKey := ecKey(t, elliptic.P256())
	root := testCert(t, "Lab Root", rootKey, true, nil, nil)
	gwKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	gwCert := testCert(t, "gw", gwKey, false, root, rootKey)
	gateway, client := roadWarriorConfigs()
	g, c := &gateway.Connections[0], &client.Connections[0]
	g.LocalAuth, g.RemoteAuth, g.PSK, g.LocalCerts, g.PrivateKey = "pubkey", "xauth", "", []*x509.Certificate{gwCert}, gwKey
	c.LocalAuth, c.RemoteAuth, c.PSK, c.CACerts = "xauth", "pubkey", "", []*x509.Certificate{root}

	for _, tc := range []struct {
		name  string
		cfg   Config
		files []string
		lines []string
	}{
		{"gateway", gateway, []string{"x509/rw.local.pem", "pkcs8/rw.key.pem"},
			[]string{`auth = "pubkey"`, `certs = "rw.local.pem"`, `auth = "xauth-generic"`}},
		{"client", client, []string{"x509ca/rw.ca-1.pem"},
			[]string{`auth = "xauth"`, `xauth_id = "alice"`, `auth = "pubkey"`, `cacerts = "rw.ca-1.pem"`}},
	} {
		conf, err := tc.cfg.SwanctlConf()
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		for _, want := range tc.lines {
			if !strings.Contains(conf, want) {
				t.Errorf("%s: swanctl.conf lacks %s:\n%s", tc.name, want, conf)
			}
		}
		if strings.Contains(conf, "-xauth {") || strings.Contains(conf, "ike-rw") {
			t.Errorf("%s: Hybrid has one round and no PSK:\n%s", tc.name, conf)
		}
		files, err := tc.cfg.credentialFiles()
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, f := range files {
			got = append(got, f.path)
		}
		if strings.Join(got, " ") != strings.Join(tc.files, " ") {
			t.Errorf("%s: credential files %v, want %v", tc.name, got, tc.files)
		}
	}

	ecGateway := gateway
	ecGateway.Connections = []Connection{*g}
	ecGateway.Connections[0].PrivateKey = rootKey
	ecGateway.Connections[0].LocalCerts = []*x509.Certificate{root}
	if err := ecGateway.Validate(); err == nil || !strings.Contains(err.Error(), "RSA key") {
		t.Errorf("Hybrid gateway with an ECDSA key: %v, want a complaint about RSA", err)
	}
	withCert := client
	withCert.Connections = []Connection{*c}
	withCert.Connections[0].LocalCerts, withCert.Connections[0].PrivateKey = []*x509.Certificate{gwCert}, gwKey
	if err := withCert.Validate(); err == nil || !strings.Contains(err.Error(), "XAUTH alone") {
		t.Errorf("Hybrid client with a certificate: %v", err)
	}
}

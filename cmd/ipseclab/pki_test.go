package main

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ipseclab/ipseclab/internal/testenv"
	"github.com/ipseclab/ipseclab/internal/testenv/netenv"
	"github.com/ipseclab/ipseclab/ipsec/pki"
	"github.com/ipseclab/ipseclab/labrun"
)

// pkiLab: two gateways, a pubkey connection with no files (the lab PKI,
// ECDSA P-256) and one whose initiator names its own files (the responder's
// side from the lab PKI, RSA-2048 by default).
const pkiLab = `topology:
  nodes:
    gw1: {kind: gateway}
    gw2: {kind: gateway}
  links:
    - endpoints: [gw1:eth0, gw2:eth0]
      addresses: [192.0.2.1/24, 192.0.2.2/24]
ipsec:
  vpn:
    auth: {method: pubkey}
    key-type: ecdsa-p256
    initiator: {node: gw1, id: "fqdn:gw1.lab"}
    responder: {node: gw2, id: "dn:CN=gw2, O=Lab"}
    child: {mode: transport, start: none}
  given:
    auth: {method: pubkey}
    initiator: {node: gw1, id: "email:gw1@files.lab", cert: certs/gw1.pem, key: certs/gw1.key, cacert: certs/ca.pem}
    responder: gw2
    child: {mode: transport, start: none}
`

// A deployed lab with a pubkey connection and no files gets its lab PKI in
// its state; pki show lists it and the files the lab file names, as given;
// pki export writes it and will not overwrite; destroy takes it away.
func TestPKIShowAndExportOnADeployedLab(t *testing.T) {
	testenv.NeedRoot(t)
	netenv.SharedLabs(t)
	name := fmt.Sprintf("cli%d-pki", os.Getpid())
	t.Cleanup(func() { _ = labrun.DestroyLab(name, 5*time.Second) })

	// The initiator's own files, from a CA of the test's.
	dir := t.TempDir()
	now := time.Now()
	ca, err := pki.NewCA("Files CA", pki.RSA2048, now.Add(-time.Hour), now.Add(time.Hour), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	given, err := ca.Issue(pki.IssueRequest{Subject: pkix.Name{CommonName: "gw1 from files"}, Emails: []string{"gw1@files.lab"},
		KeyType: pki.RSA2048, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour)}, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	key, err := pki.EncodePrivateKeyPEM(given.Key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "certs"), 0o700); err != nil {
		t.Fatal(err)
	}
	for f, data := range map[string][]byte{"certs/gw1.pem": pki.EncodeCertificatePEM(given.Chain[0]), "certs/gw1.key": key, "certs/ca.pem": pki.EncodeCertificatePEM(ca.Cert)} {
		if err := os.WriteFile(filepath.Join(dir, f), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	lab := filepath.Join(dir, "lab.yaml")
	if err := os.WriteFile(lab, []byte("name: "+name+"\n"+pkiLab), 0o644); err != nil {
		t.Fatal(err)
	}

	if r := run(t, "pki", "show", "-t", lab); r.code == 0 || !strings.Contains(r.stderr, "is not deployed") {
		t.Fatalf("pki show before deploy: %+v", r)
	}
	if r := run(t, "deploy", "-t", lab); r.code != 0 {
		t.Fatalf("deploy: %+v", r)
	}
	pkiDir := labrun.PKIDir(name)
	if st, err := os.Stat(pkiDir); err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("the lab PKI's directory: %v %v", st, err)
	}
	for _, f := range []string{"ca.key", "gw1.key", "gw2.ecdsa-p256.key", "gw2.rsa-2048.key"} {
		if st, err := os.Stat(filepath.Join(pkiDir, f)); err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v, want mode 0600", f, st, err)
		}
	}

	// --name reads the lab file's copy in the state, and the files beside
	// the original.
	r := run(t, "pki", "show", "--name", name, "--json")
	if r.code != 0 {
		t.Fatalf("pki show --json: %+v", r)
	}
	var show pkiShow
	if err := json.Unmarshal([]byte(r.stdout), &show); err != nil {
		t.Fatalf("pki show --json: %v\n%s", err, r.stdout)
	}
	if show.CA == nil || show.CA.Subject != "CN=ipseclab "+name+" CA" || show.Dir != pkiDir {
		t.Fatalf("CA: %+v in %s", show.CA, show.Dir)
	}
	certs := map[string]pkiEntry{}
	for _, e := range show.Certificates {
		certs[e.Name] = e
	}
	check := func(name, node, source, subject, key string, sans []string, conns ...string) {
		t.Helper()
		e, ok := certs[name]
		if !ok {
			t.Errorf("pki show lacks %s: %+v", name, show.Certificates)
			return
		}
		leaf := e.Chain[0]
		if e.Node != node || e.Source != source || leaf.Subject != subject || leaf.Key != key || !slices.Equal(leaf.SANs, sans) || !slices.Equal(e.Connections, conns) {
			t.Errorf("%s: %+v\nleaf %+v", name, e, leaf)
		}
		if len(e.Chain) != 2 || e.Chain[1].Subject != leaf.Issuer || len(leaf.SHA256) != 95 || leaf.NotAfter.Before(time.Now()) {
			t.Errorf("%s: chain %+v", name, e.Chain)
		}
	}
	check("gw1", "gw1", "lab PKI", "CN=gw1, O=ipseclab lab "+name, "ECDSA P-256", []string{"DNS:gw1.lab", "IP:192.0.2.1"}, "vpn (initiator)")
	check("gw2.ecdsa-p256", "gw2", "lab PKI", "CN=gw2, O=Lab", "ECDSA P-256", []string{"IP:192.0.2.2"}, "vpn (responder)")
	check("gw2.rsa-2048", "gw2", "lab PKI", "CN=gw2, O=ipseclab lab "+name, "RSA-2048", []string{"IP:192.0.2.2"}, "given (responder)")
	check("certs/gw1.pem", "gw1", "files", "CN=gw1 from files", "RSA-2048", []string{"email:gw1@files.lab"}, "given (initiator)")
	sum := sha256.Sum256(given.Chain[0].Raw)
	if fp := certs["certs/gw1.pem"].Chain[0].SHA256; strings.ReplaceAll(fp, ":", "") != fmt.Sprintf("%X", sum) {
		t.Errorf("the certificate shown is not the file's: %s", fp)
	}
	if r := run(t, "pki", "show", "-t", lab); r.code != 0 || !strings.Contains(r.stdout, "lab PKI of "+name) || !strings.Contains(r.stdout, "issuer    CN=ipseclab "+name+" CA (self-signed)") ||
		!strings.Contains(r.stdout, "SANs      DNS:gw1.lab, IP:192.0.2.1") {
		t.Errorf("pki show:\n%s%s", r.stdout, r.stderr)
	}

	out := filepath.Join(t.TempDir(), "export")
	if r := run(t, "pki", "export", "-t", lab, out); r.code != 0 || !strings.Contains(r.stdout, "wrote ca.pem, gw1.pem, gw1.key, gw2.ecdsa-p256.pem") {
		t.Fatalf("pki export: %+v", r)
	}
	exported, err := pki.ReadLabDir(out)
	if err != nil {
		t.Fatal(err)
	}
	if exported.CA.Key != nil {
		t.Error("the export holds the CA's key")
	}
	if _, err := os.Stat(filepath.Join(out, "ca.key")); !os.IsNotExist(err) {
		t.Errorf("ca.key exported: %v", err)
	}
	if st, err := os.Stat(filepath.Join(out, "gw1.key")); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("exported key: %v %v", st, err)
	}
	if fp := exported.Nodes["gw1"].Chain[0]; fmt.Sprintf("%X", sha256.Sum256(fp.Raw)) != strings.ReplaceAll(certs["gw1"].Chain[0].SHA256, ":", "") {
		t.Error("the exported gw1.pem is not the certificate pki show lists")
	}
	if r := run(t, "pki", "export", "-t", lab, out); r.code == 0 || !strings.Contains(r.stderr, filepath.Join(out, "ca.pem")+" exists: give --force") {
		t.Errorf("export over an export: %+v", r)
	}
	if r := run(t, "pki", "export", "-t", lab, out, "--force"); r.code != 0 {
		t.Errorf("export --force: %+v", r)
	}

	if r := run(t, "destroy", "-t", lab); r.code != 0 {
		t.Fatalf("destroy: %+v", r)
	}
	if _, err := os.Stat(pkiDir); !os.IsNotExist(err) {
		t.Errorf("the lab PKI outlived its lab: %v", err)
	}
}

package labrun_test

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ipseclab/ipseclab/events"
	"github.com/ipseclab/ipseclab/ipsec/ike"
	"github.com/ipseclab/ipseclab/ipsec/pki"
	"github.com/ipseclab/ipseclab/labrun"
)

// pubkeyLab: two gateways and a pubkey connection that names no files.
func pubkeyLab(name, initiatorID, keyType string) string {
	return fmt.Sprintf(`name: %s
topology:
  nodes:
    gw1: {kind: gateway}
    gw2: {kind: gateway}
  links:
    - endpoints: [gw1:eth0, gw2:eth0]
      addresses: [192.0.2.1/24, 192.0.2.2/24]
ipsec:
  vpn:
    auth: {method: pubkey}
    key-type: %s
    initiator: {node: gw1, id: %q}
    responder: {node: gw2, id: "dn:CN=gw2, O=Lab"}
    child: {mode: transport}
`, name, keyType, initiatorID)
}

// The lab PKI, without the namespaces: a CA and a certificate per node with
// the node's identities and IKE address, in a private directory; made again
// on the same state, it keeps what still fits and reissues what the lab file
// changed, under the same CA.
func TestLabPKIIsMadeOnceAndKept(t *testing.T) {
	name := fmt.Sprintf("t%d-pki", os.Getpid())
	t.Cleanup(func() { _ = os.RemoveAll(labrun.StateDir(name)) })
	if err := labrun.MakeStateDir(name); err != nil {
		t.Fatal(err)
	}
	bus := events.NewBus(name)
	defer bus.Close()
	lab := mustParse(t, pubkeyLab(name, "fqdn:gw1.lab", "ecdsa-p256"))
	if err := labrun.SetupLabPKI(lab, bus); err != nil {
		t.Fatal(err)
	}
	dir := labrun.PKIDir(name)
	if st, err := os.Stat(dir); err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("pki directory: %v %v", st, err)
	}
	for _, f := range []string{"ca.key", "gw1.key", "gw2.key"} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v, want mode 0600", f, st, err)
		}
	}
	l, err := pki.ReadLabDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if cn := l.CA.Cert.Subject.CommonName; cn != "ipseclab "+name+" CA" {
		t.Errorf("CA %q", cn)
	}
	gw1, gw2 := l.Nodes["gw1"], l.Nodes["gw2"]
	if gw1 == nil || gw2 == nil || len(l.Nodes) != 2 {
		t.Fatalf("nodes: %v", l.Nodes)
	}
	leaf := gw1.Chain[0]
	if !slices.Equal(leaf.DNSNames, []string{"gw1.lab"}) || len(leaf.IPAddresses) != 1 || !leaf.IPAddresses[0].Equal(net.ParseIP("192.0.2.1")) ||
		pki.DescribeKey(leaf.PublicKey) != "ECDSA P-256" || leaf.CheckSignatureFrom(l.CA.Cert) != nil {
		t.Errorf("gw1's certificate: SANs %v %v, key %s", leaf.DNSNames, leaf.IPAddresses, pki.DescribeKey(leaf.PublicKey))
	}
	if dn, _ := pki.FormatDN(gw2.Chain[0].RawSubject); dn != "CN=gw2, O=Lab" {
		t.Errorf("gw2's subject %q, want its dn: identity", dn)
	}
	// The sides got them.
	s := lab.SidesOf("gw1")[0]
	if s.Cred == nil || !s.Cred.Chain[0].Equal(leaf) || len(s.CACerts) != 1 || !s.CACerts[0].Equal(l.CA.Cert) || !s.PeerCert.Equal(gw2.Chain[0]) {
		t.Errorf("gw1's side does not carry the lab PKI: %+v", s)
	}

	// Again, on the same state: everything kept.
	again := mustParse(t, pubkeyLab(name, "fqdn:gw1.lab", "ecdsa-p256"))
	if err := labrun.SetupLabPKI(again, bus); err != nil {
		t.Fatal(err)
	}
	if c := again.SidesOf("gw1")[0].Cred; !c.Chain[0].Equal(leaf) || pki.KeyMatches(leaf, c.Key) != nil {
		t.Error("a lab PKI made again gave gw1 another certificate")
	}
	// gw1's identity changed in the lab file: gw1 gets a new certificate
	// under the same CA, gw2 keeps its own.
	changed := mustParse(t, pubkeyLab(name, "email:gw1@lab", "ecdsa-p256"))
	if err := labrun.SetupLabPKI(changed, bus); err != nil {
		t.Fatal(err)
	}
	c1, c2 := changed.SidesOf("gw1")[0], changed.SidesOf("gw2")[0]
	if c1.Cred.Chain[0].Equal(leaf) || !slices.Equal(c1.Cred.Chain[0].EmailAddresses, []string{"gw1@lab"}) || !c1.CACerts[0].Equal(l.CA.Cert) {
		t.Error("gw1's certificate does not follow its new identity, under the same CA")
	}
	if !c2.Cred.Chain[0].Equal(gw2.Chain[0]) {
		t.Error("gw2's certificate changed with gw1's identity")
	}
	// Another key type: both reissued.
	rsa := mustParse(t, pubkeyLab(name, "email:gw1@lab", "rsa-3072"))
	if err := labrun.SetupLabPKI(rsa, bus); err != nil {
		t.Fatal(err)
	}
	if k := pki.DescribeKey(rsa.SidesOf("gw2")[0].Cred.Chain[0].PublicKey); k != "RSA-3072" {
		t.Errorf("gw2's key %s after key-type: rsa-3072", k)
	}
}

// A lab whose connections name their own files, or use psk, has no lab PKI.
func TestNoLabPKIWithoutNeed(t *testing.T) {
	name := fmt.Sprintf("t%d-nopki", os.Getpid())
	t.Cleanup(func() { _ = os.RemoveAll(labrun.StateDir(name)) })
	src := strings.Replace(pubkeyLab(name, "fqdn:gw1.lab", "rsa-2048"), "{method: pubkey}", "{secret: s3cret}", 1)
	src = strings.Replace(src, "    key-type: rsa-2048\n", "", 1)
	lab := mustParse(t, src)
	bus := events.NewBus(name)
	defer bus.Close()
	if err := labrun.SetupLabPKI(lab, bus); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(labrun.PKIDir(name)); !os.IsNotExist(err) {
		t.Errorf("a psk lab got a pki directory: %v", err)
	}
	if s := lab.SidesOf("gw1")[0]; s.Cred != nil || s.CACerts != nil {
		t.Errorf("a psk side got certificates: %+v", s)
	}
}

// Public-key encryption from the lab PKI: each side's connection carries
// the method, its own certificate and key, and the peer's certificate,
// which the method encrypts to before the peer has said anything.
func TestPublicKeyEncryptionConnections(t *testing.T) {
	name := fmt.Sprintf("t%d-pkenc", os.Getpid())
	t.Cleanup(func() { _ = os.RemoveAll(labrun.StateDir(name)) })
	if err := labrun.MakeStateDir(name); err != nil {
		t.Fatal(err)
	}
	bus := events.NewBus(name)
	defer bus.Close()
	for _, tc := range []struct {
		method string
		want   ike.AuthKind
	}{{"rsa-encryption", ike.AuthRSAEncryption}, {"rsa-encryption-revised", ike.AuthRSARevisedEncryption}} {
		lab := mustParse(t, strings.Replace(pubkeyLab(name, "fqdn:gw1.lab", "rsa-2048"), "{method: pubkey}", "{method: "+tc.method+"}", 1))
		if err := labrun.SetupLabPKI(lab, bus); err != nil {
			t.Fatal(err)
		}
		peers := map[string]string{"gw1": "gw2", "gw2": "gw1"}
		for node, peer := range peers {
			s := lab.SidesOf(node)[0]
			c := labrun.IKEConnection(s, ike.StartNone)
			if err := c.Validate(); err != nil {
				t.Errorf("%s %s: %v", tc.method, node, err)
			}
			if c.Auth.Method != tc.want || c.Auth.PeerCert == nil || !c.Auth.PeerCert.Equal(lab.SidesOf(peer)[0].Cred.Chain[0]) {
				t.Errorf("%s %s: auth %v, peer certificate %v", tc.method, node, c.Auth.Method, c.Auth.PeerCert)
			}
		}
	}
}

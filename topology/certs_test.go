package topology

import (
	"bytes"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ipseclab/ipseclab/ipsec/pki"
)

// certLab is two gateways on one link, with one connection whose auth,
// sides and extra settings the test writes: each side a flow mapping's
// contents after the node.
func certLab(auth, initiator, responder string) string {
	return fmt.Sprintf(`name: certs
topology:
  nodes:
    gw1: {kind: gateway}
    gw2: {kind: gateway}
  links:
    - endpoints: [gw1:eth0, gw2:eth0]
      addresses: [192.0.2.1/24, 192.0.2.2/24]
ipsec:
  vpn:
    auth: %s
    initiator: {node: gw1%s}
    responder: {node: gw2%s}
    child: {mode: transport}
`, auth, initiator, responder)
}

// pkiFiles is a directory of certificate files for the tests: a CA, a second
// CA that nobody trusts, and leaves issued by either.
type pkiFiles struct {
	t     *testing.T
	dir   string
	ca    *pki.CA
	other *pki.CA
}

func newPKIFiles(t *testing.T) *pkiFiles {
	t.Helper()
	f := &pkiFiles{t: t, dir: t.TempDir()}
	now := time.Now()
	var err error
	if f.ca, err = pki.NewCA("Test CA", pki.ECDSAP256, now.Add(-time.Hour), now.Add(24*time.Hour), rand.Reader); err != nil {
		t.Fatal(err)
	}
	if f.other, err = pki.NewCA("Other CA", pki.ECDSAP256, now.Add(-time.Hour), now.Add(24*time.Hour), rand.Reader); err != nil {
		t.Fatal(err)
	}
	f.write("ca.pem", pki.EncodeCertificatePEM(f.ca.Cert))
	f.write("other-ca.pem", pki.EncodeCertificatePEM(f.other.Cert))
	return f
}

func (f *pkiFiles) write(name string, data []byte) {
	f.t.Helper()
	if err := os.WriteFile(filepath.Join(f.dir, name), data, 0o600); err != nil {
		f.t.Fatal(err)
	}
}

// leaf issues a certificate with ca for req (dates filled in) and writes it
// as name.pem with its key as name.key.
func (f *pkiFiles) leaf(ca *pki.CA, name string, req pki.IssueRequest) *pki.Credential {
	f.t.Helper()
	if req.NotBefore.IsZero() {
		req.NotBefore, req.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour)
	}
	if req.KeyType == "" {
		req.KeyType = pki.ECDSAP256
	}
	cred, err := ca.Issue(req, rand.Reader)
	if err != nil {
		f.t.Fatal(err)
	}
	key, err := pki.EncodePrivateKeyPEM(cred.Key)
	if err != nil {
		f.t.Fatal(err)
	}
	f.write(name+".pem", pki.EncodeCertificatePEM(cred.Chain[0]))
	f.write(name+".key", key)
	return cred
}

// parse writes the lab beside the files and parses it.
func (f *pkiFiles) parse(src string) (*Lab, string, error) {
	f.t.Helper()
	p := filepath.Join(f.dir, "lab.yaml")
	if err := os.WriteFile(p, []byte(src), 0o600); err != nil {
		f.t.Fatal(err)
	}
	lab, err := Parse(p, []byte(src))
	return lab, p, err
}

// at is where a problem is expected: the line of src holding marker, and the
// column where marker starts there (markers are written at the value).
func at(file, src, marker string) string {
	for i, line := range strings.Split(src, "\n") {
		if c := strings.Index(line, marker); c >= 0 {
			return fmt.Sprintf("%s:%d:%d: ", file, i+1, c+1)
		}
	}
	panic("no line holds " + marker)
}

// The good case: both sides' files given, read once, resolved onto the
// sides as given.
func TestCertFilesAreReadOnceAndUsedAsGiven(t *testing.T) {
	f := newPKIFiles(t)
	gw1 := f.leaf(f.ca, "gw1", pki.IssueRequest{Subject: pkix.Name{CommonName: "gw1"}, DNSNames: []string{"gw1.lab"}})
	dn, err := pki.ParseDN("CN=gw2, O=Lab")
	if err != nil {
		t.Fatal(err)
	}
	gw2 := f.leaf(f.ca, "gw2", pki.IssueRequest{RawSubject: dn})
	// gw2's files in DER, in a subdirectory: relative to the lab file.
	if err := os.Mkdir(filepath.Join(f.dir, "der"), 0o700); err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(gw2.Key)
	if err != nil {
		t.Fatal(err)
	}
	f.write("der/gw2.crt", gw2.Chain[0].Raw)
	f.write("der/gw2.der", keyDER)
	lab, _, err := f.parse(certLab("{method: pubkey}",
		`, id: "fqdn:gw1.lab", cert: gw1.pem, key: gw1.key, cacert: ca.pem`,
		`, cert: der/gw2.crt, key: der/gw2.der, cacert: ca.pem`))
	if err != nil {
		t.Fatalf("valid lab refused:\n%v", err)
	}
	c := lab.IPsec["vpn"]
	if c.Auth.Method != AuthPubkey || c.KeyType != pki.RSA2048 {
		t.Errorf("method %q key-type %q, want pubkey and the default rsa-2048", c.Auth.Method, c.KeyType)
	}
	// Without id:, a side with a certificate is its subject.
	if c.Responder.ID != "dn:CN=gw2, O=Lab" {
		t.Errorf("responder's identity %q, want the certificate's subject dn:CN=gw2, O=Lab", c.Responder.ID)
	}
	if len(lab.LabCerts()) != 0 {
		t.Errorf("a lab whose sides name their files needs no lab PKI, got %+v", lab.LabCerts())
	}
	sides := lab.SidesOf("gw1")
	if len(sides) != 1 {
		t.Fatalf("gw1 sides: %+v", sides)
	}
	s := sides[0]
	if s.Auth != AuthPubkey || s.Cred == nil || !s.Cred.Chain[0].Equal(gw1.Chain[0]) || pki.KeyMatches(s.Cred.Chain[0], s.Cred.Key) != nil {
		t.Errorf("gw1's side does not carry gw1.pem and its key: %+v", s.Cred)
	}
	if len(s.CACerts) != 1 || !s.CACerts[0].Equal(f.ca.Cert) {
		t.Errorf("gw1 trusts %v, want ca.pem", s.CACerts)
	}
	if s.PeerCert == nil || !s.PeerCert.Equal(gw2.Chain[0]) {
		t.Errorf("gw1's peer certificate is not gw2's")
	}
	r := lab.SidesOf("gw2")[0]
	if r.Cred == nil || !r.Cred.Chain[0].Equal(gw2.Chain[0]) || r.Remote.ID != "fqdn:gw1.lab" {
		t.Errorf("gw2's side: %+v", r)
	}
	// UseLabPKI has nothing to fill: the files stay.
	if err := lab.UseLabPKI(nil, nil); err != nil {
		t.Fatal(err)
	}
	if !lab.SidesOf("gw1")[0].Cred.Chain[0].Equal(gw1.Chain[0]) {
		t.Error("UseLabPKI replaced a credential given in files")
	}
}

// An expired certificate is a lab's lesson (the negotiation fails and says
// why), not a mistake in the file: validate takes it.
func TestValidateLeavesExpiryToTheNegotiation(t *testing.T) {
	f := newPKIFiles(t)
	past := time.Now().Add(-48 * time.Hour)
	f.leaf(f.ca, "gw1", pki.IssueRequest{Subject: pkix.Name{CommonName: "gw1"}, NotBefore: past, NotAfter: past.Add(time.Hour)})
	if _, _, err := f.parse(certLab("{method: pubkey}", `, cert: gw1.pem, key: gw1.key, cacert: ca.pem`, "")); err != nil {
		t.Fatalf("a lab with an expired certificate is refused:\n%v", err)
	}
}

// Each bad input is an error at the line and column of the field at fault.
func TestCertValidationErrorsAtTheirField(t *testing.T) {
	f := newPKIFiles(t)
	f.leaf(f.ca, "gw1", pki.IssueRequest{Subject: pkix.Name{CommonName: "gw1"}, DNSNames: []string{"gw1.lab"}})
	f.leaf(f.ca, "gw2", pki.IssueRequest{Subject: pkix.Name{CommonName: "gw2"}})
	f.leaf(f.other, "rogue", pki.IssueRequest{Subject: pkix.Name{CommonName: "gw1"}, DNSNames: []string{"gw1.lab"}})
	f.leaf(f.ca, "ecgw", pki.IssueRequest{Subject: pkix.Name{CommonName: "ecgw"}})
	f.leaf(f.ca, "rsagw", pki.IssueRequest{Subject: pkix.Name{CommonName: "rsagw"}, KeyType: pki.RSA2048})
	f.write("garbage.pem", []byte("-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n"))
	f.write("garbage.key", []byte("this is not a key"))

	for _, tc := range []struct {
		name             string
		auth, init, resp string
		marker, want     string
	}{
		{"missing file", "{method: pubkey}", `, cert: nothere.pem, key: gw1.key, cacert: ca.pem`, "",
			"nothere.pem", "nothere.pem: no such file (paths are relative to the lab file)"},
		{"cert of garbage", "{method: pubkey}", `, cert: garbage.pem, key: gw1.key, cacert: ca.pem`, "",
			"garbage.pem", "garbage.pem is not a certificate (PEM or DER)"},
		{"key of garbage", "{method: pubkey}", `, cert: gw1.pem, key: garbage.key, cacert: ca.pem`, "",
			"garbage.key", "garbage.key is not a private key"},
		{"key of another certificate", "{method: pubkey}", `, cert: gw1.pem, key: gw2.key, cacert: ca.pem`, "",
			"gw2.key", "key gw2.key does not belong to certificate gw1.pem"},
		{"identity not in the certificate", "{method: pubkey}", `, id: "fqdn:elsewhere.lab", cert: gw1.pem, key: gw1.key, cacert: ca.pem`, "",
			`"fqdn:elsewhere.lab"`, "identity fqdn:elsewhere.lab is not in certificate gw1.pem"},
		{"subject not the dn: identity", "{method: pubkey}", `, id: "dn:CN=gw9", cert: gw1.pem, key: gw1.key, cacert: ca.pem`, "",
			`"dn:CN=gw9"`, "identity dn:CN=gw9 is not in certificate gw1.pem"},
		{"default address not in the certificate", "{method: pubkey}", `, id: "192.0.2.1", cert: gw1.pem, key: gw1.key, cacert: ca.pem`, "",
			`"192.0.2.1"`, "identity 192.0.2.1 is not in certificate gw1.pem"},
		{"chain from another CA", "{method: pubkey}", `, id: "fqdn:gw1.lab", cert: rogue.pem, key: rogue.key, cacert: ca.pem`, "",
			"rogue.pem", "the chain of rogue.pem does not lead to cacert ca.pem"},
		{"cert without key", "{method: pubkey}", `, cert: gw1.pem, cacert: ca.pem`, "",
			"gw1.pem", "cert gw1.pem is given without its private key"},
		{"key without cert", "{method: pubkey}", `, key: gw1.key`, "",
			"gw1.key", "key gw1.key is given without its certificate"},
		{"cert without cacert", "{method: pubkey}", `, cert: gw1.pem, key: gw1.key`, "",
			"gw1.pem", "cert gw1.pem is given without cacert"},
		{"files under psk", "{secret: s3cret}", `, cert: gw1.pem, key: gw1.key`, "",
			"gw1.pem", "cert is for certificate authentication (pubkey, rsa-encryption); this connection uses psk"},
		{"psk without a secret", "{method: psk}", "", "",
			"{method: psk}", "auth method psk needs a secret"},
		{"secret under pubkey", "{method: pubkey, secret: s3cret}", "", "",
			"s3cret", "auth.secret is a pre-shared key; method pubkey authenticates with certificates"},
		{"unknown method", "{method: rsa-sig}", "", "",
			"rsa-sig", `unknown auth method "rsa-sig"`},
		{"unknown key type", "{method: pubkey}\n    key-type: ecdsa-p224", "", "",
			"ecdsa-p224", `unknown key-type "ecdsa-p224" (did you mean "ecdsa-p256"? allowed: ecdsa-p256, ecdsa-p384, ecdsa-p521, rsa-2048, rsa-3072)`},
		{"key type under psk", "{secret: x}\n    key-type: ecdsa-p256", "", "",
			"ecdsa-p256", "key-type chooses the lab PKI's keys"},
		{"encryption to an ECDSA key type", "{method: rsa-encryption}\n    key-type: ecdsa-p256", "", "",
			"ecdsa-p256", "rsa-encryption encrypts to the peer's RSA key; key-type ecdsa-p256 is not RSA"},
		{"encryption with an ECDSA certificate", "{method: rsa-encryption-revised}", `, cert: ecgw.pem, key: ecgw.key, cacert: ca.pem`, "",
			"ecgw.pem", "rsa-encryption-revised encrypts to RSA keys; the key of ecgw.pem is ECDSA P-256"},
		{"encryption to an ECDSA peer-cert", "{method: rsa-encryption}", `, peer-cert: ecgw.pem`, "",
			"ecgw.pem", "rsa-encryption encrypts to the peer's RSA key; the key of ecgw.pem is ECDSA P-256"},
		{"aggressive encryption with two hashes", "{method: rsa-encryption}\n    ike: {mode: aggressive, proposals: [aes128-sha256-modp2048, aes128-sha1-modp2048]}", "", "",
			"aes128-sha1-modp2048", "Aggressive Mode with rsa-encryption hashes the responder's certificate (HASH(1)) in the first message, so all IKE proposals must share one hash"},
		{"aggressive revised encryption with two ciphers", "{method: rsa-encryption-revised}\n    ike: {mode: aggressive, proposals: [aes128-sha256-modp2048, aes256-sha256-modp2048]}", "", "",
			"aes256-sha256-modp2048", "Aggressive Mode with rsa-encryption-revised encrypts the first message's KE and ID with the cipher, so all IKE proposals must share one cipher"},
		{"keyid in the lab PKI", "{method: pubkey}", `, id: "keyid:opaque"`, "",
			`"keyid:opaque"`, "gw1 takes its certificate from the lab PKI, and a keyid: identity cannot be in a certificate"},
		{"bad dn", "{method: pubkey}", `, id: "dn:CN"`, "",
			`"dn:CN"`, `identity "dn:CN"`},
		{"unknown identity type", "{method: pubkey}", `, id: "sha1:abc"`, "",
			`"sha1:abc"`, `identity "sha1:abc" has the unknown type "sha1"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := certLab(tc.auth, tc.init, tc.resp)
			_, file, err := f.parse(src)
			if err == nil {
				t.Fatal("accepted")
			}
			want := at(file, src, tc.marker) + tc.want
			if !strings.Contains(err.Error(), want) {
				t.Fatalf("errors lack %q:\n%v", want, err)
			}
		})
	}
}

// The lab PKI gives a node one subject per key type.
func TestLabPKIIdentityRules(t *testing.T) {
	f := newPKIFiles(t)
	// A node with two dn: identities under one key type: one certificate
	// cannot hold both subjects.
	src := `name: twodn
topology:
  nodes:
    gw1: {kind: gateway}
    gw2: {kind: gateway}
  links:
    - endpoints: [gw1:eth0, gw2:eth0]
      addresses: [192.0.2.1/24, 192.0.2.2/24]
ipsec:
  a:
    auth: {method: pubkey}
    initiator: {node: gw1, id: "dn:CN=gw1"}
    responder: gw2
    child: {mode: transport}
  b:
    auth: {method: pubkey}
    initiator: {node: gw1, id: "dn:CN=other"}
    responder: gw2
    child: {mode: transport}
`
	_, file, err := f.parse(src)
	first := strings.TrimSuffix(at(file, src, `"dn:CN=gw1"`), ": ")
	want := at(file, src, `"dn:CN=other"`) + "gw1 already has the identity dn:CN=gw1 at " + first +
		"; the lab PKI gives a node one certificate per key type, with one subject"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("two dn: identities on one node: %v\nwant %q", err, want)
	}
	// Under two key types there are two certificates: fine.
	ok := strings.Replace(src, "  b:\n    auth: {method: pubkey}\n", "  b:\n    auth: {method: pubkey}\n    key-type: ecdsa-p256\n", 1)
	if _, _, err := f.parse(ok); err != nil {
		t.Fatalf("two dn: identities under two key types:\n%v", err)
	}
}

// A lab without files gets a lab PKI: one certificate per node and key
// type, whose subjectAltNames hold every identity the node uses with it and
// its IKE addresses, a dn: identity as the subject.
func TestLabPKIRequestsHoldEveryIdentity(t *testing.T) {
	src := `name: nofiles
topology:
  nodes:
    gw1: {kind: gateway}
    gw2: {kind: gateway}
    gw3: {kind: gateway}
  links:
    - endpoints: [gw1:eth0, gw2:eth0]
      addresses: [192.0.2.1/24, 192.0.2.2/24]
    - endpoints: [gw1:eth1, gw3:eth0]
      addresses: [198.51.100.1/24, 198.51.100.3/24]
ipsec:
  a:
    auth: {method: pubkey}
    initiator: {node: gw1, id: "fqdn:gw1.lab"}
    responder: {node: gw2, id: "dn:CN=gw2, O=Lab"}
    child: {mode: transport}
  b:
    auth: {method: pubkey}
    initiator: {node: gw1, address: 198.51.100.1, id: "email:gw1@lab"}
    responder: gw3
    child: {mode: transport}
  c:
    auth: {method: rsa-encryption}
    initiator: gw3
    responder: {node: gw1, address: 198.51.100.1}
    child: {mode: transport}
  d:
    auth: {method: pubkey}
    key-type: ecdsa-p384
    initiator: gw2
    responder: {node: gw1, id: "fqdn:gw1.lab"}
    child: {mode: transport}
  p:
    auth: {secret: x}
    initiator: {node: gw2, id: "fqdn:psk-only.lab"}
    responder: gw1
    child: {mode: transport}
`
	lab, err := Parse("lab.yaml", []byte(src))
	if err != nil {
		t.Fatalf("%v", err)
	}
	certs := map[string]LabCert{}
	var names []string
	for _, c := range lab.LabCerts() {
		certs[c.Name] = c
		names = append(names, c.Name)
	}
	if want := []string{"gw1.ecdsa-p384", "gw1.rsa-2048", "gw2.ecdsa-p384", "gw2.rsa-2048", "gw3"}; !slices.Equal(names, want) {
		t.Fatalf("lab certificates %v, want %v", names, want)
	}
	ips := func(c LabCert) []string {
		var out []string
		for _, ip := range c.Request.IPs {
			out = append(out, ip.String())
		}
		return out
	}
	gw1 := certs["gw1.rsa-2048"].Request
	if gw1.KeyType != pki.RSA2048 || !slices.Equal(gw1.DNSNames, []string{"gw1.lab"}) || !slices.Equal(gw1.Emails, []string{"gw1@lab"}) ||
		!slices.Equal(ips(certs["gw1.rsa-2048"]), []string{"192.0.2.1", "198.51.100.1"}) {
		t.Errorf("gw1's RSA certificate: %+v", gw1)
	}
	if dn, err := pki.FormatDN(gw1.RawSubject); err != nil || dn != "CN=gw1, O=ipseclab lab nofiles" {
		t.Errorf("gw1's subject %q (%v)", dn, err)
	}
	if p384 := certs["gw1.ecdsa-p384"].Request; p384.KeyType != pki.ECDSAP384 || !slices.Equal(p384.DNSNames, []string{"gw1.lab"}) || len(p384.Emails) != 0 {
		t.Errorf("gw1's P-384 certificate: %+v", p384)
	}
	gw2 := certs["gw2.rsa-2048"].Request
	if dn, err := pki.FormatDN(gw2.RawSubject); err != nil || dn != "CN=gw2, O=Lab" || len(gw2.DNSNames) != 0 {
		t.Errorf("gw2's subject %q (%v), want its dn: identity", dn, err)
	}
	if slices.Contains(certs["gw2.ecdsa-p384"].Request.DNSNames, "psk-only.lab") {
		t.Error("an identity of a psk connection went into a certificate")
	}
	if gw3 := certs["gw3"]; gw3.Request.KeyType != pki.RSA2048 || !slices.Equal(ips(gw3), []string{"198.51.100.3"}) {
		t.Errorf("gw3: %+v", gw3.Request)
	}
	// Renamed at deploy (--name), the subject follows.
	lab.Name = "renamed"
	if dn, _ := pki.FormatDN(lab.LabCerts()[0].Request.RawSubject); dn != "CN=gw1, O=ipseclab lab renamed" {
		t.Error("the subject does not follow the lab's name")
	}

	// The lab PKI issues them; UseLabPKI hands them to the sides.
	now := time.Now()
	ca, err := pki.NewCA(LabCAName(lab.Name), pki.RSA2048, now.Add(-time.Hour), now.Add(time.Hour), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	creds := map[string]*pki.Credential{}
	for _, c := range lab.LabCerts() {
		req := c.Request
		req.NotBefore, req.NotAfter = now.Add(-time.Hour), now.Add(time.Hour)
		if creds[c.Name], err = ca.Issue(req, rand.Reader); err != nil {
			t.Fatal(err)
		}
	}
	if err := lab.UseLabPKI(ca.Cert, creds); err != nil {
		t.Fatal(err)
	}
	for _, s := range lab.SidesOf("gw1") {
		switch s.Conn.Name {
		case "p":
			if s.Cred != nil || s.CACerts != nil || s.PeerCert != nil {
				t.Errorf("a psk side got certificates: %+v", s)
			}
			continue
		case "d":
			if s.Cred != creds["gw1.ecdsa-p384"] {
				t.Errorf("connection d: gw1 does not use its P-384 certificate")
			}
		default:
			if s.Cred != creds["gw1.rsa-2048"] {
				t.Errorf("connection %s: gw1 does not use its RSA certificate", s.Conn.Name)
			}
		}
		if len(s.CACerts) != 1 || !s.CACerts[0].Equal(ca.Cert) {
			t.Errorf("connection %s: gw1 does not trust the lab CA", s.Conn.Name)
		}
		if s.Conn.Name == "c" && (s.PeerCert == nil || !s.PeerCert.Equal(creds["gw3"].Chain[0])) {
			t.Errorf("rsa-encryption: gw1 does not know gw3's certificate beforehand")
		}
	}
	// Each credential certifies the identities its sides use.
	for _, node := range lab.NodeNames() {
		for _, s := range lab.SidesOf(node) {
			if s.Auth == AuthPSK {
				continue
			}
			typ, data, err := ParseID(s.Local.ID, s.Local.Address.Addr)
			if err != nil {
				t.Fatal(err)
			}
			if err := pki.CertifiesID(s.Cred.Chain[0], typ, data); err != nil {
				t.Errorf("%s on %s: %v", s.Conn.Name, node, err)
			}
			if !slices.ContainsFunc(s.Cred.Chain[0].IPAddresses, func(ip net.IP) bool { return ip.Equal(net.IP(s.Local.Address.AsSlice())) }) {
				t.Errorf("%s on %s: the IKE address %s is not in the certificate", s.Conn.Name, node, s.Local.Address)
			}
		}
	}
}

// The daemon has no lab PKI: certificate methods need the files, the
// encryption methods the peer's certificate too.
func TestDaemonCertificates(t *testing.T) {
	f := newPKIFiles(t)
	f.leaf(f.ca, "gw1", pki.IssueRequest{Subject: pkix.Name{CommonName: "gw1"}, KeyType: pki.RSA2048})
	f.leaf(f.ca, "gw2", pki.IssueRequest{Subject: pkix.Name{CommonName: "gw2"}, KeyType: pki.RSA2048})
	conf := func(auth, local string) string {
		return fmt.Sprintf(`node: d1
connections:
  vpn:
    local: {address: 192.0.2.1%s}
    remote: {address: 192.0.2.2}
    auth: %s
    child: {mode: transport}
`, local, auth)
	}
	parse := func(src string) (*DaemonConfig, string, error) {
		p := filepath.Join(f.dir, "daemon.yaml")
		if err := os.WriteFile(p, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := ParseDaemon(p, []byte(src))
		return c, p, err
	}
	src := conf("{method: pubkey}", "")
	if _, file, err := parse(src); err == nil || !strings.Contains(err.Error(), at(file, src, "{address: 192.0.2.1")+"pubkey needs this side's cert, key and cacert") {
		t.Errorf("pubkey without files: %v", err)
	}
	src = conf("{method: rsa-encryption}", ", cert: gw1.pem, key: gw1.key, cacert: ca.pem")
	if _, file, err := parse(src); err == nil || !strings.Contains(err.Error(), at(file, src, "{address: 192.0.2.1")+"rsa-encryption encrypts to the peer's public key, which must be known before the exchange: give peer-cert") {
		t.Errorf("rsa-encryption without peer-cert: %v", err)
	}
	src = conf("{method: rsa-encryption}", ", cert: gw1.pem, key: gw1.key, cacert: ca.pem, peer-cert: gw2.pem")
	c, _, err := parse(src)
	if err != nil {
		t.Fatal(err)
	}
	s := c.Connections["vpn"].Side
	if s.Auth != AuthRSAEncryption || s.Cred == nil || s.PeerCert == nil || s.PeerCert.Subject.CommonName != "gw2" || len(s.CACerts) != 1 || s.Local.ID != "dn:CN=gw1" {
		t.Errorf("daemon side: %+v", s)
	}
}

// Identities in each notation, and the payload each becomes.
func TestParseID(t *testing.T) {
	dn, err := pki.ParseDN("CN=gw-a, O=Lab")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		in   string
		typ  string
		data []byte
		err  string
	}{
		{in: "", typ: "IPV4_ADDR", data: []byte{192, 0, 2, 1}},
		{in: "198.51.100.7", typ: "IPV4_ADDR", data: []byte{198, 51, 100, 7}},
		{in: "ipv4:198.51.100.7", typ: "IPV4_ADDR", data: []byte{198, 51, 100, 7}},
		{in: "fqdn:vpn.lab", typ: "FQDN", data: []byte("vpn.lab")},
		{in: "vpn.lab", typ: "FQDN", data: []byte("vpn.lab")},
		{in: "email:a@lab", typ: "USER_FQDN", data: []byte("a@lab")},
		{in: "a@lab", typ: "USER_FQDN", data: []byte("a@lab")},
		{in: "keyid:#6b6579", typ: "KEY_ID", data: []byte("key")},
		{in: "dn:CN=gw-a, O=Lab", typ: "DER_ASN1_DN", data: dn},
		{in: "fqdn:", err: "has an empty value"},
		{in: "ipv4:vpn", err: "is not an IPv4 address"},
		{in: "x500:CN=a", err: `unknown type "x500"`},
	} {
		typ, data, err := ParseID(tc.in, netip.MustParseAddr("192.0.2.1"))
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: error %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || typ.String() != tc.typ || !bytes.Equal(data, tc.data) {
			t.Errorf("%q: %v %x %v, want %s %x", tc.in, typ, data, err, tc.typ, tc.data)
		}
	}
}

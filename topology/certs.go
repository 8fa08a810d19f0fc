package topology

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"time"

	"github.com/ipseclab/ipseclab/ipsec/isakmp"
	"github.com/ipseclab/ipseclab/ipsec/pki"
)

// Certs is one side's certificate material, as its IPsec implementation uses
// it: read from the files the lab file names, once, by validation, and
// completed at deploy by the lab PKI (Lab.UseLabPKI) for what the lab file
// leaves out.
type Certs struct {
	Own      *pki.Credential     // this side's chain (leaf first, without the CA) and key
	CAs      []*x509.Certificate // the CAs the peer's chain must lead to
	PeerCert *x509.Certificate   // peer-cert: the peer's certificate, known beforehand

	// OwnFromLab and CAsFromLab say that Own and CAs come from the lab PKI.
	OwnFromLab, CAsFromLab bool
}

// MaxCertFileSize bounds a certificate or key file: a chain of a few
// certificates is some kilobytes.
const MaxCertFileSize = 1 << 20

// FileReader reads a file that a lab file names (a certificate, a key) by the
// path the lab file writes.
type FileReader func(name string) ([]byte, error)

// DirReader reads paths relative to dir, and absolute ones as they are, at
// most MaxCertFileSize bytes of each.
func DirReader(dir string) FileReader {
	return func(name string) ([]byte, error) {
		p := name
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		f, err := os.Open(p)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		if st, err := f.Stat(); err == nil && st.IsDir() {
			return nil, fmt.Errorf("%s is a directory", p)
		}
		b, err := io.ReadAll(io.LimitReader(f, MaxCertFileSize+1))
		if err == nil && len(b) > MaxCertFileSize {
			return nil, fmt.Errorf("%s is larger than %d bytes (1 MiB), more than any certificate or key", p, MaxCertFileSize)
		}
		return b, err
	}
}

// FSReader reads paths relative to dir of fsys (the embedded labs).
func FSReader(fsys fs.FS, dir string) FileReader {
	return func(name string) ([]byte, error) {
		b, err := fs.ReadFile(fsys, path.Join(dir, filepath.ToSlash(name)))
		if err == nil && len(b) > MaxCertFileSize {
			return nil, fmt.Errorf("%s is larger than %d bytes (1 MiB), more than any certificate or key", name, MaxCertFileSize)
		}
		return b, err
	}
}

// certSide is one side of a connection as the certificate checks see it.
type certSide struct {
	path string // "ipsec.vpn.initiator"
	p    *Peer
	// inLab: the peer is a node of the lab, whose certificate the lab knows
	// (its files, or the lab PKI's); false in a daemon.
	peerInLab bool
	labPKI    bool // the lab PKI may supply what the files leave out (labs, not the daemon)
	// hybridClient: the client of a hybrid connection, which has no
	// certificate of its own (XAUTH proves it) and checks the gateway's.
	hybridClient bool
}

// certFields are a side's file fields, by their YAML key.
func (p *Peer) certFields() []struct{ key, value string } {
	return []struct{ key, value string }{{"cert", p.Cert}, {"key", p.Key}, {"cacert", p.CACert}, {"peer-cert", p.PeerCert}}
}

// sideCerts reads and checks the certificate files of one side of c, each
// problem at its field, and fills p.Certs.
func (v *labChecker) sideCerts(c *IPsecConn, s certSide) {
	p := s.p
	if !c.Auth.Method.Certificates() {
		for _, f := range p.certFields() {
			if f.value != "" {
				v.errorf(s.path+"."+f.key, "%s is for certificate authentication (pubkey, rsa-encryption); this connection uses %s", f.key, c.Auth.Method)
			}
		}
		return
	}
	certs := &Certs{}
	p.Certs = certs
	if s.hybridClient {
		v.hybridClientCerts(c, s)
		return
	}
	if c.Auth.Method == AuthHybrid && (p.Cert == "") != (p.Key == "") {
		v.errorf(s.path, "hybrid authenticates the gateway %s by its certificate: give its cert and key, or neither for the lab PKI's", p.Node)
	}
	var chain []*x509.Certificate
	var signer crypto.Signer
	if p.Cert != "" {
		chain = v.readCerts(s.path+".cert", p.Cert)
	}
	if p.Key != "" {
		signer = v.readKey(s.path+".key", p.Key)
	}
	switch {
	case p.Cert != "" && p.Key == "":
		v.errorf(s.path+".cert", "cert %s is given without its private key: add key: (or leave both out for the lab PKI's)", p.Cert)
	case p.Key != "" && p.Cert == "":
		v.errorf(s.path+".key", "key %s is given without its certificate: add cert: (or leave both out for the lab PKI's)", p.Key)
	}
	if len(chain) > 0 && signer != nil {
		if err := pki.KeyMatches(chain[0], signer); err != nil {
			v.errorf(s.path+".key", "key %s does not belong to certificate %s (%s): %v", p.Key, p.Cert, chain[0].Subject, err)
		} else {
			certs.Own = &pki.Credential{Chain: chain, Key: signer}
		}
	}
	if p.CACert != "" {
		certs.CAs = v.readCerts(s.path+".cacert", p.CACert)
	}
	if p.PeerCert != "" {
		if pc := v.readCerts(s.path+".peer-cert", p.PeerCert); len(pc) > 0 {
			certs.PeerCert = pc[0]
		}
	}
	if c.Auth.Method.Encrypts() {
		v.encryptionKeys(c, s, chain)
	}
	if !s.labPKI && (p.Cert == "" || p.Key == "" || p.CACert == "") {
		v.errorf(s.path, "%s needs this side's cert, key and cacert: there is no lab PKI outside a lab", c.Auth.Method)
	}
	if len(chain) == 0 {
		return
	}
	leaf := chain[0]
	// Without id:, a side with a certificate is its subject, as strongSwan's.
	if !p.idGiven && len(leaf.Subject.Names) > 0 {
		if dn, err := pki.FormatDN(leaf.RawSubject); err == nil {
			p.ID = "dn:" + dn
		}
	}
	if typ, data, err := ParseID(p.ID, p.Address.Addr); err == nil {
		if err := pki.CertifiesID(leaf, typ, data); err != nil {
			at := s.path + ".cert"
			if p.idGiven {
				at = s.path + ".id"
			}
			v.errorf(at, "identity %s is not in certificate %s: %v", idOrAddress(p), p.Cert, err)
		}
	}
	if p.CACert == "" {
		if s.labPKI {
			v.errorf(s.path+".cert", "cert %s is given without cacert: name the CA that its chain, and the peer's, lead to", p.Cert)
		}
		return
	}
	if len(certs.CAs) > 0 {
		if err := verifyStructure(chain, certs.CAs); err != nil {
			v.errorf(s.path+".cert", "the chain of %s does not lead to cacert %s: %v", p.Cert, p.CACert, err)
		}
	}
}

// hybridClientCerts checks the client side of a hybrid connection: it
// proves itself by XAUTH alone, with no certificate, and checks the
// gateway's against its cacert (or the lab CA).
func (v *labChecker) hybridClientCerts(c *IPsecConn, s certSide) {
	p := s.p
	for _, f := range []struct{ key, value string }{{"cert", p.Cert}, {"key", p.Key}} {
		if f.value != "" {
			v.errorf(s.path+"."+f.key, "hybrid authenticates the client %s by XAUTH alone, with no certificate of its own: remove %s (xauth-pubkey is the method with client certificates too)", p.Node, f.key)
		}
	}
	if p.CACert != "" {
		p.Certs.CAs = v.readCerts(s.path+".cacert", p.CACert)
	}
	if p.PeerCert != "" {
		if pc := v.readCerts(s.path+".peer-cert", p.PeerCert); len(pc) > 0 {
			p.Certs.PeerCert = pc[0]
		}
	}
	if !s.labPKI && p.CACert == "" {
		v.errorf(s.path, "a hybrid client needs cacert, the CA the gateway's certificate leads to: there is no lab PKI outside a lab")
	}
}

// verifyStructure checks that a chain leads to one of the CAs, leaving out
// what the negotiation itself judges, and what a lab may be about: validity
// dates and key usage (an expired certificate is a lesson, not a typo).
func verifyStructure(chain, roots []*x509.Certificate) error {
	// VerifyChain finds the path to a CA before it judges dates and usage.
	err := pki.VerifyChain(chain, roots, time.Now(), 0)
	if errors.Is(err, pki.ErrExpired) || errors.Is(err, pki.ErrNotYetValid) || errors.Is(err, pki.ErrKeyUsage) {
		return nil
	}
	return err
}

// encryptionKeys checks what public-key encryption needs: RSA keys on both
// sides, and the peer's certificate before the exchange.
func (v *labChecker) encryptionKeys(c *IPsecConn, s certSide, chain []*x509.Certificate) {
	p := s.p
	if len(chain) > 0 {
		if _, ok := chain[0].PublicKey.(*rsa.PublicKey); !ok {
			v.errorf(s.path+".cert", "%s encrypts to RSA keys; the key of %s is %s", c.Auth.Method, p.Cert, pki.DescribeKey(chain[0].PublicKey))
		}
	}
	if pc := p.Certs.PeerCert; pc != nil {
		if _, ok := pc.PublicKey.(*rsa.PublicKey); !ok {
			v.errorf(s.path+".peer-cert", "%s encrypts to the peer's RSA key; the key of %s is %s", c.Auth.Method, p.PeerCert, pki.DescribeKey(pc.PublicKey))
		}
	}
	if p.PeerCert == "" && !s.peerInLab {
		v.errorf(s.path, "%s encrypts to the peer's public key, which must be known before the exchange: give peer-cert", c.Auth.Method)
	}
}

// readCerts reads a certificate file, PEM or DER, reporting a problem at
// field.
func (v *labChecker) readCerts(field, name string) []*x509.Certificate {
	b, ok := v.readFile(field, name)
	if !ok {
		return nil
	}
	certs, err := pki.ParseCertificates(b)
	if err == nil && len(certs) == 0 {
		err = errors.New("it holds no certificate")
	}
	if err != nil {
		v.errorf(field, "%s is not a certificate (PEM or DER): %v", name, err)
		return nil
	}
	return certs
}

// readKey reads a private key file, PEM or DER, reporting a problem at field.
func (v *labChecker) readKey(field, name string) crypto.Signer {
	b, ok := v.readFile(field, name)
	if !ok {
		return nil
	}
	k, err := pki.ParsePrivateKey(b)
	if err != nil {
		v.errorf(field, "%s is not a private key (PKCS#1, PKCS#8 or SEC1, PEM or DER): %v", name, err)
		return nil
	}
	return k
}

// readFile reads a file the lab names.
func (v *labChecker) readFile(field, name string) ([]byte, bool) {
	read := v.lab.files
	if read == nil {
		read = DirReader(filepath.Dir(v.lab.File))
	}
	b, err := read(name)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			v.errorf(field, "%s: no such file (paths are relative to the lab file)", name)
		} else {
			v.errorf(field, "%s: %v", name, err)
		}
		return nil, false
	}
	return b, true
}

func idOrAddress(p *Peer) string {
	if p.ID != "" {
		return p.ID
	}
	return p.Address.String()
}

// labCertKey names a certificate of the lab PKI: a node's, for one key type.
type labCertKey struct {
	node string
	kt   KeyType
}

// labCertSpec is what validation learned that a certificate of the lab PKI
// must hold: every identity its node uses with it, and its IKE addresses.
type labCertSpec struct {
	labCertKey
	name     string // its files' name in the lab's pki/ directory
	dn       []byte // the subject, from a dn: identity
	dnID     string // that identity as written
	dnAt     string // where
	dnsNames []string
	emails   []string
	ips      []netip.Addr
}

// labPKI works out the lab PKI's certificates: one per node and key type,
// for the sides of certificate connections that name no files of their own.
func (v *labChecker) labPKI() {
	specs := map[labCertKey]*labCertSpec{}
	for _, name := range v.lab.ConnNames() {
		c := v.lab.IPsec[name]
		if !c.Auth.Method.Certificates() {
			continue
		}
		for _, side := range c.sides("ipsec." + name) {
			p := side.p
			if p.Certs == nil || p.Cert != "" || p.Key != "" || (side.client && c.Auth.Method == AuthHybrid) {
				continue
			}
			k := labCertKey{p.Node, c.KeyType}
			s := specs[k]
			if s == nil {
				s = &labCertSpec{labCertKey: k}
				specs[k] = s
			}
			if p.Address.IsValid() && !slices.Contains(s.ips, p.Address.Addr) {
				s.ips = append(s.ips, p.Address.Addr)
			}
			typ, data, err := ParseID(p.ID, p.Address.Addr)
			if err != nil {
				continue // reported at the id
			}
			at := side.path + ".id"
			if err := idInCertificate(typ); err != nil {
				v.errorf(at, "%s takes its certificate from the lab PKI, and %v: use another identity, or give cert and key", p.Node, err)
				continue
			}
			switch typ {
			case isakmp.IDDERASN1DN:
				if s.dn != nil && !bytes.Equal(s.dn, data) {
					v.errorf(at, "%s already has the identity %s at %s; the lab PKI gives a node one certificate per key type, with one subject: use one dn: for the node, or give cert and key",
						p.Node, s.dnID, v.lab.Pos(s.dnAt))
					continue
				}
				s.dn, s.dnID, s.dnAt = data, p.ID, at
			case isakmp.IDFQDN:
				s.dnsNames = appendNew(s.dnsNames, string(data))
			case isakmp.IDUserFQDN:
				s.emails = appendNew(s.emails, string(data))
			case isakmp.IDIPv4Addr, isakmp.IDIPv6Addr:
				if a, ok := netip.AddrFromSlice(data); ok && !slices.Contains(s.ips, a) {
					s.ips = append(s.ips, a)
				}
			}
		}
	}
	perNode := map[string]int{}
	for k := range specs {
		perNode[k.node]++
	}
	v.lab.labCerts = nil
	for k, s := range specs {
		s.name = k.node
		if perNode[k.node] > 1 {
			s.name = k.node + "." + string(k.kt)
		}
		v.lab.labCerts = append(v.lab.labCerts, s)
	}
	sort.Slice(v.lab.labCerts, func(i, j int) bool { return v.lab.labCerts[i].name < v.lab.labCerts[j].name })
}

func appendNew(list []string, s string) []string {
	if slices.Contains(list, s) {
		return list
	}
	return append(list, s)
}

// LabCert is a certificate that the lab PKI issues at deploy.
type LabCert struct {
	// Name is its files' name in the lab's pki/ directory: the node's name,
	// or node.key-type ("gw-a.ecdsa-p256") for a node that needs
	// certificates of several key types.
	Name string
	Node string
	// Request holds the subject as RawSubject (the node's dn: identity,
	// else CN=NODE, O=ipseclab lab LAB), the node's identities and IKE addresses as
	// subjectAltNames, and the key type; the dates are the issuer's.
	Request pki.IssueRequest
}

// LabCerts lists the certificates the lab PKI must issue, by name; none when
// every side of every certificate connection names its own files.
func (l *Lab) LabCerts() []LabCert {
	var out []LabCert
	for _, s := range l.labCerts {
		req := pki.IssueRequest{
			Subject:    pkix.Name{CommonName: s.node, Organization: []string{"ipseclab lab " + l.Name}},
			RawSubject: slices.Clone(s.dn),
			DNSNames:   slices.Clone(s.dnsNames),
			Emails:     slices.Clone(s.emails),
			KeyType:    s.kt,
		}
		// pkix.Name would write O before CN; the subject reads as a
		// strongSwan dn: identity would, the CN first. Node and lab names
		// need no escaping.
		if req.RawSubject == nil {
			if der, err := pki.ParseDN("CN=" + s.node + ", O=ipseclab lab " + l.Name); err == nil {
				req.RawSubject = der
			}
		}
		for _, a := range s.ips {
			req.IPs = append(req.IPs, net.IP(a.AsSlice()))
		}
		out = append(out, LabCert{Name: s.name, Node: s.node, Request: req})
	}
	return out
}

// LabCAName is the common name of a lab's CA.
func LabCAName(lab string) string { return "ipseclab " + lab + " CA" }

// UseLabPKI completes every certificate side that the lab file leaves to the
// lab PKI: its credential (creds, by LabCert.Name) where it names no cert and
// key, and the lab CA as the CA it trusts where it names no cacert.
func (l *Lab) UseLabPKI(ca *x509.Certificate, creds map[string]*pki.Credential) error {
	names := map[labCertKey]string{}
	for _, s := range l.labCerts {
		names[s.labCertKey] = s.name
	}
	for _, name := range l.ConnNames() {
		c := l.IPsec[name]
		if !c.Auth.Method.Certificates() {
			continue
		}
		for _, side := range c.sides("") {
			p := side.p
			if p.Certs == nil {
				p.Certs = &Certs{}
			}
			// A hybrid client has no certificate: XAUTH proves it.
			if p.Cert == "" && p.Key == "" && !(side.client && c.Auth.Method == AuthHybrid) {
				n := names[labCertKey{p.Node, c.KeyType}]
				cred := creds[n]
				if cred == nil || len(cred.Chain) == 0 {
					return fmt.Errorf("connection %s: the lab PKI has no certificate %q for %s", name, n, p.Node)
				}
				p.Certs.Own, p.Certs.OwnFromLab = cred, true
				// Without id:, the side is its certificate's subject, as a
				// side with its own files is (and as strongSwan's is), so
				// that both ends agree whoever's stack runs them.
				if !p.idGiven {
					if dn, err := pki.FormatDN(cred.Chain[0].RawSubject); err == nil && dn != "" {
						p.ID = "dn:" + dn
					}
				}
			}
			if p.CACert == "" {
				if ca == nil {
					return fmt.Errorf("connection %s: %s trusts the lab CA, and there is none", name, p.Node)
				}
				p.Certs.CAs, p.Certs.CAsFromLab = []*x509.Certificate{ca}, true
			}
		}
	}
	return nil
}

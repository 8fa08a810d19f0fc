//go:build linux

package main

import (
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ipseclab/ipseclab/ipsec/pki"
	"github.com/ipseclab/ipseclab/labrun"
	"github.com/ipseclab/ipseclab/topology"
)

func newPKICmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "pki show|export -t FILE",
		Short: "Show a deployed lab's certificates, or write its lab PKI out as PEM files",
	}
	var lf labFlags
	var asJSON bool
	show := &cobra.Command{
		Use:   "show -t FILE",
		Short: "List the certificate chains a lab's nodes authenticate with",
		Long: `show lists the certificates of a deployed lab: its lab PKI (the CA and one certificate per
node, made at deploy for the sides that name no cert files), then the certificates the lab
file names itself. For each: subject, issuer, subjectAltNames, key type and size, validity and
SHA-256 fingerprint. With --json, one object: {"lab", "dir", "ca", "certificates": [{"name",
"node", "source", "connections", "chain": [{"subject", "issuer", "sans", "key", "key_type",
"serial", "not_before", "not_after", "sha256"}]}]}, each chain leaf first.`,
		Args: noLabArgs(true),
		RunE: func(cmd *cobra.Command, _ []string) error {
			lab, l, err := labPKI(&lf)
			if err != nil {
				return err
			}
			out := describePKI(lab, l)
			return printJSONOr(asJSON, out, func() { printPKI(out) })
		},
	}
	lf.add(show, true)
	show.Flags().BoolVar(&asJSON, "json", false, "print JSON")

	var lf2 labFlags
	var force bool
	export := &cobra.Command{
		Use:   "export -t FILE [DIR]",
		Short: "Write the lab PKI's ca.pem, NODE.pem and NODE.key into DIR (default: the current directory)",
		Long: `export writes a deployed lab's lab PKI as PEM files: ca.pem (the lab CA), and NODE.pem with
NODE.key (PKCS#8, mode 0600) for each node's certificate, to load into Wireshark or to give a
real peer. A node with certificates of several key types has NODE.KEY-TYPE.pem and .key. It
refuses to replace a file that exists unless given --force.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := "."
			if len(args) == 1 {
				dir = args[0]
			}
			lab, l, err := labPKI(&lf2)
			if err != nil {
				return err
			}
			if l == nil {
				return fmt.Errorf("lab %s has no lab PKI: its certificate connections name their own files, or it has none", lab.Name)
			}
			names, err := exportPKI(l, dir, force)
			if err != nil {
				return err
			}
			fmt.Printf("wrote %s to %s\n", strings.Join(names, ", "), dir)
			return nil
		},
	}
	lf2.add(export, true)
	export.Flags().BoolVar(&force, "force", false, "replace files that exist")
	cmd.AddCommand(show, export)
	return cmd
}

// labPKI loads the lab the flags name and its lab PKI, nil when the lab
// needs none. The lab's sides get their lab credentials, so that each
// certificate can say which connections use it.
func labPKI(lf *labFlags) (*topology.Lab, *pki.Lab, error) {
	if err := labrun.CheckRoot(); err != nil {
		return nil, nil, err
	}
	lab, _, err := lf.load()
	if err != nil {
		return nil, nil, err
	}
	if _, err := labrun.ReadState(lab.Name); err != nil {
		return nil, nil, fmt.Errorf("%w (its lab PKI is made when it is deployed)", err)
	}
	if len(lab.LabCerts()) == 0 {
		return lab, nil, nil
	}
	dir := labrun.PKIDir(lab.Name)
	l, err := pki.ReadLabDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("lab %s has no lab PKI in %s: was it deployed before ipseclab made one?", lab.Name, dir)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("lab PKI in %s: %w", dir, err)
	}
	if err := lab.UseLabPKI(l.CA.Cert, l.Nodes); err != nil {
		return nil, nil, fmt.Errorf("the lab PKI in %s does not match the lab file: %w", dir, err)
	}
	return lab, l, nil
}

// certInfo is one certificate as `pki show` prints it.
type certInfo struct {
	Subject   string    `json:"subject"`
	Issuer    string    `json:"issuer"`
	SANs      []string  `json:"sans,omitempty"`
	Key       string    `json:"key"`                // algorithm and size: RSA-2048, ECDSA P-256
	KeyType   string    `json:"key_type,omitempty"` // in the lab file's words, when it is one of them
	Serial    string    `json:"serial"`
	NotBefore time.Time `json:"not_before"`
	NotAfter  time.Time `json:"not_after"`
	SHA256    string    `json:"sha256"` // of the DER, colon-separated hex as openssl and Wireshark print it
}

// pkiEntry is one credential: a certificate chain and who uses it.
type pkiEntry struct {
	Name        string     `json:"name"` // the lab PKI's file name, or the cert file as the lab file names it
	Node        string     `json:"node"`
	Source      string     `json:"source"` // "lab PKI" or "files"
	Connections []string   `json:"connections,omitempty"`
	Chain       []certInfo `json:"chain"`
}

type pkiShow struct {
	Lab          string     `json:"lab"`
	Dir          string     `json:"dir,omitempty"` // the lab PKI's directory
	CA           *certInfo  `json:"ca,omitempty"`  // the lab CA
	Certificates []pkiEntry `json:"certificates"`
}

func describePKI(lab *topology.Lab, l *pki.Lab) pkiShow {
	out := pkiShow{Lab: lab.Name, Certificates: []pkiEntry{}}
	if l != nil {
		ca := infoOf(l.CA.Cert)
		out.CA, out.Dir = &ca, labrun.PKIDir(lab.Name)
		for _, c := range lab.LabCerts() {
			cred := l.Nodes[c.Name]
			if cred == nil {
				continue
			}
			e := pkiEntry{Name: c.Name, Node: c.Node, Source: "lab PKI", Connections: usersOf(lab, cred)}
			for _, x := range append(cred.Chain, l.CA.Cert) {
				e.Chain = append(e.Chain, infoOf(x))
			}
			out.Certificates = append(out.Certificates, e)
		}
	}
	seen := map[*pki.Credential]bool{}
	for _, name := range lab.ConnNames() {
		c := lab.IPsec[name]
		for _, p := range append(c.Clients(), &c.Responder) {
			if p.Certs == nil || p.Certs.Own == nil || p.Certs.OwnFromLab || seen[p.Certs.Own] {
				continue
			}
			seen[p.Certs.Own] = true
			e := pkiEntry{Name: p.Cert, Node: p.Node, Source: "files", Connections: usersOf(lab, p.Certs.Own)}
			chain := p.Certs.Own.Chain
			for _, x := range chain {
				e.Chain = append(e.Chain, infoOf(x))
			}
			if ca := issuerIn(chain[len(chain)-1], p.Certs.CAs); ca != nil {
				e.Chain = append(e.Chain, infoOf(ca))
			}
			out.Certificates = append(out.Certificates, e)
		}
	}
	return out
}

// usersOf lists the connection sides that authenticate with cred.
func usersOf(lab *topology.Lab, cred *pki.Credential) []string {
	var out []string
	for _, name := range lab.ConnNames() {
		c := lab.IPsec[name]
		for _, p := range c.Clients() {
			if p.Certs != nil && p.Certs.Own == cred {
				out = append(out, name+" (initiator)")
			}
		}
		if p := &c.Responder; p.Certs != nil && p.Certs.Own == cred {
			out = append(out, name+" (responder)")
		}
	}
	return out
}

// issuerIn finds the CA among cas that issued c, unless c is one of them.
func issuerIn(c *x509.Certificate, cas []*x509.Certificate) *x509.Certificate {
	for _, ca := range cas {
		if !ca.Equal(c) && c.CheckSignatureFrom(ca) == nil {
			return ca
		}
	}
	return nil
}

func infoOf(c *x509.Certificate) certInfo {
	sum := sha256.Sum256(c.Raw)
	hexes := make([]string, len(sum))
	for i, b := range sum {
		hexes[i] = fmt.Sprintf("%02X", b)
	}
	info := certInfo{
		Subject: dnString(c.RawSubject, c.Subject.String()), Issuer: dnString(c.RawIssuer, c.Issuer.String()),
		Key: pki.DescribeKey(c.PublicKey), KeyType: string(labrun.KeyTypeOf(c)), Serial: fmt.Sprintf("%X", c.SerialNumber),
		NotBefore: c.NotBefore.UTC(), NotAfter: c.NotAfter.UTC(), SHA256: strings.Join(hexes, ":"),
	}
	for _, d := range c.DNSNames {
		info.SANs = append(info.SANs, "DNS:"+d)
	}
	for _, e := range c.EmailAddresses {
		info.SANs = append(info.SANs, "email:"+e)
	}
	for _, ip := range c.IPAddresses {
		info.SANs = append(info.SANs, "IP:"+ip.String())
	}
	for _, u := range c.URIs {
		info.SANs = append(info.SANs, "URI:"+u.String())
	}
	return info
}

// dnString writes a name in strongSwan's notation, as lab files write dn:
// identities.
func dnString(der []byte, fallback string) string {
	if s, err := pki.FormatDN(der); err == nil {
		return s
	}
	return fallback
}

func printPKI(s pkiShow) {
	if s.CA == nil && len(s.Certificates) == 0 {
		fmt.Printf("lab %s authenticates with no certificates\n", s.Lab)
		return
	}
	if s.CA != nil {
		fmt.Printf("lab PKI of %s, in %s\n\n", s.Lab, s.Dir)
		fmt.Println("CA")
		printCert(*s.CA)
	}
	for _, e := range s.Certificates {
		fmt.Printf("\n%s (node %s, %s", e.Name, e.Node, e.Source)
		if len(e.Connections) > 0 {
			fmt.Printf("; %s", strings.Join(e.Connections, ", "))
		}
		fmt.Println(")")
		for i, c := range e.Chain {
			if i > 0 && s.CA != nil && c.SHA256 == s.CA.SHA256 {
				fmt.Println("  issued by the lab CA above")
				continue
			}
			if i > 0 {
				fmt.Println("  issued by")
			}
			printCert(c)
		}
	}
}

func printCert(c certInfo) {
	row := func(k, v string) { fmt.Printf("  %-9s %s\n", k, v) }
	row("subject", c.Subject)
	if c.Issuer == c.Subject {
		row("issuer", c.Issuer+" (self-signed)")
	} else {
		row("issuer", c.Issuer)
	}
	if len(c.SANs) > 0 {
		row("SANs", strings.Join(c.SANs, ", "))
	}
	row("key", c.Key)
	const day = "2006-01-02 15:04:05 MST"
	row("valid", c.NotBefore.Format(day)+" to "+c.NotAfter.Format(day))
	row("serial", c.Serial)
	row("sha256", c.SHA256)
}

// exportPKI writes the lab PKI's CA certificate, and each certificate with
// its key, as PEM files into dir (without the CA's key), refusing to replace
// any file unless force. It returns the files' names.
func exportPKI(l *pki.Lab, dir string, force bool) ([]string, error) {
	names := []string{pki.CACertFile}
	for _, name := range slices.Sorted(maps.Keys(l.Nodes)) {
		names = append(names, name+".pem", name+".key")
	}
	if !force {
		for _, n := range names {
			if _, err := os.Lstat(filepath.Join(dir, n)); err == nil {
				return nil, fmt.Errorf("%s exists: give --force to replace it (and the other files export writes)", filepath.Join(dir, n))
			}
		}
	}
	out := &pki.Lab{CA: &pki.CA{Cert: l.CA.Cert}, Nodes: l.Nodes}
	return names, out.WriteDir(dir)
}

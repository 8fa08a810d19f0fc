package strongswan

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// The swanctl credential directories this package writes, relative to the
// node's directory (swanctl's SWANCTL_DIR). swanctl --load-all loads every
// file in them; pkcs8/ takes RSA and ECDSA keys alike.
const (
	x509Dir   = "x509"
	x509CADir = "x509ca"
	pkcs8Dir  = "pkcs8"
)

// credDirs are the directories Start empties and refills, so that a node's
// directory reused with another configuration keeps no credential of the
// last one.
var credDirs = []string{x509Dir, x509CADir, pkcs8Dir}

// credFile is one credential file: its path relative to the swanctl
// directory, its content and its mode.
type credFile struct {
	path string
	data []byte
	mode fs.FileMode
}

// The names of a connection's files. Connection names are unique and
// sectionName keeps them to letters, digits, '_', '.' and '-'; the fixed
// suffixes keep one connection's files from taking another's names.
func localCertName(conn string) string        { return conn + ".local.pem" }
func peerCertName(conn string) string         { return conn + ".peer.pem" }
func chainCertName(conn string, i int) string { return conn + ".chain-" + strconv.Itoa(i) + ".pem" }
func caCertName(conn string, i int) string    { return conn + ".ca-" + strconv.Itoa(i) + ".pem" }
func keyName(conn string) string              { return conn + ".key.pem" }

// credentialFiles are the files a pubkey connection needs: its certificate,
// intermediates, CA and pinned peer certificates as PEM, and its private key
// as PKCS#8 PEM (mode 0600). In Hybrid mode only the gateway has a
// certificate and key, and only the client trusts a CA. The configuration
// must be valid.
func (c Config) credentialFiles() ([]credFile, error) {
	var files []credFile
	cert := func(dir, name string, crt *x509.Certificate) {
		files = append(files, credFile{filepath.Join(dir, name), pemCert(crt), 0o644})
	}
	for _, conn := range c.Connections {
		if conn.remoteAuth() == "pubkey" {
			for i, crt := range conn.CACerts {
				cert(x509CADir, caCertName(conn.Name, i+1), crt)
			}
			if conn.PeerCert != nil {
				cert(x509Dir, peerCertName(conn.Name), conn.PeerCert)
			}
		}
		if conn.localAuth() != "pubkey" {
			continue // psk, or the Hybrid client: nothing of its own to show
		}
		cert(x509Dir, localCertName(conn.Name), conn.LocalCerts[0])
		for i, crt := range conn.LocalCerts[1:] {
			cert(x509CADir, chainCertName(conn.Name, i+1), crt)
		}
		der, err := x509.MarshalPKCS8PrivateKey(conn.PrivateKey)
		if err != nil {
			return nil, fmt.Errorf("strongswan: connection %q: private key: %w", conn.Name, err)
		}
		files = append(files, credFile{filepath.Join(pkcs8Dir, keyName(conn.Name)), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600})
	}
	return files, nil
}

func pemCert(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

// writeCredentials replaces the credential directories under dir with the
// given files. The directories are 0700: pkcs8/ holds keys, and charon's
// other directories are private too.
func writeCredentials(dir string, files []credFile) error {
	for _, d := range credDirs {
		p := filepath.Join(dir, d)
		if err := os.RemoveAll(p); err != nil {
			return err
		}
		if err := os.Mkdir(p, 0o700); err != nil {
			return err
		}
	}
	for _, f := range files {
		p := filepath.Join(dir, f.path)
		// O_EXCL: the directories were just emptied, so a second file of
		// the same name would be a naming bug, not something to overwrite.
		out, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, f.mode)
		if err != nil {
			return fmt.Errorf("strongswan: %w", err)
		}
		_, err = out.Write(f.data)
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("strongswan: %w", err)
		}
		// The umask may have narrowed the mode; certificates stay readable.
		if err := os.Chmod(p, f.mode); err != nil {
			return err
		}
	}
	return nil
}

// swanID turns an identity into strongSwan's notation: ipseclab's "dn:"
// prefix becomes a bare DN, which charon parses as an ASN.1 DN
// (strongSwan's own "asn1dn:" prefix takes DER in hex, not the text form).
func swanID(id string) string {
	if len(id) >= 3 && strings.EqualFold(id[:3], "dn:") {
		return strings.TrimSpace(id[3:])
	}
	return id
}

// checkCredentials asks charon whether it holds what each pubkey connection
// needs: swanctl reports a file it could not load but still succeeds, and
// charon would then fail only at the first negotiation.
func (c *Charon) checkCredentials(ctx context.Context, cfg Config) error {
	var need []Connection
	for _, conn := range cfg.Connections {
		if conn.localAuth() == "pubkey" || conn.remoteAuth() == "pubkey" {
			need = append(need, conn)
		}
	}
	if len(need) == 0 {
		return nil
	}
	certs, err := c.ListCerts(ctx)
	if err != nil {
		return err
	}
	held := func(want *x509.Certificate, withKey bool) bool {
		for _, h := range certs {
			if h.Cert.Equal(want) && (h.HasPrivKey || !withKey) {
				return true
			}
		}
		return false
	}
	for _, conn := range need {
		if conn.localAuth() == "pubkey" {
			leaf := conn.LocalCerts[0]
			switch {
			case !held(leaf, false):
				return fmt.Errorf("strongswan: connection %q: charon did not load the certificate %q (swanctl: %s)", conn.Name, leaf.Subject, c.loadOutput)
			case !held(leaf, true):
				return fmt.Errorf("strongswan: connection %q: charon did not load the private key of %q (swanctl: %s)", conn.Name, leaf.Subject, c.loadOutput)
			}
		}
		if conn.remoteAuth() != "pubkey" {
			continue
		}
		for _, ca := range conn.CACerts {
			if !held(ca, false) {
				return fmt.Errorf("strongswan: connection %q: charon did not load the CA certificate %q (swanctl: %s)", conn.Name, ca.Subject, c.loadOutput)
			}
		}
	}
	return nil
}

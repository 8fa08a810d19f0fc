package strongswan_test

import (
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipseclab/ipseclab/internal/testenv/netenv"
	"github.com/ipseclab/ipseclab/strongswan"
	"github.com/ipseclab/ipseclab/strongswan/swantest"
)

// logBook keeps the lines charon logs at level 1 and below.
type logBook struct {
	mu    sync.Mutex
	lines []string
}

func (b *logBook) add(l strongswan.LogLine) {
	if l.Level > 1 {
		return
	}
	b.mu.Lock()
	b.lines = append(b.lines, l.Text)
	b.mu.Unlock()
}

// wait waits until a line contains every one of substrs.
func (b *logBook) wait(ctx context.Context, t *testing.T, side string, substrs ...string) string {
	t.Helper()
	for {
		b.mu.Lock()
		for _, l := range b.lines {
			all := true
			for _, s := range substrs {
				all = all && strings.Contains(l, s)
			}
			if all {
				b.mu.Unlock()
				return l
			}
		}
		b.mu.Unlock()
		select {
		case <-ctx.Done():
			b.mu.Lock()
			defer b.mu.Unlock()
			t.Fatalf("%s never logged a line with %q; it logged:\n%s", side, substrs, strings.Join(b.lines, "\n"))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// TestCharonToCharonCertificates brings up IKEv1 between two charons that
// authenticate with certificates from a CA made for the test: RSA-2048 and
// ECDSA P-256 in Main Mode, RSA in Aggressive Mode, with DN and FQDN
// identities, and with the peer's certificate pinned.
func TestCharonToCharonCertificates(t *testing.T) {
	for _, tc := range []struct {
		name       string
		key        swantest.KeyType
		aggressive bool
		pin        bool
		fqdn       bool   // FQDN identities from the subjectAltNames, rather than the subject DN
		inter      bool   // A's certificate comes from an intermediate CA that B does not hold
		scheme     string // the signature scheme charon names when it verifies the peer (IKEv1: over HASH_I/HASH_R as is)
	}{
		{name: "MainModeRSA2048", key: swantest.RSA2048, scheme: "RSA_EMSA_PKCS1_NULL"},
		// charon 5.9.8 signs IKEv1's HASH as the digest itself (ECDSA_WITH_NULL,
		// r|s), the HASH made with HMAC-SHA-256 for P-256 whatever the PRF.
		{name: "MainModeECDSAP256", key: swantest.ECDSAP256, fqdn: true, pin: true, scheme: "ECDSA_WITH_NULL"},
		{name: "AggressiveModeRSA2048", key: swantest.RSA2048, aggressive: true, fqdn: true, scheme: "RSA_EMSA_PKCS1_NULL"},
		{name: "MainModeECDSAP256Intermediate", key: swantest.ECDSAP256, inter: true, scheme: "ECDSA_WITH_NULL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			certs := swantest.GenerateCerts(t, tc.key)
			certs.Pin = tc.pin
			if tc.inter {
				inter := swantest.Issue(t, &x509.Certificate{
					Subject:  pkix.Name{Organization: []string{"ipseclab test"}, CommonName: "ipseclab test intermediate"},
					KeyUsage: x509.KeyUsageCertSign,
					IsCA:     true,
				}, tc.key, certs.CA, certs.CAKey)
				leaf := swantest.Issue(t, swantest.LeafTemplate("gwA", swantest.FQDNA, swantest.OuterA), tc.key, inter.Chain[0], inter.Key)
				certs.A = swantest.Credential{Chain: append(leaf.Chain, inter.Chain...), Key: leaf.Key}
			}
			idA, idB := "dn:"+swantest.SubjectDN(certs.A.Chain[0]), "dn:"+swantest.SubjectDN(certs.B.Chain[0])
			if tc.fqdn {
				idA, idB = "fqdn:"+swantest.FQDNA, "fqdn:"+swantest.FQDNB
			}
			var logA, logB logBook
			p := swantest.StartPair(t, swantest.PairConfig{
				IKEProposal: "aes128-sha256-modp2048",
				ESPProposal: "aes128gcm16",
				Aggressive:  tc.aggressive,
				Certs:       certs,
				IDA:         idA,
				IDB:         idB,
				OnLogA:      logA.add,
				OnLogB:      logB.add,
			})
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()

			// charon holds its certificate with the key, and the CA.
			checkHeld(ctx, t, p.A.Charon, certs.A.Chain[0], certs.CA)
			checkHeld(ctx, t, p.B.Charon, certs.B.Chain[0], certs.CA)

			if err := p.A.Charon.Initiate(ctx, swantest.ConnName, swantest.ChildName); err != nil {
				t.Fatal(err)
			}
			a := establishedSA(ctx, t, p.A.Charon)
			b := establishedSA(ctx, t, p.B.Charon)
			if a.ICookie != b.ICookie || a.RCookie != b.RCookie {
				t.Errorf("cookies differ: A %016x/%016x, B %016x/%016x", a.ICookie, a.RCookie, b.ICookie, b.RCookie)
			}
			wantA, wantB := strings.TrimPrefix(idA, "dn:"), strings.TrimPrefix(idB, "dn:")
			if tc.fqdn {
				wantA, wantB = swantest.FQDNA, swantest.FQDNB
			}
			if a.LocalID != wantA || a.RemoteID != wantB || b.LocalID != wantB || b.RemoteID != wantA {
				t.Errorf("identities: A %q ↔ %q, B %q ↔ %q; want %q ↔ %q", a.LocalID, a.RemoteID, b.LocalID, b.RemoteID, wantA, wantB)
			}

			// Each side received the other's certificate and verified its
			// signature with the key in it.
			logA.wait(ctx, t, "A", "received end entity cert", "CN=gwB")
			logB.wait(ctx, t, "B", "received end entity cert", "CN=gwA")
			if tc.inter {
				// A sends the intermediate with its certificate, and B
				// builds the chain up to the root it trusts.
				logB.wait(ctx, t, "B", "received issuer cert", "CN=ipseclab test intermediate")
				logB.wait(ctx, t, "B", "using untrusted intermediate certificate", "CN=ipseclab test intermediate")
			}
			logA.wait(ctx, t, "A", "authentication of '"+wantB+"'", tc.scheme, "successful")
			logB.wait(ctx, t, "B", "authentication of '"+wantA+"'", tc.scheme, "successful")

			if err := swantest.UDPEcho(ctx, p.A.Netns, p.A.Inner, p.B.Netns, p.B.Inner, []byte("signed "+tc.name)); err != nil {
				t.Fatal(err)
			}

			// The key is on disk for charon's loader alone.
			fi, err := os.Stat(filepath.Join(p.A.Charon.Dir(), "pkcs8", swantest.ConnName+".key.pem"))
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != 0o600 {
				t.Errorf("private key mode %v, want 0600", fi.Mode().Perm())
			}
		})
	}
}

// checkHeld checks that charon lists the leaf with its private key and the CA.
func checkHeld(ctx context.Context, t *testing.T, c *strongswan.Charon, leaf, ca *x509.Certificate) {
	t.Helper()
	certs, err := c.ListCerts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var gotLeaf, gotCA bool
	for _, h := range certs {
		gotLeaf = gotLeaf || h.Cert.Equal(leaf) && h.HasPrivKey
		gotCA = gotCA || h.Cert.Equal(ca) && h.Flag == "CA"
	}
	if !gotLeaf || !gotCA {
		var held []string
		for _, h := range certs {
			held = append(held, h.Cert.Subject.String()+" flag "+h.Flag)
		}
		t.Errorf("charon holds %q: the leaf with its key %v, the CA %v", held, gotLeaf, gotCA)
	}
}

// TestCharonRejectsCertificateFromAnotherCA gives gateway A a certificate
// from a second CA that B does not trust: B must refuse A, and nothing is
// established.
func TestCharonRejectsCertificateFromAnotherCA(t *testing.T) {
	certs := swantest.GenerateCerts(t, swantest.ECDSAP256)
	certs.A = swantest.GenerateCerts(t, swantest.ECDSAP256).A
	var logA, logB logBook
	p := swantest.StartPair(t, swantest.PairConfig{
		IKEProposal: "aes128-sha256-ecp256",
		ESPProposal: "aes128gcm16",
		Certs:       certs,
		OnLogA:      logA.add,
		OnLogB:      logB.add,
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.A.Charon.Initiate(ctx, swantest.ConnName, swantest.ChildName); err == nil {
		t.Fatal("A's certificate from an untrusted CA was accepted")
	}
	// Both CAs are named alike: B finds no issuer whose key verifies A's
	// certificate, so it has no key to check A's signature with, and tells A.
	logB.wait(ctx, t, "B", "no trusted ECDSA public key found for 'O=ipseclab test, CN=gwA'")
	logB.wait(ctx, t, "B", "N(AUTH_FAILED)")
	for _, c := range []*strongswan.Charon{p.A.Charon, p.B.Charon} {
		sas, err := c.ListSAs(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, sa := range sas {
			if sa.State == "ESTABLISHED" {
				t.Errorf("an SA was established: %+v", sa)
			}
		}
	}
}

// TestCharonLoadsSharedCredentials starts one charon with two connections
// that use the same certificate, key and CA, as a node of a lab PKI does:
// each connection's copy loads, and charon holds one certificate with its key.
func TestCharonLoadsSharedCredentials(t *testing.T) {
	needCharon(t)
	certs := swantest.GenerateCerts(t, swantest.RSA2048)
	name, _ := netenv.Netns(t, "shared")
	cfg := strongswan.Config{}
	for i, conn := range []string{"one", "two"} {
		cfg.Connections = append(cfg.Connections, strongswan.Connection{
			Name:        conn,
			LocalAddrs:  []string{swantest.OuterA.String()},
			RemoteAddrs: []string{fmt.Sprintf("192.0.2.%d", 10+i)},
			Proposals:   []string{"aes128-sha256-modp2048"},
			LocalAuth:   "pubkey",
			RemoteAuth:  "pubkey",
			LocalCerts:  certs.A.Chain,
			PrivateKey:  certs.A.Key,
			CACerts:     []*x509.Certificate{certs.CA},
			Children:    []strongswan.Child{{Name: conn + "-child", LocalTS: []string{"10.1.0.1/32"}, RemoteTS: []string{"10.2.0.1/32"}}},
		})
	}
	c := swantest.StartCharon(t, name, cfg, strongswan.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	held, err := c.ListCerts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	leaves := 0
	for _, h := range held {
		if h.Cert.Equal(certs.A.Chain[0]) {
			leaves++
			if !h.HasPrivKey {
				t.Error("charon lists the certificate without its key")
			}
		}
	}
	if leaves != 1 {
		t.Errorf("charon lists the certificate %d times, want once", leaves)
	}
	for _, f := range []string{"x509/one.local.pem", "x509/two.local.pem", "pkcs8/one.key.pem", "pkcs8/two.key.pem", "x509ca/one.ca-1.pem", "x509ca/two.ca-1.pem"} {
		if _, err := os.Stat(filepath.Join(c.Dir(), f)); err != nil {
			t.Error(err)
		}
	}
}

package ike

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net/netip"
	"testing"
	"time"

	"github.com/ipseclab/ipseclab/ipsec/isakmp"
	"github.com/ipseclab/ipseclab/ipsec/keymat"
	"github.com/ipseclab/ipseclab/ipsec/proposal"
)

// pkencFixture is what FuzzOpenSealed needs once: an RSA key and a
// certificate for each side (RSA-1024, so that the fuzzer spends its time
// in our code rather than in modular exponentiation), a Diffie-Hellman key,
// and the suite.
type pkencFixture struct {
	keys  [2]*rsa.PrivateKey
	certs [2]*x509.Certificate
	dh    *keymat.PrivateKey
	suite proposal.Proposal
}

func newPkencFixture(t testing.TB) *pkencFixture {
	fx := &pkencFixture{}
	for i, cn := range []string{"gw-i", "gw-r"} {
		k, err := rsa.GenerateKey(rand.Reader, 1024)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(int64(i + 1)), Subject: pkix.Name{CommonName: cn},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageKeyEncipherment}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
		if err != nil {
			t.Fatal(err)
		}
		if fx.certs[i], err = x509.ParseCertificate(der); err != nil {
			t.Fatal(err)
		}
		fx.keys[i] = k
	}
	ps, err := proposal.ParseList(proposal.IKE, []string{"aes128-sha256-curve25519"})
	if err != nil {
		t.Fatal(err)
	}
	fx.suite = ps[0]
	g, _ := keymat.LookupGroup(isakmp.GroupCurve25519)
	if fx.dh, err = g.GenerateKey(rand.Reader); err != nil {
		t.Fatal(err)
	}
	return fx
}

// sa is an ISAKMP SA of the side role at the key exchange of its mode,
// authenticating with public-key encryption (revised or not), as far as
// open and seal look at one.
func (fx *pkencFixture) sa(role Role, mode Mode, revised bool) *isakmpSA {
	me, peer := 0, 1
	if role == Responder {
		me, peer = 1, 0
	}
	method := AuthRSAEncryption
	if revised {
		method = AuthRSARevisedEncryption
	}
	e := &Engine{rand: rand.Reader, clock: SystemClock{}}
	c := &conn{cfg: Connection{Name: "fuzz", Mode: mode, Proposals: []proposal.Proposal{fx.suite},
		Auth: Auth{Method: method, Chain: []*x509.Certificate{fx.certs[me]}, Key: fx.keys[me], PeerCert: fx.certs[peer]}}}
	c.localID = Identity{Type: isakmp.IDFQDN, Data: []byte(fx.certs[me].Subject.CommonName)}
	sa := &isakmpSA{e: e, conn: c, role: role, mode: mode,
		ckyI: isakmp.Cookie{1, 2, 3, 4, 5, 6, 7, 8}, ckyR: isakmp.Cookie{8, 7, 6, 5, 4, 3, 2, 1},
		remote: netip.MustParseAddrPort("192.0.2.1:500")}
	sa.choice.attrs, _ = phase1Suite(fx.suite)
	sa.p1 = &phase1{auth: newPkencAuth(e, &c.cfg.Auth), dh: fx.dh}
	return sa
}

// message is what the side role sends at its key exchange, sealed.
func (fx *pkencFixture) message(t testing.TB, role Role, mode Mode, revised bool) []byte {
	sa := fx.sa(role, mode, revised)
	nonce := make([]byte, 32)
	sa.e.random(nonce)
	natd := &isakmp.NATD{Hash: make([]byte, 32)}
	payloads := []isakmp.Payload{&isakmp.KE{Data: fx.dh.Public()}, &isakmp.Nonce{Data: nonce}, natd, natd}
	ex := isakmp.ExchangeMainMode
	if mode == AggressiveMode {
		ex = isakmp.ExchangeAggressive
		offer := phase1Offer(&sa.conn.cfg)
		payloads = []isakmp.Payload{offer, &isakmp.KE{Data: fx.dh.Public()}, &isakmp.Nonce{Data: nonce}, sa.conn.localID.Payload(), &isakmp.VendorID{Data: []byte("vid")}}
		if role == Responder {
			payloads = append(payloads, &isakmp.Hash{Data: make([]byte, 32)}, natd, natd)
		}
	}
	out, err := sa.p1.auth.(sealer).seal(sa, payloads)
	if err != nil {
		t.Fatal(err)
	}
	m := &isakmp.Message{Header: sa.header(ex, 0), Payloads: out}
	b, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// FuzzOpenSealed feeds arbitrary key exchange messages (MM3, MM4, AM1,
// AM2) to the receive path of public-key encryption: the engine's decoding,
// then the method's open, which decrypts the nonce with our RSA key and,
// for the revised method, what follows it under Ke. The bits of mode say
// which: 1 the revised method, 2 Aggressive Mode, 4 the responder receives.
// Whatever comes, open must neither panic nor fail for a payload that does
// not decrypt (the only error is HASH(1) naming another certificate), and
// what it leaves must be usable: a nonce of 8 to 256 bytes, an ID, a KE
// our Diffie-Hellman key accepts.
func FuzzOpenSealed(f *testing.F) {
	fx := newPkencFixture(f)
	for mode := range uint8(8) {
		receiver, m, revised := fx.params(mode)
		f.Add(mode, fx.message(f, receiver.other(), m, revised))
	}
	f.Add(uint8(0), []byte{})
	f.Add(uint8(5), []byte("not an ISAKMP message, but long enough to have a header"))
	f.Fuzz(func(t *testing.T, mode uint8, data []byte) {
		if len(data) > 512 {
			return
		}
		msg, err := decode(data, true)
		if err != nil {
			return
		}
		receiver, m, revised := fx.params(mode)
		sa := fx.sa(receiver, m, revised)
		id, err := sa.p1.auth.(sealer).open(sa, msg)
		var ae *authError
		switch {
		case err != nil && (!errors.As(err, &ae) || ae.notify != isakmp.NotifyCertificateUnavailable || receiver != Responder):
			t.Fatalf("open failed with %v", err)
		case err != nil || id == nil:
			return
		}
		nonce := isakmp.First[*isakmp.Nonce](msg)
		if n := len(nonce.Data); n < 8 || n > 256 {
			t.Fatalf("open left a nonce of %d bytes", n)
		}
		if revised {
			ke := isakmp.First[*isakmp.KE](msg)
			if ke == nil {
				return // none sent: the mode says so
			}
			if _, err := fx.dh.SharedSecret(ke.Data); err != nil {
				t.Fatalf("open left a KE that Diffie-Hellman refuses: %v", err)
			}
		}
	})
}

func (fx *pkencFixture) params(mode uint8) (receiver Role, m Mode, revised bool) {
	receiver, m = Initiator, MainMode
	if mode&2 != 0 {
		m = AggressiveMode
	}
	if mode&4 != 0 {
		receiver = Responder
	}
	return receiver, m, mode&1 != 0
}

// The seeds of FuzzOpenSealed are messages that open reads back whole.
func TestOpenSealedSeeds(t *testing.T) {
	fx := newPkencFixture(t)
	for mode := range uint8(8) {
		receiver, m, revised := fx.params(mode)
		msg, err := decode(fx.message(t, receiver.other(), m, revised), true)
		if err != nil {
			t.Fatalf("mode %d: %v", mode, err)
		}
		sa := fx.sa(receiver, m, revised)
		id, err := sa.p1.auth.(sealer).open(sa, msg)
		a := sa.p1.auth.(*pkencAuth)
		if err != nil || id == nil || len(a.undecrypted) > 0 {
			t.Errorf("mode %d: open = %v, %v; did not decrypt: %v", mode, id, err, a.undecrypted)
		}
		if want := fx.certs[map[Role]int{Initiator: 1, Responder: 0}[receiver]].Subject.CommonName; id != nil && string(id.Data) != want {
			t.Errorf("mode %d: the peer's ID reads %s, want %s", mode, id, want)
		}
	}
}

package ike_test

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"testing"

	"github.com/ipseclab/ipseclab/events"
	"github.com/ipseclab/ipseclab/ipsec/ike"
	"github.com/ipseclab/ipseclab/ipsec/pki"
)

// An independent check of public-key encryption: from the recorded wire and
// the two private keys alone, with the standard library and RFC 2409's
// formulas written out below (and no code of the engine's: not package
// isakmp to parse, not keymat to derive), recompute the decrypted nonces,
// KEs and IDs, SKEYID, HASH_I and HASH_R, and find them in the messages.
// MM5/MM6 (AM3) are encrypted under Ka, which needs g^xy, which only the
// engines' Diffie-Hellman keys know: Ka comes from the engine's published
// keys, and the rest is checked against it (SKEYID, the phase 1 IV, and
// for the revised method Ne_i, Ke_i, Ne_r, Ke_r).
//
// The suite is aes128-sha256-modp2048: prf = HMAC-SHA-256, hash = SHA-256,
// AES-128-CBC.

// Payload types (RFC 2408 §3.1) and the exchange's flag this test reads.
const (
	ptSA, ptKE, ptID, ptHash, ptNonce = 1, 4, 5, 8, 10
	flagE                             = 1
)

type rawPayload struct {
	t    byte
	body []byte
}

// rawMessage splits a datagram (RFC 2408 §3.1: 28-byte header, Next Payload
// at 16, Flags at 19) into its cookies and its payloads; an encrypted one
// is decrypted first, with key and iv.
type rawMessage struct {
	ckyI, ckyR []byte
	encrypted  bool
	body       []byte // what follows the header, as sent
	payloads   []rawPayload
}

func parseRaw(t *testing.T, d []byte, key, iv []byte) rawMessage {
	t.Helper()
	m := rawMessage{ckyI: d[0:8], ckyR: d[8:16], encrypted: d[19]&flagE != 0, body: d[28:]}
	chain := m.body
	if m.encrypted {
		block, err := aes.NewCipher(key)
		if err != nil {
			t.Fatal(err)
		}
		chain = make([]byte, len(m.body))
		cipher.NewCBCDecrypter(block, iv).CryptBlocks(chain, m.body)
	}
	for next := d[16]; next != 0; {
		n := int(binary.BigEndian.Uint16(chain[2:4]))
		m.payloads = append(m.payloads, rawPayload{next, chain[4:n]})
		next, chain = chain[0], chain[n:]
	}
	return m
}

func (m rawMessage) first(pt byte) []byte {
	for _, p := range m.payloads {
		if p.t == pt {
			return p.body
		}
	}
	return nil
}

func prf(key []byte, data ...[]byte) []byte {
	h := hmac.New(sha256.New, key)
	for _, d := range data {
		h.Write(d)
	}
	return h.Sum(nil)
}

func hash(data ...[]byte) []byte {
	h := sha256.New()
	for _, d := range data {
		h.Write(d)
	}
	return h.Sum(nil)
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// keyExchange is what one side's MM3/MM4 (AM1/AM2) hid, decrypted.
type keyExchange struct {
	hash1         []byte // a HASH before the nonce: HASH(1) from the initiator
	hashR         []byte // a HASH after it
	nonce, ke, id []byte
	ne, ke2       []byte // the revised method's Ne and Ke
}

// openKeyExchange decrypts one side's key exchange message with the
// receiver's private key: §5.2 the ID and NONCE bodies with PKCS#1 v1.5;
// §5.3 the NONCE so, then every payload after it under
//
//	Ne = prf(N_b, CKY), Ke = the first 16 bytes of Ne (SHA-256 gives 32)
//
// in AES-128-CBC from a zero IV, chained from payload to payload, each
// padded with zeros and a last byte counting them.
func openKeyExchange(t *testing.T, m rawMessage, priv *rsa.PrivateKey, revised bool, cky []byte) keyExchange {
	t.Helper()
	var kx keyExchange
	rsaDecrypt := func(what string, ct []byte) []byte {
		plain, err := rsa.DecryptPKCS1v15(nil, priv, ct)
		if err != nil {
			t.Fatalf("%s does not decrypt with the private key: %v", what, err)
		}
		return plain
	}
	var block cipher.Block
	var iv []byte
	afterNonce := false
	for _, p := range m.payloads {
		switch {
		case afterNonce && revised:
			if len(p.body)%16 != 0 || len(p.body) == 0 {
				t.Fatalf("payload %d after the nonce is %d bytes, not whole AES blocks", p.t, len(p.body))
			}
			plain := make([]byte, len(p.body))
			cipher.NewCBCDecrypter(block, iv).CryptBlocks(plain, p.body)
			iv = p.body[len(p.body)-16:]
			n := int(plain[len(plain)-1])
			if n > 15 || !bytes.Equal(plain[len(plain)-1-n:len(plain)-1], make([]byte, n)) {
				t.Fatalf("payload %d: padding %x is not RFC 2409 §5.3's", p.t, plain[len(plain)-1-n:])
			}
			plain = plain[:len(plain)-1-n]
			switch p.t {
			case ptKE:
				kx.ke = plain
			case ptID:
				kx.id = plain
			}
		case p.t == ptHash && kx.nonce == nil:
			kx.hash1 = p.body
		case p.t == ptHash:
			kx.hashR = p.body
		case p.t == ptNonce:
			kx.nonce = rsaDecrypt("NONCE", p.body)
			afterNonce = true
			if revised {
				kx.ne = prf(kx.nonce, cky)
				kx.ke2 = kx.ne[:16]
				var err error
				if block, err = aes.NewCipher(kx.ke2); err != nil {
					t.Fatal(err)
				}
				iv = make([]byte, 16)
			}
		case p.t == ptKE:
			kx.ke = p.body
		case p.t == ptID:
			kx.id = rsaDecrypt("ID", p.body)
		}
	}
	if len(kx.nonce) < 8 || len(kx.nonce) > 256 || kx.ke == nil || kx.id == nil {
		t.Fatalf("the key exchange message hid nonce %x, KE %d bytes, ID %x", kx.nonce, len(kx.ke), kx.id)
	}
	return kx
}

func TestPublicKeyEncryptionTranscript(t *testing.T) {
	pk := newTestPKI(t, pki.RSA2048, pairEpoch.AddDate(0, -1, 0), pairEpoch.AddDate(1, 0, 0))
	privI, privR := pk.i.Key.(*rsa.PrivateKey), pk.r.Key.(*rsa.PrivateKey)
	certI, certR := pk.i.Chain[0], pk.r.Chain[0]
	for _, tc := range []struct {
		method ike.AuthKind
		mode   ike.Mode
	}{
		{ike.AuthRSAEncryption, ike.MainMode},
		{ike.AuthRSARevisedEncryption, ike.MainMode},
		{ike.AuthRSAEncryption, ike.AggressiveMode},
		{ike.AuthRSARevisedEncryption, ike.AggressiveMode},
	} {
		t.Run(tc.mode.String()+"/"+tc.method.String(), func(t *testing.T) {
			revised := tc.method == ike.AuthRSARevisedEncryption
			ci, cr := pkencConns(t, tc.mode, tc.method, pk)
			bus := events.NewBus("transcript", events.WithHistory(4096))
			p := newPairKeys(t, 5, ci, cr, bus, true)
			if err := p.initiate(t); err != nil {
				t.Fatalf("initiate: %v", err)
			}
			log := p.wire.log
			keys := findEvents(bus.Since(0), events.KeysDerived)
			if len(keys) == 0 {
				t.Fatal("no keys published")
			}
			published := func(name string) []byte {
				b, err := hex.DecodeString(keys[0].Fields[name].(string))
				if err != nil {
					t.Fatalf("published %s: %v", name, err)
				}
				return b
			}

			// The initiator's key exchange message (MM3 or AM1), and the
			// responder's (MM4 or AM2); SAi_b from MM1 or AM1.
			iKX, rKX, saMsg := 2, 3, 0
			if tc.mode == ike.AggressiveMode {
				iKX, rKX = 0, 1
			}
			mi, mr := parseRaw(t, log[iKX].data, nil, nil), parseRaw(t, log[rKX].data, nil, nil)
			saib := parseRaw(t, log[saMsg].data, nil, nil).first(ptSA)
			ckyI, ckyR := mi.ckyI, mr.ckyR
			ki := openKeyExchange(t, mi, privR, revised, ckyI)
			kr := openKeyExchange(t, mr, privI, revised, ckyR)
			if tc.mode == ike.AggressiveMode {
				kr.hashR = mr.first(ptHash)
			}

			// HASH(1): the hash of the certificate the initiator encrypted to.
			if !bytes.Equal(ki.hash1, hash(certR.Raw)) {
				t.Errorf("HASH(1) = %x, want SHA-256 of the responder's certificate", ki.hash1)
			}
			// The IDs: ID_DER_ASN1_DN (9), protocol and port 0, the DN of
			// each side's certificate.
			for _, c := range []struct {
				id   []byte
				cert *x509.Certificate
			}{{ki.id, certI}, {kr.id, certR}} {
				if want := cat([]byte{9, 0, 0, 0}, c.cert.RawSubject); !bytes.Equal(c.id, want) {
					t.Errorf("decrypted ID %x, want %x (%s)", c.id, want, c.cert.Subject)
				}
			}
			gxi, gxr := ki.ke, kr.ke
			if len(gxi) != 256 || len(gxr) != 256 {
				t.Errorf("g^xi of %d bytes, g^xr of %d: MODP 2048 values are 256", len(gxi), len(gxr))
			}

			// SKEYID = prf(hash(Ni_b | Nr_b), CKY-I | CKY-R), and the hashes
			// over the decrypted IDs.
			skeyid := prf(hash(ki.nonce, kr.nonce), ckyI, ckyR)
			hashI := prf(skeyid, cat(gxi, gxr, ckyI, ckyR, saib, ki.id))
			hashR := prf(skeyid, cat(gxr, gxi, ckyR, ckyI, saib, kr.id))
			if !bytes.Equal(skeyid, published("skeyid")) {
				t.Errorf("SKEYID %x, the engine's %x", skeyid, published("skeyid"))
			}
			if revised {
				for name, want := range map[string][]byte{"ne_i": ki.ne, "ke_i": ki.ke2, "ne_r": kr.ne, "ke_r": kr.ke2} {
					if !bytes.Equal(want, published(name)) {
						t.Errorf("%s %x, the engine's %x", name, want, published(name))
					}
				}
			}

			// App. B: Ka is SKEYID_e's first 16 bytes, the first IV
			// hash(g^xi | g^xr) cut to the block, then the last cipher
			// block of the message before.
			ka := published("ka")
			if !bytes.Equal(ka, published("skeyid_e")[:16]) {
				t.Errorf("Ka %x is not the start of SKEYID_e", ka)
			}
			iv := hash(gxi, gxr)[:16]
			if !bytes.Equal(iv, published("iv")) {
				t.Errorf("phase 1 IV %x, the engine's %x", iv, published("iv"))
			}
			if tc.mode == ike.MainMode {
				mm5 := parseRaw(t, log[4].data, ka, iv)
				mm6 := parseRaw(t, log[5].data, ka, mm5.body[len(mm5.body)-16:])
				if got := mm5.first(ptHash); !bytes.Equal(got, hashI) {
					t.Errorf("MM5 carries %x, HASH_I is %x", got, hashI)
				}
				if got := mm6.first(ptHash); !bytes.Equal(got, hashR) {
					t.Errorf("MM6 carries %x, HASH_R is %x", got, hashR)
				}
				if mm5.first(ptID) != nil || mm6.first(ptID) != nil {
					t.Error("MM5 or MM6 carries an ID: it went encrypted in MM3/MM4")
				}
			} else {
				if !bytes.Equal(kr.hashR, hashR) {
					t.Errorf("AM2 carries %x, HASH_R is %x", kr.hashR, hashR)
				}
				am3 := parseRaw(t, log[2].data, ka, iv)
				if got := am3.first(ptHash); !bytes.Equal(got, hashI) {
					t.Errorf("AM3 carries %x, HASH_I is %x", got, hashI)
				}
			}
		})
	}
}

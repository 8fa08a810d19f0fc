package keymat

import (
	"bytes"
	"errors"
	"testing"

	"github.com/ipseclab/ipseclab/ipsec/isakmp"
)

// TestKeyMatExpansion checks the Quick Mode expansion K1 | K2 | ... against the
// vectors NSS generated for CKM_NSS_IKE1_APP_B_PRF_DERIVE in "quick mode"
// (ike-sha{1,256}-vectors.h, cases 14–16): K1 = prf(SKEYID_d, seed),
// Kn = prf(SKEYID_d, K(n-1) | seed), with the one-byte seed 0x00 — which is
// what KeyMat hashes for protocol 0, no SPI, no nonces and no PFS secret.
func TestKeyMatExpansion(t *testing.T) {
	cases := []struct {
		hash    isakmp.HashAlgorithm
		skeyidD string
		km132   string
	}{
		{isakmp.HashSHA1, "63e81194946ebd05df7df5ebf5d8750056bf1f1d",
			"933347a07de5782247dd36d1562ffe0eecade1ebaeaa476a5f578c34a9b2b7101a621202f" +
				"61db924c5ef9efa3bb2698095841603b7ac8a880329a927ecd4ad53a944b607a5ac2f3d15" +
				"4e2748c188d7370d76be83fc204fdacf0f66b99dd760ba619ffac65eda1420c8a936dac5a" +
				"599afaf4043b29ef2b65dc042724355b550875316c6fd"},
		{isakmp.HashSHA2_256, "5f00d1bd2c58ec224b1e6b71fa0f19a1faa7a193952c444411b47c1a9d8ba6fe",
			"b10fff32cbeaa1e7afe6ab0b191e0bd63cd524849a4b56019146d232a24cf9af59f18ed9a" +
				"abbb2dbbafecf48d72a34a8f72fab2ff4f37e5c917288a78ce00933612e9531a7469995c7" +
				"f7cc33c7627cac3efbc819330c4fe3bfa3788799630f37bcb74800d82bbebd17b1906e304" +
				"a786f4f810c266c15be1a30576039c293272748d65966"},
	}
	for _, c := range cases {
		k := &Phase1Keys{PRF: mustPRF(t, c.hash), SKEYIDd: unhex(t, c.skeyidD)}
		want := unhex(t, c.km132)
		for _, n := range []int{132, 32, 15, 0} {
			if got := k.KeyMat(0, nil, nil, nil, nil, n); !bytes.Equal(got, want[:n]) {
				t.Errorf("%s: KEYMAT(%d) = %x", c.hash, n, got)
			}
		}
	}
}

// TestKeyMatInputs checks what goes into KEYMAT (RFC 2409 §5.5): the PFS
// secret first when there is one, then protocol, SPI, Ni_b and Nr_b.
func TestKeyMatInputs(t *testing.T) {
	prf := mustPRF(t, isakmp.HashSHA2_256)
	k := &Phase1Keys{PRF: prf, SKEYIDd: []byte("skeyid_d")}
	spi, ni, nr, gqm := []byte{0xc0, 1, 2, 3}, []byte("initiator nonce"), []byte("responder nonce"), []byte("g(qm)^xy")
	k1 := prf.Compute(k.SKEYIDd, []byte{byte(isakmp.ProtocolESP)}, spi, ni, nr)
	k2 := prf.Compute(k.SKEYIDd, k1, []byte{byte(isakmp.ProtocolESP)}, spi, ni, nr)
	if got := k.KeyMat(isakmp.ProtocolESP, spi, nil, ni, nr, 64); !bytes.Equal(got, append(k1, k2...)) {
		t.Errorf("KEYMAT without PFS")
	}
	pfs := prf.Compute(k.SKEYIDd, gqm, []byte{byte(isakmp.ProtocolESP)}, spi, ni, nr)
	if got := k.KeyMat(isakmp.ProtocolESP, spi, gqm, ni, nr, 32); !bytes.Equal(got, pfs) {
		t.Errorf("KEYMAT with PFS")
	}
	// The two directions differ only by the SPI, which is the destination's.
	if bytes.Equal(k.KeyMat(isakmp.ProtocolESP, []byte{1, 1, 1, 1}, nil, ni, nr, 32), k.KeyMat(isakmp.ProtocolESP, []byte{2, 2, 2, 2}, nil, ni, nr, 32)) {
		t.Errorf("KEYMAT ignores the SPI")
	}
}

func TestKeyLengths(t *testing.T) {
	cases := []struct {
		proto            isakmp.ProtocolID
		id               isakmp.TransformID
		bits             uint16
		auth             isakmp.AuthAlgorithm
		enc, salt, integ int
		unsupported      bool
	}{
		{isakmp.ProtocolESP, isakmp.ESPAESCBC, 128, isakmp.AuthAlgHMACSHA1, 16, 0, 20, false},
		{isakmp.ProtocolESP, isakmp.ESPAESCBC, 256, isakmp.AuthAlgHMACSHA256, 32, 0, 32, false},
		{isakmp.ProtocolESP, isakmp.ESPAESCBC, 0, isakmp.AuthAlgHMACSHA512, 16, 0, 64, false},
		{isakmp.ProtocolESP, isakmp.ESPAESGCM16, 128, 0, 16, 4, 0, false},
		{isakmp.ProtocolESP, isakmp.ESPAESGCM16, 256, 0, 32, 4, 0, false},
		{isakmp.ProtocolESP, isakmp.ESPAESCTR, 192, isakmp.AuthAlgAESXCBCMAC, 24, 4, 16, false},
		{isakmp.ProtocolESP, isakmp.ESPAESCCM8, 128, 0, 16, 3, 0, false},
		{isakmp.ProtocolESP, isakmp.ESP3DES, 0, isakmp.AuthAlgHMACMD5, 24, 0, 16, false},
		{isakmp.ProtocolESP, isakmp.ESPDES, 0, isakmp.AuthAlgHMACSHA1, 8, 0, 20, false},
		{isakmp.ProtocolESP, isakmp.ESPNull, 0, isakmp.AuthAlgHMACSHA384, 0, 0, 48, false},
		{isakmp.ProtocolAH, isakmp.AHSHA2_256, 0, isakmp.AuthAlgHMACSHA256, 0, 0, 32, false},
		{isakmp.ProtocolIPComp, isakmp.IPCompDeflate, 0, 0, 0, 0, 0, false},
		{isakmp.ProtocolESP, isakmp.ESPAESCBC, 100, isakmp.AuthAlgHMACSHA1, 0, 0, 0, true},
		{isakmp.ProtocolESP, isakmp.ESP3DES, 128, isakmp.AuthAlgHMACSHA1, 0, 0, 0, true},
		{isakmp.ProtocolESP, isakmp.ESPBlowfish, 128, isakmp.AuthAlgHMACSHA1, 0, 0, 0, true},
		{isakmp.ProtocolESP, isakmp.ESPAESCBC, 128, isakmp.AuthAlgKPDK, 0, 0, 0, true},
		{isakmp.ProtocolAH, isakmp.AHSHA1, 0, 0, 0, 0, 0, true},
		{isakmp.ProtocolISAKMP, isakmp.TransformKeyIKE, 0, 0, 0, 0, 0, true},
	}
	for _, c := range cases {
		enc, salt, integ, err := KeyLengths(c.proto, c.id, c.bits, c.auth)
		name := isakmp.TransformName(c.proto, c.id)
		if c.unsupported {
			if !errors.Is(err, ErrUnsupported) {
				t.Errorf("%s/%d/%s: %v", name, c.bits, c.auth, err)
			}
			continue
		}
		if err != nil || enc != c.enc || salt != c.salt || integ != c.integ {
			t.Errorf("%s/%d/%s: %d %d %d %v, want %d %d %d", name, c.bits, c.auth, enc, salt, integ, err, c.enc, c.salt, c.integ)
		}
	}
}

func TestIPsecKeysSplitInOrder(t *testing.T) {
	k := &Phase1Keys{PRF: mustPRF(t, isakmp.HashSHA1), SKEYIDd: []byte("d")}
	spi, ni, nr := []byte{9, 9, 9, 9}, []byte("ni"), []byte("nr")
	keys, err := k.IPsecKeys(isakmp.ProtocolESP, isakmp.ESPAESGCM16, 256, 0, spi, nil, ni, nr)
	if err != nil {
		t.Fatal(err)
	}
	km := k.KeyMat(isakmp.ProtocolESP, spi, nil, ni, nr, 36)
	if !bytes.Equal(keys.Encryption, km[:32]) || !bytes.Equal(keys.Salt, km[32:]) || len(keys.Integrity) != 0 {
		t.Errorf("GCM keys not cut as key | salt")
	}
	keys, err = k.IPsecKeys(isakmp.ProtocolESP, isakmp.ESPAESCBC, 128, isakmp.AuthAlgHMACSHA256, spi, nil, ni, nr)
	if err != nil {
		t.Fatal(err)
	}
	km = k.KeyMat(isakmp.ProtocolESP, spi, nil, ni, nr, 48)
	if !bytes.Equal(keys.Encryption, km[:16]) || len(keys.Salt) != 0 || !bytes.Equal(keys.Integrity, km[16:]) {
		t.Errorf("CBC keys not cut as encryption | integrity")
	}
	if _, err := k.IPsecKeys(isakmp.ProtocolESP, isakmp.ESPBlowfish, 0, 0, spi, nil, ni, nr); err == nil {
		t.Errorf("unsupported transform accepted")
	}
}

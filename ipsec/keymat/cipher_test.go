package keymat

import (
	"bytes"
	"errors"
	"testing"

	"github.com/ipseclab/ipseclab/ipsec/isakmp"
)

// TestRFC3602AESCBC runs RFC 3602 §4 test cases 1–4 (AES-128-CBC) through the
// phase 1 cipher and the CBC helpers ISAKMP encrypts with.
func TestRFC3602AESCBC(t *testing.T) {
	cases := []struct{ key, iv, plain, cipher string }{
		{"06a9214036b8a15b512e03d534120006", "3dafba429d9eb430b422da802c9fac41",
			hexOf([]byte("Single block msg")), "e353779c1079aeb82708942dbe77181a"},
		{"c286696d887c9aa0611bbb3e2025a45a", "562e17996d093d28ddb3ba695a2e6f58",
			"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
			"d296cd94c2cccf8a3a863028b5e1dc0a7586602d253cfff91b8266bea6d61ab1"},
		{"6c3ea0477630ce21a2ce334aa746c2cd", "c782dc4c098c66cbd9cd27d825682c81",
			hexOf([]byte("This is a 48-byte message (exactly 3 AES blocks)")),
			"d0a02b3836451753d493665d33f0e8862dea54cdb293abc7506939276772f8d5021c19216bad525c8579695d83ba2684"},
		{"56e47a38c5598974bc46903dba290349", "8ce82eefbea0da3c44699ed7db51b7d9",
			"a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedf",
			"c30e32ffedc0774e6aff6af0869f71aa0f3af07a9a31a9c684db207eb0ef8e4e35907aa632c3ffdf868bb7b29d3d46ad83ce9f9a102ee99d49a53e87f4c3da55"},
	}
	c, err := NewCipher(isakmp.EncAESCBC, 128)
	if err != nil {
		t.Fatal(err)
	}
	for i, tc := range cases {
		block, err := c.NewBlock(unhex(t, tc.key))
		if err != nil {
			t.Fatal(err)
		}
		ct, err := isakmp.EncryptCBC(block, unhex(t, tc.iv), unhex(t, tc.plain))
		if err != nil || !bytes.Equal(ct, unhex(t, tc.cipher)) {
			t.Errorf("case %d: encrypt %x, %v", i+1, ct, err)
		}
		pt, err := isakmp.DecryptCBC(block, unhex(t, tc.iv), unhex(t, tc.cipher))
		if err != nil || !bytes.Equal(pt, unhex(t, tc.plain)) {
			t.Errorf("case %d: decrypt %x, %v", i+1, pt, err)
		}
	}
}

func hexOf(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}

func TestCipherParameters(t *testing.T) {
	for _, c := range []struct {
		alg             isakmp.EncryptionAlgorithm
		bits            uint16
		key, block      int
		wantUnsupported bool
	}{
		{isakmp.EncDES, 0, 8, 8, false},
		{isakmp.EncDES, 64, 8, 8, false},
		{isakmp.Enc3DES, 0, 24, 8, false},
		{isakmp.Enc3DES, 192, 24, 8, false},
		{isakmp.EncAESCBC, 128, 16, 16, false},
		{isakmp.EncAESCBC, 192, 24, 16, false},
		{isakmp.EncAESCBC, 256, 32, 16, false},
		{isakmp.EncAESCBC, 0, 0, 0, true},
		{isakmp.EncAESCBC, 512, 0, 0, true},
		{isakmp.Enc3DES, 128, 0, 0, true},
		{isakmp.EncBlowfish, 128, 0, 0, true},
	} {
		ciph, err := NewCipher(c.alg, c.bits)
		if c.wantUnsupported {
			if !errors.Is(err, ErrUnsupported) {
				t.Errorf("%s/%d: %v", c.alg, c.bits, err)
			}
			continue
		}
		if err != nil || ciph.KeySize() != c.key || ciph.BlockSize() != c.block || ciph.Algorithm() != c.alg {
			t.Errorf("%s/%d: %+v %v", c.alg, c.bits, ciph, err)
			continue
		}
		block, err := ciph.NewBlock(make([]byte, c.key))
		if err != nil || block.BlockSize() != c.block {
			t.Errorf("%s/%d: NewBlock %v", c.alg, c.bits, err)
		}
		if _, err := ciph.NewBlock(make([]byte, c.key+1)); err == nil {
			t.Errorf("%s/%d: wrong key length accepted", c.alg, c.bits)
		}
	}
}

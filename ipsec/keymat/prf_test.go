package keymat

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/ipseclab/ipseclab/ipsec/isakmp"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatalf("bad hex in test: %v", err)
	}
	return b
}

func mustPRF(t testing.TB, h isakmp.HashAlgorithm) PRF {
	t.Helper()
	p, err := NewPRF(h)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// hmacCase is one test case of RFC 2202 or RFC 4231: key, data and the
// expected output (truncated where the RFC gives only a prefix).
type hmacCase struct {
	key, data []byte
	want      string
}

// RFC 2202 §2 (HMAC-MD5) and §3 (HMAC-SHA-1), test cases 1–7.
func rfc2202Cases(sha1 bool) []hmacCase {
	cases := []struct {
		key, data []byte
		md5, sha1 string
	}{
		{bytes.Repeat([]byte{0x0b}, 16), []byte("Hi There"), "9294727a3638bb1c13f48ef8158bfc9d", ""},
		{[]byte("Jefe"), []byte("what do ya want for nothing?"), "750c783e6ab0b503eaa86e310a5db738", "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"},
		{bytes.Repeat([]byte{0xaa}, 16), bytes.Repeat([]byte{0xdd}, 50), "56be34521d144c88dbb8c733f0e8b3f6", ""},
		{seq(1, 25), bytes.Repeat([]byte{0xcd}, 50), "697eaf0aca3a3aea3a75164746ffaa79", "4c9007f4026250c6bc8414f9bf50c86c2d7235da"},
		{bytes.Repeat([]byte{0x0c}, 16), []byte("Test With Truncation"), "56461ef2342edc00f9bab995690efd4c", ""},
		{bytes.Repeat([]byte{0xaa}, 80), []byte("Test Using Larger Than Block-Size Key - Hash Key First"), "6b1ab7fe4bd7bf8f0b62e6ce61b9d0cd", "aa4ae5e15272d00e95705637ce8a3b55ed402112"},
		{bytes.Repeat([]byte{0xaa}, 80), []byte("Test Using Larger Than Block-Size Key and Larger Than One Block-Size Data"), "6f630fad67cda0ee1fb1f562db3aa53e", "e8e99d0f45237d786d6bbaa7965c7808bbff1a91"},
	}
	// The SHA-1 cases 1, 3 and 5 use 20-byte keys where the MD5 ones use 16.
	sha1Only := map[int]hmacCase{
		0: {bytes.Repeat([]byte{0x0b}, 20), []byte("Hi There"), "b617318655057264e28bc0b6fb378c8ef146be00"},
		2: {bytes.Repeat([]byte{0xaa}, 20), bytes.Repeat([]byte{0xdd}, 50), "125d7342b9ac11cd91a39af48aa17b4f63f175d3"},
		4: {bytes.Repeat([]byte{0x0c}, 20), []byte("Test With Truncation"), "4c1a03424b55e07fe7f27be1d58bb9324a9a5a04"},
	}
	var out []hmacCase
	for i, c := range cases {
		switch {
		case !sha1:
			out = append(out, hmacCase{c.key, c.data, c.md5})
		case c.sha1 == "":
			out = append(out, sha1Only[i])
		default:
			out = append(out, hmacCase{c.key, c.data, c.sha1})
		}
	}
	return out
}

func seq(from, to byte) []byte {
	var b []byte
	for c := from; c <= to; c++ {
		b = append(b, c)
	}
	return b
}

// RFC 4231 §4.2–4.8, test cases 1–7 for SHA-256, SHA-384 and SHA-512. Case 5
// gives only the first 128 bits of the output.
func rfc4231Cases(h isakmp.HashAlgorithm) []hmacCase {
	keys := [][]byte{bytes.Repeat([]byte{0x0b}, 20), []byte("Jefe"), bytes.Repeat([]byte{0xaa}, 20), seq(1, 25),
		bytes.Repeat([]byte{0x0c}, 20), bytes.Repeat([]byte{0xaa}, 131), bytes.Repeat([]byte{0xaa}, 131)}
	data := [][]byte{[]byte("Hi There"), []byte("what do ya want for nothing?"), bytes.Repeat([]byte{0xdd}, 50),
		bytes.Repeat([]byte{0xcd}, 50), []byte("Test With Truncation"), []byte("Test Using Larger Than Block-Size Key - Hash Key First"),
		[]byte("This is a test using a larger than block-size key and a larger than block-size data. The key needs to be hashed before being used by the HMAC algorithm.")}
	want := map[isakmp.HashAlgorithm][]string{
		isakmp.HashSHA2_256: {
			"b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
			"5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
			"773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe",
			"82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b",
			"a3b6167473100ee06e0c796c2955552b",
			"60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
			"9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
		},
		isakmp.HashSHA2_384: {
			"afd03944d84895626b0825f4ab46907f15f9dadbe4101ec682aa034c7cebc59cfaea9ea9076ede7f4af152e8b2fa9cb6",
			"af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e8e2240ca5e69e2c78b3239ecfab21649",
			"88062608d3e6ad8a0aa2ace014c8a86f0aa635d947ac9febe83ef4e55966144b2a5ab39dc13814b94e3ab6e101a34f27",
			"3e8a69b7783c25851933ab6290af6ca77a9981480850009cc5577c6e1f573b4e6801dd23c4a7d679ccf8a386c674cffb",
			"3abf34c3503b2a23a46efc619baef897",
			"4ece084485813e9088d2c63a041bc5b44f9ef1012a2b588f3cd11f05033ac4c60c2ef6ab4030fe8296248df163f44952",
			"6617178e941f020d351e2f254e8fd32c602420feb0b8fb9adccebb82461e99c5a678cc31e799176d3860e6110c46523e",
		},
		isakmp.HashSHA2_512: {
			"87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cdedaa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854",
			"164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737",
			"fa73b0089d56a284efb0f0756c890be9b1b5dbdd8ee81a3655f83e33b2279d39bf3e848279a722c806b485a47e67c807b946a337bee8942674278859e13292fb",
			"b0ba465637458c6990e5a8c5f61d4af7e576d97ff94b872de76f8050361ee3dba91ca5c11aa25eb4d679275cc5788063a5f19741120c4f2de2adebeb10a298dd",
			"415fad6271580a531d4179bc891d87a6",
			"80b24263c7c1a3ebb71493c1dd7be8b49b46d1f41b4aeec1121b013783f8f3526b56d037e05f2598bd0fd2215d6a1e5295e64f73f63f0aec8b915a985d786598",
			"e37b6a775dc87dbaa4dfa9f96e5e3ffddebd71f8867289865df5a32d20cdc944b6022cac3c4982b10d5eeb55c3e4de15134676fb6de0446065c97440fa8c6a58",
		},
	}[h]
	var out []hmacCase
	for i := range keys {
		out = append(out, hmacCase{keys[i], data[i], want[i]})
	}
	return out
}

func TestPRFKnownAnswers(t *testing.T) {
	suites := map[isakmp.HashAlgorithm][]hmacCase{
		isakmp.HashMD5:      rfc2202Cases(false),
		isakmp.HashSHA1:     rfc2202Cases(true),
		isakmp.HashSHA2_256: rfc4231Cases(isakmp.HashSHA2_256),
		isakmp.HashSHA2_384: rfc4231Cases(isakmp.HashSHA2_384),
		isakmp.HashSHA2_512: rfc4231Cases(isakmp.HashSHA2_512),
	}
	for h, cases := range suites {
		p := mustPRF(t, h)
		if p.Algorithm() != h {
			t.Errorf("Algorithm = %v", p.Algorithm())
		}
		for i, c := range cases {
			// Feed the data in two pieces: prf(key, a | b) is one HMAC over the
			// concatenation.
			half := len(c.data) / 2
			got := p.Compute(c.key, c.data[:half], c.data[half:])
			if len(got) != p.Size() {
				t.Errorf("%s: %d-byte output, Size %d", h, len(got), p.Size())
			}
			if want := unhex(t, c.want); !bytes.Equal(got[:len(want)], want) {
				t.Errorf("%s case %d: %x, want %s", h, i+1, got, c.want)
			}
		}
	}
}

func TestPRFUnsupported(t *testing.T) {
	for _, h := range []isakmp.HashAlgorithm{0, isakmp.HashTiger, 7} {
		if _, err := NewPRF(h); !errors.Is(err, ErrUnsupported) {
			t.Errorf("hash %d: %v", h, err)
		}
	}
}

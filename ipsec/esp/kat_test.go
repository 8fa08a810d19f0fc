package esp

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fixedIV makes seal use a published IV instead of a fresh one.
func fixedIV(iv []byte) func([]byte, uint64) { return func(dst []byte, _ uint64) { copy(dst, iv) } }

// sealVector protects payload with c and returns the ESP packet.
func sealVector(c *espCipher, payload []byte, nh byte, spi uint32, seq uint64) []byte {
	buf := make([]byte, 64+len(payload)+64)
	copy(buf[48:], payload)
	s, e := c.seal(buf, 48, 48+len(payload), nh, spi, seq)
	return buf[s:e]
}

// RFC 3602 §4, cases 5 to 8: ESP packets with AES-CBC-128 and no
// authentication. Each "Packet" is the ESP header, IV and ciphertext; the
// plaintext payloads are an ICMP echo (transport, next header 1) and whole IP
// packets (tunnel, next header 4).
func TestRFC3602ESPCases(t *testing.T) {
	cases := []struct {
		name, key, iv string
		spi           uint32
		seq           uint64
		nh            byte
		payload, want string
	}{
		{"case5", "90d382b410eeba7ad938c46cec1a82bf", "e96e8c08ab465763fd098d45dd3ff893", 0x4321, 1, 1,
			"08000ebda70a00008e9c083db95b070008090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f3031323334353637",
			"0000432100000001e96e8c08ab465763fd098d45dd3ff893f663c25d325c18c6a9453e194e120849a4870b66cc6b9965330013b4898dc856a4699e523a55db080b59ec3a8e4b7e52775b07d1db34ed9c538ab50c551b874aa269add047ad2d5913ac19b7cfbad4a6"},
		{"case6", "90d382b410eeba7ad938c46cec1a82bf", "69d08df7d203329db093fc4924e5bd80", 0x4321, 8, 1,
			"0800b5e8a80a0500a69c083d0b660e00777777777777777777777777",
			"000043210000000869d08df7d203329db093fc4924e5bd80f51995881ec4e0c4488987ce742e8109689bb379d2d750c0d915dca346a89f75"},
		{"case7", "0123456789abcdef0123456789abcdef", "f4e765244f6407adf13dc1380f673f37", 0x8765, 2, 4,
			"45000054090400004001f988c0a87b03c0a87bc808009f76a90a0100b49c083d02a2040008090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f3031323334353637",
			"0000876500000002f4e765244f6407adf13dc1380f673f37773b5241a4c449225e4f3ce5ed611b0c237ca96cf74a93013c1b0ea1a0cf70f8e4ecaec78ac53aad7a0f022b859243c647752e94a859352b8a4d4d2decd136e5c177f132ad3fbfb2201ac9904c74ee0a109e0ca1e4dfe9d5a100b842f1c22f0d"},
		{"case8", "0123456789abcdef0123456789abcdef", "85d47224b5f3dd5d2101d4ea8dffab22", 0x8765, 5, 4,
			"45000044090c00004001f990c0a87b03c0a87bc80800d63caa0a0200c69c083da3de0300ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
			"000087650000000585d47224b5f3dd5d2101d4ea8dffab2215b92683819596a8047232cc00f7048fe45318e11f8a0f62ede3c3fc61203bb50f980a08c9843fd3a1b06d5c07ff9639b7eb7dfb3512e5de435e7207ed971ef3d2726d9b5ef6affc6d17a0decbb13892"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := newESPCipher(EncAESCBC128, unhex(t, tc.key), nil, IntegNone, nil, false)
			if err != nil {
				t.Fatal(err)
			}
			c.makeIV = fixedIV(unhex(t, tc.iv))
			payload, want := unhex(t, tc.payload), unhex(t, tc.want)
			got := sealVector(c, payload, tc.nh, tc.spi, tc.seq)
			if !bytes.Equal(got, want) {
				t.Fatalf("sealed\n got %x\nwant %x", got, want)
			}
			if err := c.checkLength(want); err != nil {
				t.Fatal(err)
			}
			plain := make([]byte, len(want))
			n, nh, err := c.open(plain, want, tc.seq)
			if err != nil || nh != tc.nh || !bytes.Equal(plain[:n], payload) {
				t.Fatalf("open: err %v nh %d payload %x", err, nh, plain[:n])
			}
		})
	}
}

// The ESP test cases of draft-mcgrew-gcm-test-01 (McGrew and Viega's GCM
// vectors as ESP packets, RFC 4106). The nonce is salt (4 bytes, after the key
// in KEYMAT) and explicit IV (8); the AAD is SPI and sequence number, 12 bytes
// with ESN. The plaintext is payload, padding, pad length and next header.
func TestGCMESPVectors(t *testing.T) {
	vectors := []struct{ key, nonce, plaintext, aad, ctext, tag string }{
		{"4c80cdefbb5d10da906ac73c3613a634", "2e443b684956ed7e3b244cfe",
			"45000048699a000080114db7c0a80102c0a801010a9bf15638d301000001000000000000045f736970045f756470037369700963796265726369747902646b000021000101020201",
			"000043218765432100000000",
			"fecf537e729d5b07dc30df528dd22b768d1b98736696a6fd348509fa13ceac34cfa2436f14a3f3cf65925bf1f4a13c5d15b21e1884f5ff6247aeabb786b93bce61bc17d768fd9732",
			"459018148f6cbe722fd04796562dfdb4"},
		{"feffe9928665731c6d6a8f9467308308", "cafebabefacedbaddecaf888",
			"4500003e698f000080114dccc0a80102c0a801010a980035002a2343b2d001000001000000000000037369700963796265726369747902646b00000100010001",
			"0000a5f80000000a",
			"deb22cd9b07c72c16e3a65beeb8df304a5a5897d33ae530f1ba76d5d114d2a5c3de81827c10e9a4f51330d0eec416642cfbb85a5b47e48a4ec3b9ba95d918bd1",
			"83b70d3aa8bc6ee4c309e9d85a41ad4a"},
		{"abbccddef00112233445566778899aababbccddef00112233445566778899aab", "112233440102030405060708",
			"4500003069a6400080062690c0a801029389155e0a9e008b2dc57ee0000000007002400020bf0000020405b40101040201020201",
			"4a2cbfe300000002",
			"ff425c9b724599df7a3bcd510194e00d6a78107f1b0b1cbf06efae9d65a5d763748a637985771d347f0545659f14e99def842d8e",
			"b335f4eecfdbf831824b4c4915956c96"},
		{"00000000000000000000000000000000", "000000000000000000000000",
			"4500003c99c500008001cb7a40679318010101010800075c020044006162636465666768696a6b6c6d6e6f707172737475767761626364656667686901020201",
			"0000000000000001",
			"4688daf2f973a392732909c331d56d60f694abaa414b5e7ff5fdcdfff5e9a284456476492719ffb64de7d9dca1e1d894bc3bd57873ed4d181d19d4d5c8c18af3",
			"f821d496eeb096e98ad2b69e4799c71d"},
		{"3de09874b388e6491988d0c3607eae1f", "57690e434e280000a2fca1a3",
			"4500001c42a200008001441f406793b6e00000020a00f5ff01020201",
			"42f67e3f1010101010101010",
			"fba2ca845e5df9f0f22c3e6e86dd831e1fc65792cd1af9130e1379ed",
			"369f071f35e034be95f112e4e7d05d35"},
		{"feffe9928665731c6d6a8f9467308308feffe9928665731c", "cafebabefacedbaddecaf888",
			"45000028a4ad4000400678800a01038f0a010612802306b8cb712602dd6bb03e501016d075680001",
			"0000a5f80000000a",
			"a5b1f8066029aea40e598b8122de02420938b3ab33f828e687b8858b5bfbdbd0315b27452144cc77",
			"95457b9652037f5318027b5b4cd7a636"},
		{"abbccddef00112233445566778899aab", "decaf888cafedebaceface74",
			"4500004933ba00007f119106c3fb1d10c2b1d326c02831ce0035dd7b800302d500004e20001e8c18d75b81dc91baa0476b91b924b280389d92c963bac046ec959b6266c04722b14923010101",
			"000001000000000000000001",
			"18a6fd42f72cbf4ab2a2ea901f73d814e3e7f243d95412e1c349c1d2fbec168f9190feebaf2cb01984e65863965d7472b79da345e0e780191f0d2f0e0f496c226f2127b27db35724e7845d68",
			"651f57e65f354f75ff17015769623436"},
		{"7d773d00c144c525ac619d18c84a3f47", "d966426743457e9182443bc6",
			"01020201", "335467aeffffffff", "437f866b", "cb3f699fe9b0822bac961c4504bef270"},
		{"6c6567616c697a656d6172696a75616e61616e64646f69746265666f72656961", "7475726e333021696765746d",
			"45000030da3a00008001df3bc0a80005c0a800010800c6cd020007006162636465666768696a6b6c6d6e6f707172737401020201",
			"796b6963ffffffffffffffff",
			"f97ab2aa356d8edce17644ac8c78e25dd24dedbb29ebf1b64a274b39b49c3a864cd3d78ca4ae68a32b42458fb57dbe821dcc63b9",
			"d0937ba2945f669368661a329fb4c053"},
	}
	for i, v := range vectors {
		key, nonce, pt, aad := unhex(t, v.key), unhex(t, v.nonce), unhex(t, v.plaintext), unhex(t, v.aad)
		alg := map[int]EncAlg{16: EncAESGCM16_128, 24: EncAESGCM16_192, 32: EncAESGCM16_256}[len(key)]
		esn := len(aad) == 12
		spi := be.Uint32(aad)
		seq := uint64(be.Uint32(aad[4:]))
		if esn {
			seq = be.Uint64(aad[4:])
		}
		c, err := newESPCipher(alg, key, nonce[:4], IntegNone, nil, esn)
		if err != nil {
			t.Fatal(err)
		}
		c.makeIV = fixedIV(nonce[4:])
		padLen, nh := int(pt[len(pt)-2]), pt[len(pt)-1]
		payload := pt[:len(pt)-2-padLen]
		want := append(append(append([]byte{}, aad[:4]...), aad[len(aad)-4:]...), nonce[4:]...)
		want = append(append(want, unhex(t, v.ctext)...), unhex(t, v.tag)...)
		got := sealVector(c, payload, nh, spi, seq)
		if !bytes.Equal(got, want) {
			t.Errorf("vector %d (%s): sealed\n got %x\nwant %x", i, alg, got, want)
			continue
		}
		plain := make([]byte, len(want))
		n, gotNH, err := c.open(plain, want, seq)
		if err != nil || gotNH != nh || !bytes.Equal(plain[:n], payload) {
			t.Errorf("vector %d: open: %v", i, err)
		}
	}
}

// RFC 2202 (MD5, SHA-1), RFC 2403/2404 and RFC 4868 §2.7.2: the truncated
// ICVs are the first bytes of the HMAC, with keys of the SA's key size.
func TestTruncatedHMACVectors(t *testing.T) {
	cases := []struct {
		alg  IntegAlg
		key  []byte
		data string
		want string
	}{
		{IntegHMACMD5_96, bytes.Repeat([]byte{0x0b}, 16), "Hi There", "9294727a3638bb1c13f48ef8"},
		{IntegHMACMD5_96, bytes.Repeat([]byte{0x0c}, 16), "Test With Truncation", "56461ef2342edc00f9bab995"},
		{IntegHMACSHA1_96, bytes.Repeat([]byte{0x0b}, 20), "Hi There", "b617318655057264e28bc0b6"},
		{IntegHMACSHA1_96, bytes.Repeat([]byte{0x0c}, 20), "Test With Truncation", "4c1a03424b55e07fe7f27be1"},
		{IntegHMACSHA256_128, bytes.Repeat([]byte{0x0b}, 32), "Hi There", "198a607eb44bfbc69903a0f1cf2bbdc5"},
		{IntegHMACSHA256_128, bytes.Repeat([]byte("Jefe"), 8), "what do ya want for nothing?", "167f928588c5cc2eef8e3093caa0e87c"},
		{IntegHMACSHA384_192, bytes.Repeat([]byte{0x0b}, 48), "Hi There", "b6a8d5636f5c6a7224f9977dcf7ee6c7fb6d0c48cbdee973"},
		{IntegHMACSHA512_256, bytes.Repeat([]byte{0x0b}, 64), "Hi There", "637edc6e01dce7e6742a99451aae82df23da3e92439e590e43e761b33e910fb8"},
	}
	for _, tc := range cases {
		m, err := newICV(tc.alg, tc.key)
		if err != nil {
			t.Fatal(err)
		}
		out := make([]byte, tc.alg.ICVSize())
		// Split the data to check that the parts are concatenated.
		m.compute(out, []byte(tc.data[:3]), []byte(tc.data[3:]))
		if hex.EncodeToString(out) != tc.want {
			t.Errorf("%s %q: got %x want %s", tc.alg, tc.data, out, tc.want)
		}
		if !m.verify(unhex(t, tc.want), []byte(tc.data)) {
			t.Errorf("%s: verify rejected the vector", tc.alg)
		}
	}
}

// CBC IVs come from a buffer of random bytes refilled 4 KiB at a time: across
// refills, no two packets share an IV (RFC 3602 §2.1 wants them unpredictable).
func TestCBCIVsUnique(t *testing.T) {
	c, err := newESPCipher(EncAESCBC128, make([]byte, 16), nil, IntegHMACSHA1_96, make([]byte, 20), false)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[[16]byte]bool{}
	for i := range 1000 {
		var iv [16]byte
		c.makeIV(iv[:], uint64(i))
		if seen[iv] || iv == [16]byte{} {
			t.Fatalf("packet %d: IV %x repeated or zero", i, iv)
		}
		seen[iv] = true
	}
}

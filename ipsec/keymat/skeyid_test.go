package keymat

import (
	"bytes"
	"testing"

	"github.com/ipseclab/ipseclab/ipsec/isakmp"
)

func cookie(t testing.TB, s string) isakmp.Cookie {
	var c isakmp.Cookie
	copy(c[:], unhex(t, s))
	return c
}

// TestCAVPIKEv1PSK runs the NIST CAVP "IKEv1 PSK" component test (SP 800-135
// §4.1.1; file ikev1_psk.fax, [SHA-1] [Ni length = 64] [Nr length = 64]
// [pre-shared-key length = 8] [g^xy length = 256], COUNT = 0), as libreswan
// keeps it in programs/cavp/test.acvp.ikev1_psk.run.
func TestCAVPIKEv1PSK(t *testing.T) {
	prf := mustPRF(t, isakmp.HashSHA1)
	ckyI, ckyR := cookie(t, "83d374c30b3b5082"), cookie(t, "5afc0da06c728029")
	ni, nr := unhex(t, "b9a2d0e922dc66dd"), unhex(t, "2130166863b5ddef")
	gxy := unhex(t, "739003ba2c11c982946c65e26acf661fbf8ebb78011a9fead79efa12fe3e71cc")
	psk := unhex(t, "75")

	skeyid := SKEYIDPreSharedKey(prf, psk, ni, nr)
	d, a, e := DeriveSKEYIDs(prf, skeyid, gxy, ckyI, ckyR)
	for name, c := range map[string]struct{ got, want []byte }{
		"SKEYID":   {skeyid, unhex(t, "62b04d112877e442fc3282fc37c076997718a0b9")},
		"SKEYID_d": {d, unhex(t, "369e5aad1bdb5faf6a3d929d500cdc236710a9ab")},
		"SKEYID_a": {a, unhex(t, "588e957d8d790d093b3a39f121473473af78e9bb")},
		"SKEYID_e": {e, unhex(t, "cd74b0c048219db81384d3fda8f6cda51e398a2b")},
	} {
		if !bytes.Equal(c.got, c.want) {
			t.Errorf("%s = %x, want %x", name, c.got, c.want)
		}
	}

	// DerivePhase1 must give the same chain.
	ciph, _ := NewCipher(isakmp.EncAESCBC, 128)
	keys, err := DerivePhase1(Phase1Params{PRF: prf, Cipher: ciph, AuthMethod: isakmp.AuthMethodPSK, PreSharedKey: psk,
		Ni: ni, Nr: nr, GXY: gxy, CookieI: ckyI, CookieR: ckyR})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(keys.SKEYID, skeyid) || !bytes.Equal(keys.SKEYIDd, d) || !bytes.Equal(keys.SKEYIDa, a) || !bytes.Equal(keys.SKEYIDe, e) {
		t.Errorf("DerivePhase1 disagrees with the step-by-step derivation")
	}
	if !bytes.Equal(keys.EncryptionKey, e[:16]) {
		t.Errorf("Ka for AES-128 is not the first 16 bytes of SKEYID_e")
	}
}

// TestCAVPSamplesViaNSS runs the subset of NIST's CAVS IKEv1 sample vectors that
// NSS keeps in gtests/common/testvectors/ike-sha{1,256,384,512}-vectors.h
// ("these vectors are from this NIST samples"): for every hash, the SKEYID of
// a PSK vector, and SKEYID plus SKEYID_d/a/e of a signature (DSA) vector.
func TestCAVPSamplesViaNSS(t *testing.T) {
	type psk struct{ key, ni, nr, skeyid string }
	type sig struct{ gxy, ni, nr, skeyid, ckyI, ckyR, d, a, e string }
	cases := []struct {
		hash isakmp.HashAlgorithm
		psk  psk
		sig  sig
	}{
		{isakmp.HashSHA1,
			psk{"c0", "03a6f25a83c8c2a3", "9d958a6618f77e7f", "ab3be41bc62f2ef0c41a3076d58768be77fadd2e"},
			sig{"8ba4cbc73c0187301dc19a975823854dbd641c597f637f8d053a83b9514673eb", "69a62284195f1680", "80c94ba25c8abda5",
				"707197817fb2d90cf54d1842606bdea59b9f4823", "8c3bcd3a69831d7f", "d2d9a7ff4fbe95a7",
				"384be709a8a5e63c3ed160cfe3921c4b37d5b32d", "48b327575abe3adba0f279849e289022a13e2b47", "a4a415c8e0c38c0da847c356cc61c24df8025560"}},
		{isakmp.HashSHA2_256,
			psk{"a0", "ead9ced494868f41", "f1aff4f425a94f18", "558a99b299773d267cf7c8ef073bf3b7af362c206c75a538403c5ef884d4cace"},
			sig{"a1ff3dc6cf9b4c04709943cb4ca1f1789bcf360b03f1d027de3ae8ee039e9155",
				"b1dee62505b47b223bae14ce7a5b757402ad1587511618d09f94950d47f1d8d4ce86aca12" +
					"d78db9854d86019ad735757ae79d8932ac0c7db842c85060150ca875ea5d47e3cfcb2a059" +
					"22ebb7959d49b9797a2289676ee79a1d9a18b790f87e4771ddaf4be3376057a553162f68f" +
					"e429aca73b07234543801ba2122b1bde82251770d05df813cf556a11ca4dc43ffcb85a97d" +
					"bed16e2fda6985e07e31be6364899e63c507c7c616e5eb7765a53560f76772de43918ba07" +
					"badfe85244dcdcd917cb065afb60e3b7e68b54dd94bfc7c31c8b752892781ed3cc4b7f28f" +
					"bc0ab9af908f5ae1f09f893f80100a7b3135993161b51fbba3bbb24b9f88c6147de82cd6f" +
					"0",
				"f0acfef2ad1f7add0eaafda78c1cf1097d9fc91cb04a7c145069ac426fd164cbe661b1dd2" +
					"df0fb84e19512181f0d8ea50b7860845f332757a8e56d2a3b7be436b5718a2d49baa996a4" +
					"616684a208c2d611cd65e605dca6e3d3f116859b4410fe13679696bb2e23c08a40c7e1316" +
					"d54b4c9c0286701c221151b3642cb4112ca1a53e0e597a7e29c634caed86ca3c31973d37b" +
					"4c346134fd6784cd99913feedf3d29d89a0a02a5a750f02f5738109dcc670bb27701fb59f" +
					"78e83b76860c3fec079a1fc8c937ddb58ae7500422b7e49ce63759c65b6bc439381d56bcc" +
					"159edede894b073841036ebfa050a5b3e7c876a3f18def26b1768a263ac66c9d83b680eb5" +
					"e",
				"750c5c94b9c2ec20b68033e024dadf0fa87e8b48c6561b21c72478451a06583d", "6c6beb72631ddc3d", "b84e24b22cffbd14",
				"a4f7ca7de913814813e3312099e7c943bd293483f387532330237f1b20957310",
				"1d4b705746c43b0a6fcbb8db33983c0f24ff6f8b6543e3779fed227c6067f004",
				"03e6f16cd9ce9f64b5cdc5b34cca7163483ba5389a30afebef3d14640b0a815e"}},
		{isakmp.HashSHA2_384,
			psk{"9e", "d6596b7e5b398534", "136fbdfa8d0ceb8e", "b54fa27cb4251051e44a659d73591845691d11f1874bf4e4088e5df6462d28e57a3a2af3ab4f9b746a8f5766f8785f2b"},
			sig{"1724dbd893523764bfef8c6fa927856fccfb77ae254358cce29c2769a32915c1", "cec89d845add83ef", "cebd43ab71d17db9",
				"6e4514610bf82d0ab7bf0260096f6146a153c712071abb633ced813c572156c783e36874a65a64690ca701d40d56ea18", "1c8aba986a00af0f", "b049d9672f73c920",
				"b083234e9ed7745911f93eb31faa66fcf88906266830eb17ef166d295cb1f86a3543b8b8efa5df918533df537e9c809c",
				"938295a374aceb4147a8024c9a007dd313403fd8fd7070dbd0cfbe1ccd308dbfbb7b9e9c64049e4df44ff551016cb7b5",
				"8595b249dc1fa8599729f87eb6b9dd13bfbfdfd4f9ebd78929bab6ecc402539ad32cb6e7ef4ba6a0f53da14e4df07ed4"}},
		{isakmp.HashSHA2_512,
			psk{"4c", "482a05eca86fba51", "84ee19d02272de2e", "5bcb5499ae4c1437ce6c195392bf26bf7980a59bcb787a0b58671771a3d4b06dc1eb7809241b7e5931740b05bf8a9873bb493c5f067e28e4f58ab65c3dbe44cd"},
			sig{"b15a9cfce8c8d7eab879d6243029d40188d3b740875a6ac62f56cac4377e2edd", "acadc6314a69cfcd", "4e4ad17718fea7ce",
				"f05aa036dfce45a558d40418dea98096e519bc7841e3db3dd93658d118c3e83b502f398ecb1361ec77d38a8855efff407f6f772e5d65b58eb1134096e8478d2b", "1ff4d76565b3151a", "1f11b8eb20d57a16",
				"3c4be16a631aa49018fa6740745a61ab1f1a2455a96e91f159a134ccfe30303d68721696195e95bfd530510ef2f9532491878710944db7854f00ad13c68fca01",
				"15ecf5c80b675585e10c4388f6f9c37e8b63269a0a99851f08ba617e28c561f43eaf4112223ff97525bf0b3897f514fce7a3acee10a61ae088c01efc5f643587",
				"60f6b6c10c2b6bedc085ad6546d993c9ce1f86918d1c935c89d6631170a5dab0e37298f21ca3b7901a53bde55a15fad39f782039ce26fc8c2ba8cbd9d4287669"}},
	}
	for _, c := range cases {
		prf := mustPRF(t, c.hash)
		if got := SKEYIDPreSharedKey(prf, unhex(t, c.psk.key), unhex(t, c.psk.ni), unhex(t, c.psk.nr)); !bytes.Equal(got, unhex(t, c.psk.skeyid)) {
			t.Errorf("%s PSK SKEYID = %x", c.hash, got)
		}
		gxy := unhex(t, c.sig.gxy)
		skeyid := SKEYIDSignature(prf, unhex(t, c.sig.ni), unhex(t, c.sig.nr), gxy)
		if !bytes.Equal(skeyid, unhex(t, c.sig.skeyid)) {
			t.Errorf("%s signature SKEYID = %x", c.hash, skeyid)
		}
		d, a, e := DeriveSKEYIDs(prf, unhex(t, c.sig.skeyid), gxy, cookie(t, c.sig.ckyI), cookie(t, c.sig.ckyR))
		if !bytes.Equal(d, unhex(t, c.sig.d)) || !bytes.Equal(a, unhex(t, c.sig.a)) || !bytes.Equal(e, unhex(t, c.sig.e)) {
			t.Errorf("%s SKEYID_d/a/e = %x / %x / %x", c.hash, d, a, e)
		}
	}
}

// TestHashRFromCheckPoint checks SKEYID (pre-shared key) and HASH_R against
// Aggressive Mode responses of a Check Point Firewall-1 NG AI R54 whose
// pre-shared key is "abc123", as recorded by ike-scan 1.6.4 for its psk-crack
// tests (check-psk-crack-2; fields g_xr:g_xi:cky_r:cky_i:sai_b:idir_b:ni_b:
// nr_b:hash_r). A match shows that HASH_R swaps the public values and the
// cookies and covers the initiator's SA body, as RFC 2409 §5 says.
func TestHashRFromCheckPoint(t *testing.T) {
	cases := []struct {
		hash                                                   isakmp.HashAlgorithm
		gxr, gxi, ckyR, ckyI, saiB, idirB, niB, nrB, wantHashR string
	}{
		{isakmp.HashMD5,
			"5c7916ddf8db4d233b3b36005bb3ccc115a73807e11a897be943fd4a2d0f942624cb00588d8b3a0a26502b73e639df217ef6c4cb90f96b0a3c3ef2f62ed025b4a705df9de65e33e380c1ba5fa23bf1f9911bbf388d0844256fa0131fc5cf8acb396936ba3295b4637b039d93f58db90a3a1cf1ef5051103bacf6e1a3334f9f89",
			"fde8c68c5f324c7dbcbadde1d757af6962c63496c009f77cad647f2997fd4295e50821453a6dc2f6279fd7fef68768584d9cee0da6e68a534a097ce206bf77ecc798310206f3f82d92d02c885794e0a430ceb2d6b43c2aff45a6e14c6558382df0692ff65c2724eef750764ee456f31424a5ebd9e115d826bbb9722111aa4e01",
			"b2a3c7aa4be95e85", "756e3fa11c1b102c",
			"00000001000000010000002c01010001000000240101000080010001800200018003000180040002800b0001000c000400007080",
			"01000000ac100202", "251d7ace920b17cb34f9d561bca46d037b337d19", "e045819a64edbf022620bff3efdb935216584cc4",
			"b9c594fa3fca6bb30a85c4208a8df348"},
		{isakmp.HashSHA1,
			"9bdee7aa341cf1a6c19bc0191106b5056537ce6b837cd70678ea5a3ccb606b56dee4548feb67f24fd6f4d5f58967a9ff3c674d9d79e4195b7def5aac147c9fe9abdc2f8ba2eca58f4c863fedc7a8c8e1ad6e1551b1e44bf9a0e258561a5db1c2ca1e8b5dfda1b012012b6fdf24ecd07da6b10d76ab3b58d07b30b4f9da26aee4",
			"c9b7ef0610a22b3e1c88b1a01ce4d4110edf6baa122ed1285eb2184cd75d30a11520a725c2d263de5a157f77f953880732f3b14521836d7f3585cb0ce3fcadf81c541dde2680bd81953cf88e8f8096c173470694ca7414fff9df0cdcdbb9d4f70ef1d6347293b507cfad965e2d2c1fa07326353e9a493d93284970040344fb11",
			"3506592130312567", "6c362583ce7a2a26",
			"00000001000000010000002c01010001000000240101000080010001800200028003000180040002800b0001000c000400007080",
			"01000000ac100202", "84943233f42a0b5a9b33c327162fe0efee2545e4", "76f451dce3fea6402b67f3fddae561ebdb4a6efe",
			"f63f237b3c0f1fe57a5b852203cfd27cbf0c78d4"},
	}
	for _, c := range cases {
		prf := mustPRF(t, c.hash)
		k := &Phase1Keys{
			PRF: prf, CookieI: cookie(t, c.ckyI), CookieR: cookie(t, c.ckyR),
			GXI: unhex(t, c.gxi), GXR: unhex(t, c.gxr),
			SKEYID: SKEYIDPreSharedKey(prf, []byte("abc123"), unhex(t, c.niB), unhex(t, c.nrB)),
		}
		if got := k.HashR(unhex(t, c.saiB), unhex(t, c.idirB)); !bytes.Equal(got, unhex(t, c.wantHashR)) {
			t.Errorf("%s HASH_R = %x, want %s", c.hash, got, c.wantHashR)
		}
		wrong := *k
		wrong.SKEYID = SKEYIDPreSharedKey(prf, []byte("abc124"), unhex(t, c.niB), unhex(t, c.nrB))
		if bytes.Equal(wrong.HashR(unhex(t, c.saiB), unhex(t, c.idirB)), unhex(t, c.wantHashR)) {
			t.Errorf("%s HASH_R matches with a wrong key", c.hash)
		}
	}
}

// TestEncryptionKeyExpansion checks RFC 2409 Appendix B against the vectors
// NSS generated for its CKM_NSS_IKE1_APP_B_PRF_DERIVE mechanism
// (ike-sha{1,256}-vectors.h, "self-generated", cases 11–13): an independent
// implementation of the same expansion.
func TestEncryptionKeyExpansion(t *testing.T) {
	cases := []struct {
		hash    isakmp.HashAlgorithm
		skeyidE string
		ka132   string
	}{
		{isakmp.HashSHA1, "63e81194946ebd05df7df5ebf5d8750056bf1f1d",
			"933347a07de5782247dd36d1562ffe0eecade1eb4134165257e3af1000af8ae3f16506382" +
				"8cbb60d910b7db38fa3c7f62c4afaaf3203da065c841729853edb23e9e7ac8286ae65c8cb" +
				"6c667d79268c0bd6705abb9131698eb822b1c1f9dd142fc7be2c1010ee0152e10195add98" +
				"999c6b6d42c8fe9c1b134d56ad5f2c6f20e815bd25c52"},
		{isakmp.HashSHA2_256, "5f00d1bd2c58ec224b1e6b71fa0f19a1faa7a193952c444411b47c1a9d8ba6fe",
			"b10fff32cbeaa1e7afe6ab0b191e0bd63cd524849a4b56019146d232a24cf9af6b89494d2" +
				"a360b06825db8bb0324c15cecf47fc0bc99e39bf1171a7f4bf1733dc49ef64c642e73b054" +
				"b2e82456e34fa3c822da475e27e403b3da3929da50e6aa9e7f9252c68fa069b4b0edd374e" +
				"80d35378c4f5e8ec285a1b169c92bbb5353d05ba94165"},
	}
	for _, c := range cases {
		prf := mustPRF(t, c.hash)
		e := unhex(t, c.skeyidE)
		if got := EncryptionKey(prf, e, 132); !bytes.Equal(got, unhex(t, c.ka132)) {
			t.Errorf("%s: Ka(132) = %x", c.hash, got)
		}
		// No expansion when SKEYID_e is long enough: Ka is its prefix.
		if got := EncryptionKey(prf, e, prf.Size()); !bytes.Equal(got, e) {
			t.Errorf("%s: Ka(%d) = %x, want SKEYID_e", c.hash, prf.Size(), got)
		}
		if got := EncryptionKey(prf, e, 15); !bytes.Equal(got, e[:15]) {
			t.Errorf("%s: Ka(15) = %x", c.hash, got)
		}
	}
	// The case that matters in practice: SHA-1 (20 bytes) with AES-256 or
	// 3DES needs K1 | K2 cut to 32 or 24 bytes.
	prf := mustPRF(t, isakmp.HashSHA1)
	e := unhex(t, cases[0].skeyidE)
	full := EncryptionKey(prf, e, 132)
	if got := EncryptionKey(prf, e, 32); !bytes.Equal(got, full[:32]) {
		t.Errorf("Ka(32) is not the start of the expansion")
	}
}

func TestSKEYIDByAuthMethod(t *testing.T) {
	prf := mustPRF(t, isakmp.HashSHA1)
	ciph, _ := NewCipher(isakmp.Enc3DES, 0)
	base := Phase1Params{PRF: prf, Cipher: ciph, PreSharedKey: []byte("secret"), Ni: []byte("ni-nonce"), Nr: []byte("nr-nonce"),
		GXI: []byte("gxi"), GXR: []byte("gxr"), GXY: []byte("gxy"), CookieI: isakmp.Cookie{1}, CookieR: isakmp.Cookie{2}}
	for m, want := range map[isakmp.AuthMethod][]byte{
		isakmp.AuthMethodPSK:           SKEYIDPreSharedKey(prf, base.PreSharedKey, base.Ni, base.Nr),
		isakmp.AuthMethodXAuthInitPSK:  SKEYIDPreSharedKey(prf, base.PreSharedKey, base.Ni, base.Nr),
		isakmp.AuthMethodRSASig:        SKEYIDSignature(prf, base.Ni, base.Nr, base.GXY),
		isakmp.AuthMethodHybridInitRSA: SKEYIDSignature(prf, base.Ni, base.Nr, base.GXY),
		isakmp.AuthMethodECDSAP256:     SKEYIDSignature(prf, base.Ni, base.Nr, base.GXY),
		isakmp.AuthMethodRSAEnc:        SKEYIDPublicKeyEncryption(prf, base.Ni, base.Nr, base.CookieI, base.CookieR),
		isakmp.AuthMethodRSARevisedEnc: SKEYIDPublicKeyEncryption(prf, base.Ni, base.Nr, base.CookieI, base.CookieR),
	} {
		p := base
		p.AuthMethod = m
		k, err := DerivePhase1(p)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(k.SKEYID, want) {
			t.Errorf("%s: SKEYID derived the wrong way", m)
		}
		if len(k.EncryptionKey) != 24 || len(k.IV) != 8 {
			t.Errorf("%s: Ka %d bytes, IV %d bytes", m, len(k.EncryptionKey), len(k.IV))
		}
	}
	// The three formulas really differ.
	if bytes.Equal(SKEYIDSignature(prf, base.Ni, base.Nr, base.GXY), SKEYIDPreSharedKey(prf, base.GXY, base.Ni, base.Nr)) {
		t.Errorf("signature SKEYID must key the PRF with the nonces, not g^xy")
	}
	p := base
	p.AuthMethod = 99
	if _, err := DerivePhase1(p); err == nil {
		t.Errorf("unknown authentication method accepted")
	}
}

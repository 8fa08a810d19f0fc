package isakmp

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatalf("bad hex in test: %v", err)
	}
	return b
}

// Real IKEv1 messages recorded against an IKEv1 responder by the RUB-NDS
// IPsec-StateMachineExtractor project (src/test/java/.../IKEv1HandshakeIT.java):
// PSK Main Mode and Aggressive Mode with AES-128/SHA1/MODP1024, then Quick Mode.
var (
	captureMainM1 = `59cedc5dcea558fe00000000000000000110020000000000000000540000003800000001000000010000002c00010001000000240001000080010007800e0080800200028004000280030001800b0001800c7080`
	captureMainM2 = `59cedc5dcea558fe9e169842364452570110020000000000000000740d00003800000001000000010000002c00010001000000240101000080010007800e0080800200028004000280030001800b0001800c70800d00000c09002689dfd6b71200000014afcad71368a1f1c96b8696fc77570100`
	captureMainM3 = `59cedc5dcea558fe9e169842364452570410020000000000000000ac0a000084b5fcea14e2593ee937054b98886ca43b00472167db154ff074e158e8b7fcae77ac35cef073698bfe63c99c6dd64ae25a95d55800a845a5db0640d1c3ea5bb8596cb0ffa5d4db0fd01e1875941b14ad4ac492fb5f6381db934664ad8493fe95aab7f1ff8976f329b5ea0f9ede244e906fb419353e878f2fa92ccd533ba33d79ee0000000c32ae9db36e7418a7`
	captureMainM4 = `59cedc5dcea558fe9e169842364452570410020000000000000000c40a00008424bb23e799283854458c53d6d735ee8c099008c743c89900b312264d3d372e4ff3986d5890d43e5aa7f2c6adb910b302cddcdf773b74921f8ce0376a338a28d7569fb8d4dab85a799cc753bd7d2fd9a65d4e4b016ea9742349c0d8cb6271061e21f5d6af924fddf05fa3a0c83ce7a22074e779c4fee154a728a4c0d6488adbb300000024ce2b9ff5f8519260b6c8f153529bc5a43121e3aa57a3de7d0d63baba86679e57`
	captureMainM5 = `59cedc5dcea558fe9e1698423644525705100201000000000000004cfabd2d66f56237c7810b25e185b0186559632459fde4ebb654970a62e83cdd47c9201aad89e40e9500d264aeaa968647`
	captureQM1    = `59cedc5dcea558fe9e1698423644525708102001259cf1330000009ce47a7db59b674dbad6139dd85fa848ed708f401a6d3a5f51cb2c7a536f5d66423c8f836ac940ae79ac8de022830196d280c0552a11d68afaceb75855fa45195c35332ffaef8e2bf2d43361b1d6e560927b67651ea2cab184dc27cb20c138e76529b62655bc127f196969fe16cb3229f049b07af51d3bf0c000747cd944c32e12`
	captureAggrM1 = `75cc633d664fd55600000000000000000110040000000000000000f00400003800000001000000010000002c00010001000000240001000080010007800e0080800200028004000280030001800b0001800c70800a000084375427d76a58cf3db4ab3cf2da9dd44dfef6233affc1d34d75c3aec9d93353a29fc3d6ec1fc4c343e49439302cacca1a52d19877a0fa72a1ee023d67015ffc690361606ec24115655228b50d328636f4fce68253d7fbd1eae905cfc6dc93194e147184279556d86ceeeb33a78b612aabdd6590ca4e609cc88906457787f13ff70500000ca3a34f453de42c670000000c010000000a000301`
	captureAggrM2 = `75cc633d664fd5560534fc1813e089e10110040000000000000001400400003800000001000000010000002c00010001000000240101000080010007800e0080800200028004000280030001800b0001800c70800a0000843af9e9bbff0c40ca81e538ccaca7dab906ae2f48f68b3f03e8c81f361b5cf514ef20d46d46b2c513a342dd3ca210dd069ff995c53f363b4e05c5c4534fe566441343333b615d87efa9d55400c44d5b5a02e41872790749df8aff964cf937fc3e349ec31f3b1cab032202389f87784f44ec4878adec2b974bc17156238937133f050000240f03492d4761a688f493d24424e9a7d19f1a64c4cd697dc900862aa1163f06450d00000c010000000a00030a0d00000c09002689dfd6b71208000014afcad71368a1f1c96b8696fc775701000000001891b7a7f96ea7a07c12ae03af0bc32e9f347685bb`
	captureAggrM3 = `75cc633d664fd5560534fc1813e089e108100400000000000000003400000018cd7dbe09500affbe969fadb342d021acd65740cf`
)

// SA and ID payload bodies from ike-scan's psk-crack tests (check-psk-crack-2,
// check-decode): a Check Point Firewall-1 and a Netscreen responder.
var (
	ikescanCheckPointSAi = `00000001000000010000002c01010001000000240101000080010001800200018003000180040002800b0001000c000400007080`
	ikescanNetscreenSAi  = `00000001000000010000009801010004030000240101000080010005800200028003000180040002800b0001000c000400007080030000240201000080010005800200018003000180040002800b0001000c000400007080030000240301000080010001800200028003000180040002800b0001000c000400007080000000240401000080010001800200018003000180040002800b0001000c000400007080`
	ikescanNetscreenIDir = `011101f43e0369fb`
)

func allCaptures() []string {
	return []string{captureMainM1, captureMainM2, captureMainM3, captureMainM4, captureMainM5, captureQM1,
		captureAggrM1, captureAggrM2, captureAggrM3}
}

// wrapPayload frames one payload body as a complete unencrypted message.
func wrapPayload(t PayloadType, body []byte) []byte {
	n := HeaderLen + genericHeaderLen + len(body)
	b := make([]byte, 0, n)
	b = append(b, "initiatorcookie!"...) // 16 bytes of cookies
	b = append(b, byte(t), Version, byte(ExchangeInformational), 0, 0, 0, 0, 0)
	b = binary.BigEndian.AppendUint32(b, uint32(n))
	b = append(b, 0, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(genericHeaderLen+len(body)))
	return append(b, body...)
}

func TestCapturesReencodeByteForByte(t *testing.T) {
	for i, c := range allCaptures() {
		raw := unhex(t, c)
		m, err := Decode(raw)
		if err != nil {
			t.Fatalf("capture %d: %v", i, err)
		}
		if m.Header.Flags&FlagEncryption != 0 {
			continue
		}
		out, err := m.Encode()
		if err != nil {
			t.Fatalf("capture %d: encode: %v", i, err)
		}
		if !bytes.Equal(out, raw) {
			t.Errorf("capture %d re-encodes differently:\n got %x\nwant %x", i, out, raw)
		}
	}
}

func TestCaptureMainMode(t *testing.T) {
	m1, err := Decode(unhex(t, captureMainM1))
	if err != nil {
		t.Fatal(err)
	}
	if m1.Header.Exchange != ExchangeMainMode || m1.Header.ResponderCookie != (Cookie{}) || m1.Header.MessageID != 0 {
		t.Errorf("MM1 header: %+v", m1.Header)
	}
	if got := strings.Join(m1.PayloadNames(), ","); got != "SA" {
		t.Errorf("MM1 payloads %s", got)
	}
	sa := First[*SA](m1)
	if sa.DOI != DOIIPsec || sa.Situation != SituationIdentityOnly || len(sa.Proposals) != 1 {
		t.Fatalf("MM1 SA: %+v", sa)
	}
	prop := sa.Proposals[0]
	if prop.Protocol != ProtocolISAKMP || len(prop.SPI) != 0 || len(prop.Transforms) != 1 || prop.Transforms[0].ID != TransformKeyIKE {
		t.Fatalf("MM1 proposal: %+v", prop)
	}
	p1, err := ParsePhase1Attributes(prop.Transforms[0].Attributes)
	if err != nil {
		t.Fatal(err)
	}
	want := Phase1Attributes{Encryption: EncAESCBC, KeyLength: 128, Hash: HashSHA1, AuthMethod: AuthMethodPSK, Group: GroupMODP1024, LifeSeconds: 28800}
	if !reflect.DeepEqual(p1, want) {
		t.Errorf("MM1 attributes %+v, want %+v", p1, want)
	}
	// SAi_b is the SA body exactly as received: 56 bytes of SA payload minus
	// its 4-byte generic header.
	if raw := unhex(t, captureMainM1); !bytes.Equal(sa.Body(), raw[HeaderLen+4:]) {
		t.Errorf("SA body not kept as received")
	}

	m2, err := Decode(unhex(t, captureMainM2))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(m2.PayloadNames(), ","); got != "SA,VID,VID" {
		t.Errorf("MM2 payloads %s", got)
	}
	var known []KnownVendor
	for _, v := range All[*VendorID](m2) {
		known = append(known, v.Known())
	}
	if !reflect.DeepEqual(known, []KnownVendor{VendorXAuth, VendorDPD}) {
		t.Errorf("MM2 vendor IDs %v", known)
	}

	m3, err := Decode(unhex(t, captureMainM3))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(m3.PayloadNames(), ","); got != "KE,NONCE" {
		t.Errorf("MM3 payloads %s", got)
	}
	if ke := First[*KE](m3); len(ke.Data) != 128 {
		t.Errorf("MM3 KE of %d bytes, want 128 (MODP1024)", len(ke.Data))
	}
	if n := First[*Nonce](m3); !bytes.Equal(n.Data, unhex(t, "32ae9db36e7418a7")) {
		t.Errorf("MM3 nonce %x", n.Data)
	}

	m5, err := Decode(unhex(t, captureMainM5))
	if err != nil {
		t.Fatal(err)
	}
	if m5.Header.Flags != FlagEncryption || m5.Header.NextPayload != PayloadID || len(m5.Ciphertext) != 48 || m5.Payloads != nil {
		t.Errorf("MM5: flags %v next %v ciphertext %d payloads %v", m5.Header.Flags, m5.Header.NextPayload, len(m5.Ciphertext), m5.Payloads)
	}
	qm1, err := Decode(unhex(t, captureQM1))
	if err != nil {
		t.Fatal(err)
	}
	if qm1.Header.Exchange != ExchangeQuickMode || qm1.Header.MessageID != 0x259cf133 || qm1.Header.NextPayload != PayloadHash {
		t.Errorf("QM1 header %+v", qm1.Header)
	}
}

func TestCaptureAggressiveMode(t *testing.T) {
	m1, err := Decode(unhex(t, captureAggrM1))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(m1.PayloadNames(), ","); got != "SA,KE,NONCE,ID" {
		t.Errorf("AM1 payloads %s", got)
	}
	id := First[*ID](m1)
	if a, err := id.Addr(); err != nil || a != netip.MustParseAddr("10.0.3.1") {
		t.Errorf("AM1 ID %v %v", a, err)
	}
	if !bytes.Equal(id.Body(), unhex(t, "010000000a000301")) {
		t.Errorf("IDii_b %x", id.Body())
	}

	m2, err := Decode(unhex(t, captureAggrM2))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(m2.PayloadNames(), ","); got != "SA,KE,NONCE,ID,VID,VID,HASH" {
		t.Errorf("AM2 payloads %s", got)
	}
	if h := First[*Hash](m2); len(h.Data) != 20 {
		t.Errorf("AM2 HASH_R of %d bytes", len(h.Data))
	}
	m3, err := Decode(unhex(t, captureAggrM3))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(m3.PayloadNames(), ","); got != "HASH" || m3.Header.Flags != 0 {
		t.Errorf("AM3 payloads %s flags %v", got, m3.Header.Flags)
	}
}

func TestIkeScanSABodies(t *testing.T) {
	body := unhex(t, ikescanCheckPointSAi)
	m, err := Decode(wrapPayload(PayloadSA, body))
	if err != nil {
		t.Fatal(err)
	}
	sa := First[*SA](m)
	if !bytes.Equal(sa.Body(), body) {
		t.Errorf("body not kept")
	}
	tr := sa.Proposals[0].Transforms[0]
	life, _ := tr.Attribute(OakleyLifeDuration)
	if life.TV || !bytes.Equal(life.Value, unhex(t, "00007080")) {
		t.Errorf("life duration should be a 4-byte TLV attribute: %+v", life)
	}
	p1, err := ParsePhase1Attributes(tr.Attributes)
	if err != nil {
		t.Fatal(err)
	}
	if p1.Encryption != EncDES || p1.Hash != HashMD5 || p1.AuthMethod != AuthMethodPSK || p1.Group != GroupMODP1024 || p1.LifeSeconds != 28800 {
		t.Errorf("%+v", p1)
	}
	if enc, err := (&SA{DOI: sa.DOI, Situation: sa.Situation, Proposals: sa.Proposals}).appendBody(nil); err != nil || !bytes.Equal(enc, body) {
		t.Errorf("re-encoding differs: %x %v", enc, err)
	}

	ns, err := Decode(wrapPayload(PayloadSA, unhex(t, ikescanNetscreenSAi)))
	if err != nil {
		t.Fatal(err)
	}
	trs := First[*SA](ns).Proposals[0].Transforms
	var got []string
	for _, tr := range trs {
		p, err := ParsePhase1Attributes(tr.Attributes)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, p.Encryption.String()+"/"+p.Hash.String())
	}
	if strings.Join(got, " ") != "3DES-CBC/SHA 3DES-CBC/MD5 DES-CBC/SHA DES-CBC/MD5" {
		t.Errorf("Netscreen transforms %v", got)
	}

	idm, err := Decode(wrapPayload(PayloadID, unhex(t, ikescanNetscreenIDir)))
	if err != nil {
		t.Fatal(err)
	}
	if s := First[*ID](idm).String(); s != "62.3.105.251[17/500]" {
		t.Errorf("ID %s", s)
	}
}

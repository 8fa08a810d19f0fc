package strongswan

import (
	"bytes"
	"encoding/hex"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"
)

// The testdata logs were written by charon 5.9.8 (charon-systemd, this
// package's strongswan.conf with key logging) on both sides of one Main Mode
// aes128-sha256-modp2048 and Quick Mode aes128-sha1-modp2048 exchange.
func parseKeysFile(t *testing.T, name string) Keys {
	t.Helper()
	f, err := os.Open("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	k, err := ParseKeys(f)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseKeysFromRecordedLogs(t *testing.T) {
	ini := parseKeysFile(t, "main-mode-aes128-sha1.initiator.log")
	res := parseKeysFile(t, "main-mode-aes128-sha1.responder.log")

	// The values as they appear in the initiator's log, read by eye.
	wantIKE := IKEKeys{
		Conn: "t1", UniqueID: 1,
		ICookie: 0xd1aab65ce0ed86e2, RCookie: 0xbb225724f11329f8,
		Ka: unhex(t, "B9 55 84 F8 C1 EC F2 D7 6F 36 D8 62 90 62 A3 2D"),
	}
	for side, k := range map[string]Keys{"initiator": ini, "responder": res} {
		if len(k.IKE) != 1 || len(k.ESP) != 2 {
			t.Fatalf("%s: %d ISAKMP and %d ESP key sets, want 1 and 2", side, len(k.IKE), len(k.ESP))
		}
		got := k.IKE[0]
		if got.ICookie != wantIKE.ICookie || got.RCookie != wantIKE.RCookie || !bytes.Equal(got.Ka, wantIKE.Ka) || got.Conn != "t1" {
			t.Errorf("%s: ISAKMP keys %+v, want %+v", side, got, wantIKE)
		}
	}

	// The SA towards the responder (SPI fed07717, chosen by the responder)
	// carries the keys charon calls "initiator" in both logs; the SA towards
	// the initiator carries the "responder" keys.
	toResponder := ESPKeys{
		Conn: "t1", UniqueID: 1, SPI: 0xfed07717,
		Src: netip.MustParseAddr("192.0.2.1"), Dst: netip.MustParseAddr("192.0.2.2"),
		Encr: "AES_CBC", EncrKey: unhex(t, "D6 C1 D8 B0 1F 28 6C AD B7 FB 39 BB 20 BC 78 2E"),
		Integ: "HMAC_SHA1_96", IntegKey: unhex(t, "33 75 8F 38 84 E0 C7 8E 02 07 C2 E0 77 95 FE 33 93 D0 A3 09"),
	}
	toInitiator := ESPKeys{
		Conn: "t1", UniqueID: 1, SPI: 0x1330b617,
		Src: netip.MustParseAddr("192.0.2.2"), Dst: netip.MustParseAddr("192.0.2.1"),
		Encr: "AES_CBC", EncrKey: unhex(t, "79 4E 91 7C 0B B7 1D A4 07 E5 75 D0 7A D7 DA 02"),
		Integ: "HMAC_SHA1_96", IntegKey: unhex(t, "83 26 C0 49 BC F3 C5 56 0C 6F 94 5A 06 02 92 DB A3 7D 57 90"),
	}
	for side, k := range map[string]Keys{"initiator": ini, "responder": res} {
		for _, want := range []ESPKeys{toResponder, toInitiator} {
			found := false
			for _, got := range k.ESP {
				if got.SPI != want.SPI {
					continue
				}
				found = true
				if got.Src != want.Src || got.Dst != want.Dst || got.Encr != want.Encr || got.Integ != want.Integ ||
					!bytes.Equal(got.EncrKey, want.EncrKey) || !bytes.Equal(got.IntegKey, want.IntegKey) || got.Conn != want.Conn {
					t.Errorf("%s: SPI %08x: got %+v, want %+v", side, want.SPI, got, want)
				}
			}
			if !found {
				t.Errorf("%s: no keys for SPI %08x", side, want.SPI)
			}
		}
	}
}

func TestWiresharkTables(t *testing.T) {
	k := parseKeysFile(t, "main-mode-aes128-sha1.initiator.log")
	var ike, esp bytes.Buffer
	if err := k.WriteIKEv1DecryptionTable(&ike); err != nil {
		t.Fatal(err)
	}
	if got, want := ike.String(), "d1aab65ce0ed86e2,b95584f8c1ecf2d76f36d8629062a32d\n"; got != want {
		t.Errorf("ikev1_decryption_table:\n got %q\nwant %q", got, want)
	}
	if err := k.WriteESPSATable(&esp); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`"IPv4","*","*","0xfed07717","AES-CBC [RFC3602]","0xd6c1d8b01f286cadb7fb39bb20bc782e","HMAC-SHA-1-96 [RFC2404]","0x33758f3884e0c78e0207c2e07795fe3393d0a309"`,
		`"IPv4","*","*","0x1330b617","AES-CBC [RFC3602]","0x794e917c0bb71da407e575d07ad7da02","HMAC-SHA-1-96 [RFC2404]","0x8326c049bcf3c5560c6f945a060292dba37d5790"`,
	} {
		if !strings.Contains(esp.String(), want+"\n") {
			t.Errorf("esp_sa lacks\n%s\nin\n%s", want, esp.String())
		}
	}

	gcm := Keys{ESP: []ESPKeys{{SPI: 1, Dst: netip.MustParseAddr("2001:db8::1"), Encr: "AES_GCM_16", EncrKey: []byte{1, 2}}}}
	esp.Reset()
	if err := gcm.WriteESPSATable(&esp); err != nil {
		t.Fatal(err)
	}
	if got, want := esp.String(), `"IPv6","*","*","0x00000001","AES-GCM with 16 octet ICV [RFC4106]","0x0102","NULL",""`+"\n"; got != want {
		t.Errorf("AEAD entry:\n got %s\nwant %s", got, want)
	}
	unknown := Keys{ESP: []ESPKeys{{Encr: "CHACHA20_POLY1305"}}}
	if err := unknown.WriteESPSATable(&esp); err == nil {
		t.Error("an algorithm Wireshark cannot decrypt must be an error, not a wrong table")
	}
}

// TestParseKeysInterleavedThreads checks that one thread's hex dump is not
// corrupted by another thread's lines in between, as happens when charon
// negotiates several SAs at once.
func TestParseKeysInterleavedThreads(t *testing.T) {
	log := strings.Join([]string{
		"2026-11-27 12:00:00 07[MGR2] <a|3> checkin IKEv1 SA a[3] with SPIs 0102030405060708_i 1112131415161718_r",
		"2026-11-27 12:00:00 09[MGR2] <b|4> checkin IKEv1 SA b[4] with SPIs 2122232425262728_i 3132333435363738_r",
		"2026-11-27 12:00:00 07[IKE4] <a|3> encryption key Ka => 20 bytes @ 0x7f00",
		"2026-11-27 12:00:00 07[IKE4] <a|3>    0: 00 01 02 03 04 05 06 07 08 09 0A 0B 0C 0D 0E 0F  ................",
		"2026-11-27 12:00:00 09[IKE4] <b|4> encryption key Ka => 16 bytes @ 0x7f01",
		"2026-11-27 12:00:00 09[IKE4] <b|4>    0: FF FE FD FC FB FA F9 F8 F7 F6 F5 F4 F3 F2 F1 F0  ................",
		"2026-11-27 12:00:00 07[IKE4] <a|3>   16: 10 11 12 13                                      ....",
	}, "\n")
	k, err := ParseKeys(strings.NewReader(log))
	if err != nil {
		t.Fatal(err)
	}
	if len(k.IKE) != 2 {
		t.Fatalf("%d ISAKMP key sets, want 2: %+v", len(k.IKE), k.IKE)
	}
	if a := k.IKE[0]; a.Conn != "a" || a.ICookie != 0x0102030405060708 || !bytes.Equal(a.Ka, unhex(t, "000102030405060708090A0B0C0D0E0F10111213")) {
		t.Errorf("a: %+v", a)
	}
	if b := k.IKE[1]; b.Conn != "b" || b.ICookie != 0x2122232425262728 || !bytes.Equal(b.Ka, unhex(t, "FFFEFDFCFBFAF9F8F7F6F5F4F3F2F1F0")) {
		t.Errorf("b: %+v", b)
	}
}

func TestParseLogLine(t *testing.T) {
	at := func(sec int) time.Time { return time.Date(2026, 11, 27, 12, 57, sec, 0, time.Local) }
	for _, tc := range []struct {
		in   string
		want LogLine
	}{
		{
			"2026-11-27 12:57:15 15[CHD2] <t1|1>   SPI 0x1330b617, src 192.0.2.2 dst 192.0.2.1",
			LogLine{Time: at(15), Thread: 15, Group: "CHD", Level: 2, IKESA: "t1", IKESAID: 1, Text: "  SPI 0x1330b617, src 192.0.2.2 dst 192.0.2.1"},
		},
		{
			// Before the responder knows the connection, the SA has only an id.
			"2026-11-27 12:57:15 12[NET1] <1> received packet: from 192.0.2.1[500] to 192.0.2.2[500] (180 bytes)",
			LogLine{Time: at(15), Thread: 12, Group: "NET", Level: 1, IKESAID: 1, Text: "received packet: from 192.0.2.1[500] to 192.0.2.2[500] (180 bytes)"},
		},
		{
			"2026-11-27 12:57:14 00[LIB1] created TUN device: ipsec0",
			LogLine{Time: at(14), Thread: 0, Group: "LIB", Level: 1, Text: "created TUN device: ipsec0"},
		},
	} {
		got, err := ParseLogLine(tc.in)
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if got != tc.want {
			t.Errorf("%q:\n got %+v\nwant %+v", tc.in, got, tc.want)
		}
	}
	for _, bad := range []string{
		"",
		"created TUN device",
		"2026-11-27 12:57:14 00[LIB] no level",
		"2026-11-27 12:57:14 xx[LIB1] thread",
		"2026-11-27 12:57:14 00[LIB9] level",
		"2026-11-27 12:57:14 00[LIB1] <t1|x> bad id",
	} {
		if _, err := ParseLogLine(bad); err == nil {
			t.Errorf("%q parsed without error", bad)
		}
	}
}

// Seeds and inputs stay under fuzzMaxLog: the fuzzer's minimisation of a new
// input costs the square of its length, and with 60-line windows of a log it
// ate the whole run. A few lines from each place the parser looks (a hex dump
// with its header, a checkin, an SPI line) reach every branch.
func FuzzParseKeys(f *testing.F) {
	const fuzzMaxLog = 1024
	for _, name := range []string{"main-mode-aes128-sha1.initiator.log", "main-mode-aes128-sha1.responder.log"} {
		b, err := os.ReadFile("testdata/" + name)
		if err != nil {
			f.Fatal(err)
		}
		lines := strings.Split(string(b), "\n")
		for i, l := range lines {
			if !strings.Contains(l, " bytes @ 0x") && !strings.Contains(l, "checkin IKEv1") && !strings.Contains(l, "SPI 0x") && !strings.Contains(l, "adding ") {
				continue
			}
			seed := strings.Join(lines[i:min(i+4, len(lines))], "\n")
			for len(seed) > fuzzMaxLog {
				seed = seed[:strings.LastIndexByte(seed, '\n')]
			}
			f.Add(seed)
		}
	}
	f.Fuzz(func(t *testing.T, log string) {
		if len(log) > fuzzMaxLog {
			return
		}
		k, err := ParseKeys(strings.NewReader(log))
		if err != nil {
			return
		}
		for _, ike := range k.IKE {
			if len(ike.Ka) == 0 || len(ike.Ka) > len(log) {
				t.Fatalf("Ka of %d bytes from %d bytes of log", len(ike.Ka), len(log))
			}
		}
		var buf bytes.Buffer
		k.WriteIKEv1DecryptionTable(&buf)
		k.WriteESPSATable(&buf)
	})
}

func FuzzParseLogLine(f *testing.F) {
	f.Add("2026-11-27 12:57:15 15[CHD2] <t1|1>   SPI 0x1330b617, src 192.0.2.2 dst 192.0.2.1")
	f.Add("2026-11-27 12:57:15 12[NET1] <1> received packet")
	f.Add("2026-11-27 12:57:14 00[LIB1] created TUN device: ipsec0")
	f.Fuzz(func(t *testing.T, s string) {
		l, err := ParseLogLine(s)
		if err != nil {
			return
		}
		if l.Level < 0 || l.Level > 4 || l.Thread < 0 || len(l.Text) > len(s) {
			t.Fatalf("%q parsed as %+v", s, l)
		}
	})
}

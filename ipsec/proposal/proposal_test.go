package proposal

import (
	"strings"
	"testing"
)

func TestParseAndPrintRoundTrip(t *testing.T) {
	for _, c := range []struct {
		p    Protocol
		in   string
		want string
		enc  Encr
		bits int
		grp  Group
	}{
		{IKE, "aes128-sha256-modp2048", "aes128-sha256-modp2048", EncrAESCBC, 128, 14},
		{IKE, "AES256-SHA1-ECP384", "aes256-sha1-ecp384", EncrAESCBC, 256, 20},
		{IKE, "3des-md5-modp1024", "3des-md5-modp1024", Encr3DES, 192, 2},
		{IKE, "aes-sha2_256-x25519", "aes128-sha256-curve25519", EncrAESCBC, 128, 31},
		{ESP, "aes128gcm16", "aes128gcm16", EncrAESGCM16, 128, 0},
		{ESP, "aes256gcm128-ecp256", "aes256gcm16-ecp256", EncrAESGCM16, 256, 19},
		{ESP, "aes128-sha1-modp2048-esn", "aes128-sha1-modp2048-esn", EncrAESCBC, 128, 14},
		{ESP, "null-sha256", "null-sha256", EncrNull, 0, 0},
		{AH, "sha512-modp3072", "sha512-modp3072", EncrNone, 0, 15},
	} {
		p, err := Parse(c.p, c.in)
		if err != nil {
			t.Fatalf("%s %q: %v", c.p, c.in, err)
		}
		if p.String() != c.want || p.Encr != c.enc || p.KeyBits != c.bits || p.Group != c.grp {
			t.Errorf("%s %q → %+v (%s), want %s", c.p, c.in, p, p, c.want)
		}
	}
}

func TestParseRejectsWithAReason(t *testing.T) {
	for _, c := range []struct {
		p    Protocol
		in   string
		want string
	}{
		{IKE, "aes128-sha256", "needs an encryption algorithm, a hash and a DH group"},
		{IKE, "aes128gcm16-sha256-modp2048", "IKEv1 phase 1 cannot use aes128gcm16"},
		{IKE, "aes128-sha256-modp2047", `unknown algorithm "modp2047"`},
		{ESP, "aes128gcm16-sha256", "AES-GCM already authenticates"},
		{ESP, "aes128", "needs an integrity algorithm"},
		{ESP, "sha256", "needs an encryption algorithm"},
		{ESP, "aes128-aes256-sha1", "two encryption algorithms"},
		{AH, "aes128-sha256", `unknown algorithm "aes128"`},
		{IKE, "", "empty IKE proposal"},
	} {
		_, err := Parse(c.p, c.in)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s %q: got %v, want an error containing %q", c.p, c.in, err, c.want)
		}
	}
}

func TestGroupsAndPFS(t *testing.T) {
	if g, ok := GroupByName("Curve25519"); !ok || g != 31 || g.String() != "curve25519" {
		t.Errorf("curve25519: %v %v", g, ok)
	}
	p, _ := Parse(ESP, "aes128-sha256")
	if got := p.WithGroup(14).String(); got != "aes128-sha256-modp2048" {
		t.Errorf("WithGroup: %s", got)
	}
	if _, err := ParseList(IKE, []string{"aes128-sha256-modp2048", "bogus"}); err == nil {
		t.Error("ParseList accepted a bad proposal")
	}
}

package keymat

import (
	"bytes"
	"crypto/sha1"
	"net/netip"
	"testing"

	"github.com/ipseclab/ipseclab/ipsec/isakmp"
)

// TestNATDLayout checks the bytes RFC 3947 §3.2 hashes: CKY-I, CKY-R, the
// address (4 bytes for IPv4, even when given IPv4-mapped) and the port in
// network order, with the bare negotiated hash.
func TestNATDLayout(t *testing.T) {
	prf := mustPRF(t, isakmp.HashSHA1)
	ckyI, ckyR := isakmp.Cookie{1, 2, 3, 4, 5, 6, 7, 8}, isakmp.Cookie{8, 7, 6, 5, 4, 3, 2, 1}
	h := sha1.Sum(append(append(append(ckyI[:], ckyR[:]...), 198, 51, 100, 2), 0x11, 0x94))
	for _, a := range []string{"198.51.100.2:4500", "[::ffff:198.51.100.2]:4500"} {
		if got := NATD(prf, ckyI, ckyR, netip.MustParseAddrPort(a)); !bytes.Equal(got, h[:]) {
			t.Errorf("%s: %x, want %x", a, got, h)
		}
	}
	v6 := NATD(prf, ckyI, ckyR, netip.MustParseAddrPort("[2001:db8::1]:500"))
	want := sha1.Sum(append(append(append(ckyI[:], ckyR[:]...), netip.MustParseAddr("2001:db8::1").AsSlice()...), 0x01, 0xf4))
	if !bytes.Equal(v6, want[:]) {
		t.Errorf("IPv6 NAT-D %x", v6)
	}
}

// TestHashIAndHashRAreMirrors: the responder's HASH_R equals the HASH_I an
// initiator would compute with the public values and cookies swapped, and
// both cover the same (initiator's) SA body.
func TestHashIAndHashRAreMirrors(t *testing.T) {
	k := &Phase1Keys{PRF: mustPRF(t, isakmp.HashSHA2_256), SKEYID: []byte("skeyid"), GXI: []byte("gxi"), GXR: []byte("gxr"),
		CookieI: isakmp.Cookie{1}, CookieR: isakmp.Cookie{2}}
	mirror := *k
	mirror.GXI, mirror.GXR, mirror.CookieI, mirror.CookieR = k.GXR, k.GXI, k.CookieR, k.CookieI
	sa, id := []byte("SAi_b"), []byte("IDir_b")
	if !bytes.Equal(k.HashR(sa, id), mirror.HashI(sa, id)) {
		t.Errorf("HASH_R is not HASH_I with roles swapped")
	}
	if bytes.Equal(k.HashR(sa, id), k.HashI(sa, id)) {
		t.Errorf("HASH_R equals HASH_I")
	}
	if bytes.Equal(k.Hash1(1, sa), k.Hash1(2, sa)) || bytes.Equal(k.Hash3(1, sa, id), k.Hash2(1, sa, id)) {
		t.Errorf("Quick Mode hashes ignore the message ID or the leading zero of HASH(3)")
	}
}

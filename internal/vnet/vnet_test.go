package vnet

import (
	"bytes"
	"testing"
)

// The layout of struct virtio_net_hdr: two bytes, then four little-endian
// 16-bit fields.
func TestLayout(t *testing.T) {
	h := Hdr{Flags: NeedsCsum, GSOType: GSOTCPv4 | GSOECN, HdrLen: 54, GSOSize: 1448, CsumStart: 34, CsumOffset: 16}
	b := make([]byte, Len)
	h.Encode(b)
	if want := []byte{1, 0x81, 54, 0, 0xa8, 0x05, 34, 0, 16, 0}; !bytes.Equal(b, want) {
		t.Fatalf("encoded % x, want % x", b, want)
	}
	var back Hdr
	back.Decode(b)
	if back != h || !back.IsGSO() {
		t.Fatalf("decoded %+v, want %+v", back, h)
	}
	if (Hdr{GSOType: GSOECN}).IsGSO() {
		t.Error("ECN alone is not a GSO type")
	}
}

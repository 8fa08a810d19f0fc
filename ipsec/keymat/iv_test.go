package keymat

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/ipseclab/ipseclab/ipsec/isakmp"
)

func TestIVChains(t *testing.T) {
	prf := mustPRF(t, isakmp.HashSHA1)
	gxi, gxr := []byte("g^xi"), []byte("g^xr")
	iv0 := Phase1IV(prf, gxi, gxr, 16)
	if full := prf.Hash(append(append([]byte(nil), gxi...), gxr...)); !bytes.Equal(iv0, full[:16]) {
		t.Fatalf("phase 1 IV is not hash(g^xi | g^xr) cut to the block")
	}
	ivs := NewIVs(prf, 16, iv0)
	if !bytes.Equal(ivs.IV(0), iv0) {
		t.Fatalf("IV(0) before any message")
	}

	// Phase 1: MM5 and MM6 chain on each other's last block.
	mm5 := bytes.Repeat([]byte{5}, 48)
	mm5[47] = 0x55
	ivs.Update(0, mm5)
	if !bytes.Equal(ivs.IV(0), mm5[32:]) {
		t.Fatalf("IV after MM5 is not its last block")
	}
	mm6 := bytes.Repeat([]byte{6}, 64)
	ivs.Update(0, mm6)
	lastP1 := mm6[48:]

	// A new exchange starts from hash(last phase 1 block | M-ID).
	const qm, info = 0x11223344, 0x55667788
	want := prf.Hash(lastP1, binary.BigEndian.AppendUint32(nil, qm))[:16]
	if got := ivs.IV(qm); !bytes.Equal(got, want) {
		t.Fatalf("first Quick Mode IV %x, want %x", got, want)
	}
	// Asking does not store anything, and does not disturb other chains.
	if !bytes.Equal(ivs.IV(qm), want) || !bytes.Equal(ivs.IV(0), lastP1) {
		t.Fatalf("IV() changed state")
	}
	qm1 := bytes.Repeat([]byte{0x31}, 32)
	ivs.Update(qm, qm1)
	infoIV := ivs.IV(info)
	if want := prf.Hash(lastP1, binary.BigEndian.AppendUint32(nil, info))[:16]; !bytes.Equal(infoIV, want) {
		t.Fatalf("an Informational exchange in the middle of Quick Mode must start from the phase 1 block")
	}
	ivs.Update(info, bytes.Repeat([]byte{0x41}, 16))
	if !bytes.Equal(ivs.IV(qm), qm1[16:]) {
		t.Fatalf("Quick Mode chain lost while an Informational exchange ran")
	}
	ivs.Forget(qm)
	if want := prf.Hash(lastP1, binary.BigEndian.AppendUint32(nil, qm))[:16]; !bytes.Equal(ivs.IV(qm), want) {
		t.Fatalf("Forget did not drop the chain")
	}
	// Returned IVs are copies.
	iv := ivs.IV(info)
	iv[0] ^= 0xff
	if bytes.Equal(iv, ivs.IV(info)) {
		t.Fatalf("IV returned internal state")
	}
	// Too short an update (no full block) changes nothing.
	before := ivs.IV(info)
	ivs.Update(info, []byte{1, 2, 3})
	if !bytes.Equal(before, ivs.IV(info)) {
		t.Fatalf("short update applied")
	}
}

func TestIVChainsAreBounded(t *testing.T) {
	prf := mustPRF(t, isakmp.HashSHA1)
	ivs := NewIVs(prf, 8, make([]byte, 8))
	for mid := uint32(1); mid <= 2*maxExchangeIVs; mid++ {
		ivs.Update(mid, binary.BigEndian.AppendUint64(nil, uint64(mid)))
	}
	if len(ivs.exchanges) != maxExchangeIVs || len(ivs.order) != maxExchangeIVs {
		t.Fatalf("%d chains kept", len(ivs.exchanges))
	}
	// The newest survive, the oldest were dropped.
	if got := ivs.IV(2 * maxExchangeIVs); binary.BigEndian.Uint64(got) != 2*maxExchangeIVs {
		t.Errorf("newest chain lost")
	}
	if _, ok := ivs.exchanges[1]; ok {
		t.Errorf("oldest chain kept")
	}
}

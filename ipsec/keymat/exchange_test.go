package keymat_test

import (
	"bytes"
	"encoding/binary"
	mrand "math/rand/v2"
	"net/netip"
	"testing"

	"github.com/ipseclab/ipseclab/ipsec/isakmp"
	"github.com/ipseclab/ipseclab/ipsec/keymat"
)

// peer is one side of the negotiation below, holding only what that side
// knows. The test is written against the public API of isakmp and keymat, in
// the order of RFC 2409 §5 (Main Mode with a pre-shared key) and §5.5 (Quick
// Mode with PFS), so it doubles as an example for the exchange layer.
type peer struct {
	rand  *mrand.ChaCha8
	addr  netip.AddrPort
	saiB  []byte // the initiator's SA body, as sent or as received
	dh    *keymat.PrivateKey
	nonce []byte
	keys  *keymat.Phase1Keys
	ivs   *keymat.IVs
}

func newPeer(seed byte, addr string) *peer {
	var s [32]byte
	s[0] = seed
	return &peer{rand: mrand.NewChaCha8(s), addr: netip.MustParseAddrPort(addr)}
}

func (p *peer) bytes(n int) []byte {
	b := make([]byte, n)
	p.rand.Read(b)
	return b
}

// transmit is the network: encode, then decode on the other side.
func transmit(t *testing.T, wire []byte) *isakmp.Message {
	t.Helper()
	m, err := isakmp.Decode(wire)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestMainModeAndQuickModeBetweenTwoPeers(t *testing.T) {
	const psk = "lab-only-secret"
	prf, _ := keymat.NewPRF(isakmp.HashSHA2_256)
	ciph, _ := keymat.NewCipher(isakmp.EncAESCBC, 256)
	group, _ := keymat.LookupGroup(isakmp.GroupMODP2048)
	ini, res := newPeer(1, "192.168.1.10:500"), newPeer(2, "203.0.113.2:500")
	var ckyI, ckyR isakmp.Cookie
	copy(ckyI[:], ini.bytes(8))
	copy(ckyR[:], res.bytes(8))
	hdr := func(ex isakmp.ExchangeType, mid uint32) isakmp.Header {
		return isakmp.Header{InitiatorCookie: ckyI, ResponderCookie: ckyR, Exchange: ex, MessageID: mid}
	}

	// MM1: HDR, SA. The initiator keeps the body it sends, the responder
	// the body it receives: both are SAi_b.
	offer := &isakmp.SA{DOI: isakmp.DOIIPsec, Situation: isakmp.SituationIdentityOnly, Proposals: []isakmp.Proposal{{
		Number: 1, Protocol: isakmp.ProtocolISAKMP, Transforms: []isakmp.Transform{{Number: 1, ID: isakmp.TransformKeyIKE,
			Attributes: isakmp.Phase1Attributes{Encryption: isakmp.EncAESCBC, KeyLength: 256, Hash: isakmp.HashSHA2_256,
				AuthMethod: isakmp.AuthMethodPSK, Group: isakmp.GroupMODP2048, LifeSeconds: 3600}.Attributes()}},
	}}}
	mm1 := &isakmp.Message{Header: hdr(isakmp.ExchangeMainMode, 0), Payloads: []isakmp.Payload{offer, isakmp.NewVendorID(isakmp.VendorNATTRFC3947)}}
	mm1.Header.ResponderCookie = isakmp.Cookie{}
	wire, err := mm1.Encode()
	if err != nil {
		t.Fatal(err)
	}
	ini.saiB = offer.Body()
	got := transmit(t, wire)
	res.saiB = isakmp.First[*isakmp.SA](got).Body()
	if !bytes.Equal(ini.saiB, res.saiB) {
		t.Fatalf("SAi_b differs between the two sides")
	}

	// MM3 / MM4: HDR, KE, NONCE, NAT-D, NAT-D.
	kex := func(p *peer, other netip.AddrPort) *isakmp.Message {
		var err error
		if p.dh, err = group.GenerateKey(p.rand); err != nil {
			t.Fatal(err)
		}
		p.nonce = p.bytes(32)
		m := &isakmp.Message{Header: hdr(isakmp.ExchangeMainMode, 0), Payloads: []isakmp.Payload{
			&isakmp.KE{Data: p.dh.Public()}, &isakmp.Nonce{Data: p.nonce},
			&isakmp.NATD{Hash: keymat.NATD(prf, ckyI, ckyR, other)}, &isakmp.NATD{Hash: keymat.NATD(prf, ckyI, ckyR, p.addr)},
		}}
		w, err := m.Encode()
		if err != nil {
			t.Fatal(err)
		}
		return transmit(t, w)
	}
	mm3 := kex(ini, res.addr)
	mm4 := kex(res, ini.addr)
	// NAT detection: the responder recomputes the hash of the address it sees.
	if natd := isakmp.All[*isakmp.NATD](mm3); !bytes.Equal(natd[1].Hash, keymat.NATD(prf, ckyI, ckyR, ini.addr)) {
		t.Errorf("NAT-D of the source does not match: a NAT would be reported")
	}

	derive := func(p *peer, peerKE *isakmp.Message, gxi, gxr, ni, nr []byte) {
		gxy, err := p.dh.SharedSecret(isakmp.First[*isakmp.KE](peerKE).Data)
		if err != nil {
			t.Fatal(err)
		}
		p.keys, err = keymat.DerivePhase1(keymat.Phase1Params{PRF: prf, Cipher: ciph, AuthMethod: isakmp.AuthMethodPSK,
			PreSharedKey: []byte(psk), Ni: ni, Nr: nr, GXI: gxi, GXR: gxr, GXY: gxy, CookieI: ckyI, CookieR: ckyR})
		if err != nil {
			t.Fatal(err)
		}
		p.ivs = p.keys.NewIVs()
	}
	gxiAtR, niAtR := isakmp.First[*isakmp.KE](mm3).Data, isakmp.First[*isakmp.Nonce](mm3).Data
	gxrAtI, nrAtI := isakmp.First[*isakmp.KE](mm4).Data, isakmp.First[*isakmp.Nonce](mm4).Data
	derive(ini, mm4, ini.dh.Public(), gxrAtI, ini.nonce, nrAtI)
	derive(res, mm3, gxiAtR, res.dh.Public(), niAtR, res.nonce)
	if !bytes.Equal(ini.keys.SKEYIDa, res.keys.SKEYIDa) || !bytes.Equal(ini.keys.EncryptionKey, res.keys.EncryptionKey) || !bytes.Equal(ini.keys.IV, res.keys.IV) {
		t.Fatalf("the two sides derived different keys")
	}

	// send encrypts with the exchange's current IV and moves it on; receive
	// decrypts, lets check authenticate, and only then moves the IV on.
	send := func(p *peer, m *isakmp.Message) []byte {
		block, _ := p.keys.NewBlock()
		w, err := m.EncodeEncrypted(block, p.ivs.IV(m.Header.MessageID))
		if err != nil {
			t.Fatal(err)
		}
		p.ivs.Update(m.Header.MessageID, w)
		return w
	}
	receive := func(p *peer, w []byte, check func(*isakmp.Message) bool) *isakmp.Message {
		m := transmit(t, w)
		block, _ := p.keys.NewBlock()
		if err := m.Decrypt(block, p.ivs.IV(m.Header.MessageID)); err != nil {
			t.Fatal(err)
		}
		if !check(m) {
			t.Fatalf("%s message %v failed authentication", m.Header.Exchange.Abbrev(), m.PayloadNames())
		}
		p.ivs.Update(m.Header.MessageID, m.Ciphertext)
		return m
	}

	// MM5: HDR*, IDii, HASH_I. MM6: HDR*, IDir, HASH_R.
	idii := isakmp.NewIDAddr(ini.addr.Addr())
	mm5 := &isakmp.Message{Header: hdr(isakmp.ExchangeMainMode, 0), Payloads: []isakmp.Payload{idii, &isakmp.Hash{Data: ini.keys.HashI(ini.saiB, idii.Body())}}}
	receive(res, send(ini, mm5), func(m *isakmp.Message) bool {
		return bytes.Equal(isakmp.First[*isakmp.Hash](m).Data, res.keys.HashI(res.saiB, isakmp.First[*isakmp.ID](m).Body()))
	})
	idir := isakmp.NewIDAddr(res.addr.Addr())
	mm6 := &isakmp.Message{Header: hdr(isakmp.ExchangeMainMode, 0), Payloads: []isakmp.Payload{idir, &isakmp.Hash{Data: res.keys.HashR(res.saiB, idir.Body())}}}
	receive(ini, send(res, mm6), func(m *isakmp.Message) bool {
		return bytes.Equal(isakmp.First[*isakmp.Hash](m).Data, ini.keys.HashR(ini.saiB, isakmp.First[*isakmp.ID](m).Body()))
	})
	if !bytes.Equal(ini.ivs.IV(0), res.ivs.IV(0)) {
		t.Fatalf("phase 1 IV chains diverged")
	}

	// Quick Mode with PFS: HDR*, HASH(1), SA, Ni, KE, IDci, IDcr.
	mid := binary.BigEndian.Uint32(ini.bytes(4))
	spiI, spiR := ini.bytes(4), res.bytes(4)
	qmGroup, _ := keymat.LookupGroup(isakmp.GroupCurve25519)
	iqm, _ := qmGroup.GenerateKey(ini.rand)
	rqm, _ := qmGroup.GenerateKey(res.rand)
	ni2, nr2 := ini.bytes(24), res.bytes(24)
	espSA := func(spi []byte) *isakmp.SA {
		return &isakmp.SA{DOI: isakmp.DOIIPsec, Situation: isakmp.SituationIdentityOnly, Proposals: []isakmp.Proposal{{
			Number: 1, Protocol: isakmp.ProtocolESP, SPI: spi, Transforms: []isakmp.Transform{{Number: 1, ID: isakmp.ESPAESGCM16,
				Attributes: isakmp.IPsecAttributes{Encapsulation: isakmp.EncapTunnel, KeyLength: 128, Group: isakmp.GroupCurve25519, LifeSeconds: 1200}.Attributes()}},
		}}}
	}
	idci, idcr := isakmp.NewIDPrefix(netip.MustParsePrefix("192.168.1.10/32")), isakmp.NewIDPrefix(netip.MustParsePrefix("10.1.0.0/24"))
	rest := []isakmp.Payload{espSA(spiI), &isakmp.Nonce{Data: ni2}, &isakmp.KE{Data: iqm.Public()}, idci, idcr}
	restBytes, err := isakmp.EncodePayloads(rest...)
	if err != nil {
		t.Fatal(err)
	}
	qm1 := &isakmp.Message{Header: hdr(isakmp.ExchangeQuickMode, mid), Payloads: append([]isakmp.Payload{&isakmp.Hash{Data: ini.keys.Hash1(mid, restBytes)}}, rest...)}
	var niB, gqmi []byte
	receive(res, send(ini, qm1), func(m *isakmp.Message) bool {
		after, _ := m.PayloadBytes(1)
		niB, gqmi = isakmp.First[*isakmp.Nonce](m).Body(), isakmp.First[*isakmp.KE](m).Data
		return bytes.Equal(isakmp.First[*isakmp.Hash](m).Data, res.keys.Hash1(mid, after))
	})

	// HDR*, HASH(2), SA, Nr, KE, IDci, IDcr
	rest = []isakmp.Payload{espSA(spiR), &isakmp.Nonce{Data: nr2}, &isakmp.KE{Data: rqm.Public()}, idci, idcr}
	restBytes, _ = isakmp.EncodePayloads(rest...)
	qm2 := &isakmp.Message{Header: hdr(isakmp.ExchangeQuickMode, mid), Payloads: append([]isakmp.Payload{&isakmp.Hash{Data: res.keys.Hash2(mid, niB, restBytes)}}, rest...)}
	var nrB, gqmr []byte
	receive(ini, send(res, qm2), func(m *isakmp.Message) bool {
		after, _ := m.PayloadBytes(1)
		nrB, gqmr = isakmp.First[*isakmp.Nonce](m).Body(), isakmp.First[*isakmp.KE](m).Data
		return bytes.Equal(isakmp.First[*isakmp.Hash](m).Data, ini.keys.Hash2(mid, ni2, after))
	})

	// HDR*, HASH(3)
	qm3 := &isakmp.Message{Header: hdr(isakmp.ExchangeQuickMode, mid), Payloads: []isakmp.Payload{&isakmp.Hash{Data: ini.keys.Hash3(mid, ni2, nrB)}}}
	receive(res, send(ini, qm3), func(m *isakmp.Message) bool {
		return bytes.Equal(isakmp.First[*isakmp.Hash](m).Data, res.keys.Hash3(mid, niB, nr2))
	})
	ini.ivs.Forget(mid)
	res.ivs.Forget(mid)

	// Both IPsec SAs: each is keyed with the SPI its destination chose.
	gqmAtI, err := iqm.SharedSecret(gqmr)
	if err != nil {
		t.Fatal(err)
	}
	gqmAtR, err := rqm.SharedSecret(gqmi)
	if err != nil {
		t.Fatal(err)
	}
	keys := func(p *peer, spi, gqm, ni, nr []byte) keymat.IPsecKeys {
		k, err := p.keys.IPsecKeys(isakmp.ProtocolESP, isakmp.ESPAESGCM16, 128, 0, spi, gqm, ni, nr)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	iOut, rIn := keys(ini, spiR, gqmAtI, ni2, nrB), keys(res, spiR, gqmAtR, niB, nr2)
	iIn, rOut := keys(ini, spiI, gqmAtI, ni2, nrB), keys(res, spiI, gqmAtR, niB, nr2)
	if !bytes.Equal(iOut.Encryption, rIn.Encryption) || !bytes.Equal(iOut.Salt, rIn.Salt) || !bytes.Equal(iIn.Encryption, rOut.Encryption) {
		t.Fatalf("the two ends of an IPsec SA have different keys")
	}
	if bytes.Equal(iOut.Encryption, iIn.Encryption) || len(iOut.Encryption) != 16 || len(iOut.Salt) != 4 {
		t.Fatalf("inbound and outbound keys are equal, or of the wrong size")
	}

	// An Informational exchange afterwards: DPD R-U-THERE with its own M-ID.
	dpdMID := binary.BigEndian.Uint32(res.bytes(4))
	n := isakmp.NewDPD(isakmp.NotifyRUThere, ckyI, ckyR, 7)
	nb, _ := isakmp.EncodePayloads(n)
	info := &isakmp.Message{Header: hdr(isakmp.ExchangeInformational, dpdMID), Payloads: []isakmp.Payload{&isakmp.Hash{Data: res.keys.Hash1(dpdMID, nb)}, n}}
	receive(ini, send(res, info), func(m *isakmp.Message) bool {
		after, _ := m.PayloadBytes(1)
		seq, ok := isakmp.First[*isakmp.Notify](m).DPDSequence()
		return ok && seq == 7 && bytes.Equal(isakmp.First[*isakmp.Hash](m).Data, ini.keys.Hash1(dpdMID, after))
	})
}

// TestForgedMessageDoesNotMoveTheIV sends a Quick Mode message whose HASH is
// wrong: the receiver rejects it without updating its IV, so the genuine
// message that follows still decrypts.
func TestForgedMessageDoesNotMoveTheIV(t *testing.T) {
	prf, _ := keymat.NewPRF(isakmp.HashSHA1)
	ciph, _ := keymat.NewCipher(isakmp.Enc3DES, 0)
	keys, err := keymat.DerivePhase1(keymat.Phase1Params{PRF: prf, Cipher: ciph, AuthMethod: isakmp.AuthMethodPSK,
		PreSharedKey: []byte("k"), Ni: []byte("ni"), Nr: []byte("nr"), GXI: []byte("a"), GXR: []byte("b"), GXY: []byte("c")})
	if err != nil {
		t.Fatal(err)
	}
	block, _ := keys.NewBlock()
	sender, receiver := keys.NewIVs(), keys.NewIVs()
	const mid = 42
	nonce := &isakmp.Nonce{Data: []byte("0123456789")}
	nb, _ := isakmp.EncodePayloads(nonce)
	build := func(hash []byte) []byte {
		m := &isakmp.Message{Header: isakmp.Header{Exchange: isakmp.ExchangeQuickMode, MessageID: mid}, Payloads: []isakmp.Payload{&isakmp.Hash{Data: hash}, nonce}}
		w, err := m.EncodeEncrypted(block, sender.IV(mid))
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	forged := build(bytes.Repeat([]byte{0}, 20))
	genuine := build(keys.Hash1(mid, nb))
	for i, w := range [][]byte{forged, genuine} {
		m, _ := isakmp.Decode(w)
		if err := m.Decrypt(block, receiver.IV(mid)); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		after, _ := m.PayloadBytes(1)
		ok := bytes.Equal(isakmp.First[*isakmp.Hash](m).Data, keys.Hash1(mid, after))
		if ok != (i == 1) {
			t.Fatalf("message %d authenticated: %v", i, ok)
		}
		if ok {
			receiver.Update(mid, m.Ciphertext)
		}
	}
	sender.Update(mid, genuine)
	if !bytes.Equal(sender.IV(mid), receiver.IV(mid)) {
		t.Fatalf("IV chains diverged")
	}
}

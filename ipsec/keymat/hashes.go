package keymat

import (
	"encoding/binary"
	"net/netip"

	"github.com/ipseclab/ipseclab/ipsec/isakmp"
)

// HashI is the initiator's phase 1 authenticator (RFC 2409 §5):
//
//	HASH_I = prf(SKEYID, g^xi | g^xr | CKY-I | CKY-R | SAi_b | IDii_b)
//
// saiB is the body of the initiator's SA payload (as sent by the initiator,
// as received by the responder) and idiiB the body of its ID payload.
func (k *Phase1Keys) HashI(saiB, idiiB []byte) []byte {
	return k.HashIWith(k.PRF, saiB, idiiB)
}

// HashIWith is HashI with another prf than the suite's: ECDSA methods use
// the HMAC of their curve's hash (RFC 4754; pki.HashForECDSA).
func (k *Phase1Keys) HashIWith(prf PRF, saiB, idiiB []byte) []byte {
	return prf.Compute(k.SKEYID, k.GXI, k.GXR, k.CookieI[:], k.CookieR[:], saiB, idiiB)
}

// HashR is the responder's phase 1 authenticator (RFC 2409 §5). It swaps the
// public values and the cookies of HASH_I but still covers the initiator's
// SA body:
//
//	HASH_R = prf(SKEYID, g^xr | g^xi | CKY-R | CKY-I | SAi_b | IDir_b)
func (k *Phase1Keys) HashR(saiB, idirB []byte) []byte {
	return k.HashRWith(k.PRF, saiB, idirB)
}

// HashRWith is HashR with another prf than the suite's (see HashIWith).
func (k *Phase1Keys) HashRWith(prf PRF, saiB, idirB []byte) []byte {
	return prf.Compute(k.SKEYID, k.GXR, k.GXI, k.CookieR[:], k.CookieI[:], saiB, idirB)
}

// Hash1 is prf(SKEYID_a, M-ID | rest), where rest is the message after its
// HASH payload (isakmp.Message.PayloadBytes(1), or isakmp.EncodePayloads of
// the payloads after HASH when sending). It is Quick Mode's HASH(1) (RFC 2409
// §5.5), the Informational exchange's HASH(1) (RFC 2409 §5.7) and the
// Transaction exchange's HASH (draft-ietf-ipsec-isakmp-mode-cfg-05 §3.3).
func (k *Phase1Keys) Hash1(mid uint32, rest []byte) []byte {
	return k.PRF.Compute(k.SKEYIDa, midBytes(mid), rest)
}

// Hash2 is Quick Mode's HASH(2) (RFC 2409 §5.5): prf(SKEYID_a, M-ID | Ni_b |
// rest), with the initiator's nonce body between the message ID and the
// responder's message after its HASH payload.
func (k *Phase1Keys) Hash2(mid uint32, niB, rest []byte) []byte {
	return k.PRF.Compute(k.SKEYIDa, midBytes(mid), niB, rest)
}

// Hash3 is Quick Mode's HASH(3) (RFC 2409 §5.5):
// prf(SKEYID_a, 0 | M-ID | Ni_b | Nr_b).
func (k *Phase1Keys) Hash3(mid uint32, niB, nrB []byte) []byte {
	return k.PRF.Compute(k.SKEYIDa, []byte{0}, midBytes(mid), niB, nrB)
}

func midBytes(mid uint32) []byte { return binary.BigEndian.AppendUint32(nil, mid) }

// NATD is the NAT-D hash of one end of the exchange (RFC 3947 §3.2):
// HASH(CKY-I | CKY-R | IP | Port) with the negotiated hash (not the PRF), the
// address in 4 or 16 bytes and the port in 2, network order.
func NATD(prf PRF, ckyI, ckyR isakmp.Cookie, addr netip.AddrPort) []byte {
	return prf.Hash(ckyI[:], ckyR[:], addr.Addr().Unmap().AsSlice(), binary.BigEndian.AppendUint16(nil, addr.Port()))
}

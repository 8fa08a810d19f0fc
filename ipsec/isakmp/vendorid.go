package isakmp

import (
	"bytes"
	"encoding/hex"
)

// KnownVendor is a Vendor ID this package recognises. Most are MD5 hashes of a
// string (RFC 3947 §3.1 for NAT-T, RFC 3706 §4 for DPD); the table records
// whether a longer, version-specific ID is recognised by its prefix.
type KnownVendor int

const (
	VendorUnknown KnownVendor = iota
	VendorNATTRFC3947
	VendorNATTDraft02
	VendorNATTDraft02N // draft-ietf-ipsec-nat-t-ike-02 with a newline in the hashed string
	VendorNATTDraft03
	VendorNATTDraft00
	VendorNATTDraft04
	VendorNATTDraft05
	VendorNATTDraft06
	VendorNATTDraft07
	VendorNATTDraft08
	VendorDPD
	VendorXAuth
	VendorCiscoUnity
	VendorFragmentation
	VendorStrongSwan
	VendorMSNT5
	VendorCheckPoint
	VendorHeartbeatNotify
)

type vendorEntry struct {
	name   string
	id     []byte
	prefix bool // recognise any VID that starts with id
}

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

var vendors = map[KnownVendor]vendorEntry{
	VendorNATTRFC3947:     {"RFC 3947 NAT-T", mustHex("4a131c81070358455c5728f20e95452f"), false},
	VendorNATTDraft02:     {"draft-ietf-ipsec-nat-t-ike-02", mustHex("cd60464335df21f87cfdb2fc68b6a448"), false},
	VendorNATTDraft02N:    {"draft-ietf-ipsec-nat-t-ike-02\\n", mustHex("90cb80913ebb696e086381b5ec427b1f"), false},
	VendorNATTDraft03:     {"draft-ietf-ipsec-nat-t-ike-03", mustHex("7d9419a65310ca6f2c179d9215529d56"), false},
	VendorNATTDraft00:     {"draft-ietf-ipsec-nat-t-ike-00", mustHex("4485152d18b6bbcd0be8a8469579ddcc"), false},
	VendorNATTDraft04:     {"draft-ietf-ipsec-nat-t-ike-04", mustHex("9909b64eed937c6573de52ace952fa6b"), false},
	VendorNATTDraft05:     {"draft-ietf-ipsec-nat-t-ike-05", mustHex("80d0bb3def54565ee84645d4c85ce3ee"), false},
	VendorNATTDraft06:     {"draft-ietf-ipsec-nat-t-ike-06", mustHex("4d1e0e136deafa34c4f3ea9f02ec7285"), false},
	VendorNATTDraft07:     {"draft-ietf-ipsec-nat-t-ike-07", mustHex("439b59f8ba676c4c7737ae22eab8f582"), false},
	VendorNATTDraft08:     {"draft-ietf-ipsec-nat-t-ike-08", mustHex("8f8d83826d246b6fc7a8a6a428c11de8"), false},
	VendorDPD:             {"Dead Peer Detection v1.0", mustHex("afcad71368a1f1c96b8696fc77570100"), false},
	VendorXAuth:           {"XAUTH", mustHex("09002689dfd6b712"), false},
	VendorCiscoUnity:      {"Cisco Unity", mustHex("12f5f28c457168a9702d9fe274cc"), true},
	VendorFragmentation:   {"FRAGMENTATION", mustHex("4048b7d56ebce88525e7de7f00d6c2d3"), true},
	VendorStrongSwan:      {"strongSwan", mustHex("882fe56d6fd20dbc2251613b2ebe5beb"), true},
	VendorMSNT5:           {"MS NT5 ISAKMPOAKLEY", mustHex("1e2b516905991c7d7c96fcbfb587e461"), true},
	VendorCheckPoint:      {"Check Point", mustHex("f4ed19e0c114eb516faaac0ee37daf2807b4381f"), true},
	VendorHeartbeatNotify: {"HeartBeat_Notify", []byte("HeartBeat_Notify"), true},
}

// vendorSent holds the exact bytes we send for a vendor whose table entry is a
// prefix: Cisco Unity version 1.0, fragmentation with the "IKE messages"
// capability bit that racoon and strongSwan send.
var vendorSent = map[KnownVendor][]byte{
	VendorCiscoUnity:    mustHex("12f5f28c457168a9702d9fe274cc0100"),
	VendorFragmentation: mustHex("4048b7d56ebce88525e7de7f00d6c2d380000000"),
}

// String names the vendor ID the way strongSwan and ike-scan log it.
func (k KnownVendor) String() string {
	if e, ok := vendors[k]; ok {
		return e.name
	}
	return "unknown"
}

// Bytes returns the vendor ID to send (a fresh copy).
func (k KnownVendor) Bytes() []byte {
	if b, ok := vendorSent[k]; ok {
		return bytes.Clone(b)
	}
	return bytes.Clone(vendors[k].id)
}

// NATT reports whether k announces a NAT traversal version this package
// speaks, and whether it is one of the drafts, which use payload types
// 130/131 and encapsulation modes 61443/61444 instead of RFC 3947's 20/21 and
// 3/4.
func (k KnownVendor) NATT() (supported, draft bool) {
	switch k {
	case VendorNATTRFC3947:
		return true, false
	case VendorNATTDraft02, VendorNATTDraft02N, VendorNATTDraft03:
		return true, true
	}
	return false, false
}

// NewVendorID returns a Vendor ID payload announcing k.
func NewVendorID(k KnownVendor) *VendorID { return &VendorID{Data: k.Bytes()} }

// Known returns which vendor ID the payload carries, or VendorUnknown.
func (p *VendorID) Known() KnownVendor {
	for k, e := range vendors {
		if bytes.Equal(p.Data, e.id) || (e.prefix && bytes.HasPrefix(p.Data, e.id)) {
			return k
		}
	}
	return VendorUnknown
}

package isakmp

import "fmt"

// IPsec DOI SA attribute classes for AH/ESP/IPCOMP transforms, RFC 2407 §4.5
// (11: RFC 4304, 12–13: RFC 4359, 14–15: RFC 6407).
const (
	IPsecSALifeType          AttributeType = 1
	IPsecSALifeDuration      AttributeType = 2
	IPsecGroupDescription    AttributeType = 3 // PFS group of Quick Mode
	IPsecEncapsulationMode   AttributeType = 4
	IPsecAuthAlgorithm       AttributeType = 5
	IPsecKeyLength           AttributeType = 6
	IPsecKeyRounds           AttributeType = 7
	IPsecCompressDictSize    AttributeType = 8
	IPsecCompressPrivateAlg  AttributeType = 9
	IPsecECNTunnel           AttributeType = 10
	IPsecExtendedSeqNum      AttributeType = 11
	IPsecAuthKeyLength       AttributeType = 12
	IPsecSigEncodingAlg      AttributeType = 13
	IPsecAddressPreservation AttributeType = 14
	IPsecSADirection         AttributeType = 15
)

// ipsecExtendedSeqNumEnabled is the only value RFC 4304 defines for the
// Extended Sequence Number attribute.
const ipsecExtendedSeqNumEnabled uint16 = 1

var ipsecAttrNames = map[AttributeType]string{
	IPsecSALifeType: "SA-Life-Type", IPsecSALifeDuration: "SA-Life-Duration", IPsecGroupDescription: "Group-Description",
	IPsecEncapsulationMode: "Encapsulation-Mode", IPsecAuthAlgorithm: "Authentication-Algorithm", IPsecKeyLength: "Key-Length",
	IPsecKeyRounds: "Key-Rounds", IPsecCompressDictSize: "Compress-Dictionary-Size", IPsecCompressPrivateAlg: "Compress-Private-Algorithm",
	IPsecECNTunnel: "ECN Tunnel", IPsecExtendedSeqNum: "Extended (64-bit) Sequence Number",
	IPsecAuthKeyLength: "Authentication Key Length", IPsecSigEncodingAlg: "Signature Encoding Algorithm",
	IPsecAddressPreservation: "Address Preservation", IPsecSADirection: "SA Direction",
}

// IPsecAttributeName returns Wireshark's name for an IPsec DOI attribute class.
func IPsecAttributeName(t AttributeType) string { return attrName(ipsecAttrNames, t) }

// EncapsulationMode is the IPsec DOI Encapsulation Mode (RFC 2407 §4.5, RFC
// 3947 §5 for the UDP-encapsulated modes; the 61443/61444 values are those of
// draft-ietf-ipsec-nat-t-ike-02/03, still sent by peers that negotiated NAT-T
// with a draft vendor ID).
type EncapsulationMode uint16

const (
	EncapTunnel               EncapsulationMode = 1
	EncapTransport            EncapsulationMode = 2
	EncapUDPTunnel            EncapsulationMode = 3
	EncapUDPTransport         EncapsulationMode = 4
	EncapUDPTunnelDraft       EncapsulationMode = 61443
	EncapUDPTransportDraft    EncapsulationMode = 61444
	encapCheckPointUDPPrivate EncapsulationMode = 61440
)

var encapNames = map[EncapsulationMode]string{
	EncapTunnel: "Tunnel", EncapTransport: "Transport",
	EncapUDPTunnel: "UDP-Encapsulated-Tunnel", EncapUDPTransport: "UDP-Encapsulated-Transport",
	encapCheckPointUDPPrivate: "Check Point IPSec UDP Encapsulation",
	EncapUDPTunnelDraft:       "UDP-Encapsulated-Tunnel (draft)", EncapUDPTransportDraft: "UDP-Encapsulated-Transport (draft)",
}

func (e EncapsulationMode) String() string { return valueName(encapNames, e) }

// Tunnel reports whether the mode is one of the tunnel modes.
func (e EncapsulationMode) Tunnel() bool {
	return e == EncapTunnel || e == EncapUDPTunnel || e == EncapUDPTunnelDraft
}

// UDPEncapsulated reports whether the mode asks for RFC 3948 UDP encapsulation.
func (e EncapsulationMode) UDPEncapsulated() bool {
	switch e {
	case EncapUDPTunnel, EncapUDPTransport, EncapUDPTunnelDraft, EncapUDPTransportDraft:
		return true
	}
	return false
}

// AuthAlgorithm is the IPsec DOI Authentication Algorithm of an AH or ESP
// transform (RFC 2407 §4.5, RFC 4868 for SHA2).
type AuthAlgorithm uint16

const (
	AuthAlgHMACMD5    AuthAlgorithm = 1
	AuthAlgHMACSHA1   AuthAlgorithm = 2
	AuthAlgDESMAC     AuthAlgorithm = 3
	AuthAlgKPDK       AuthAlgorithm = 4
	AuthAlgHMACSHA256 AuthAlgorithm = 5
	AuthAlgHMACSHA384 AuthAlgorithm = 6
	AuthAlgHMACSHA512 AuthAlgorithm = 7
	AuthAlgHMACRIPEMD AuthAlgorithm = 8
	AuthAlgAESXCBCMAC AuthAlgorithm = 9
	AuthAlgSigRSA     AuthAlgorithm = 10
	AuthAlgAES128GMAC AuthAlgorithm = 11
	AuthAlgAES192GMAC AuthAlgorithm = 12
	AuthAlgAES256GMAC AuthAlgorithm = 13
)

var authAlgNames = map[AuthAlgorithm]string{
	AuthAlgHMACMD5: "HMAC-MD5", AuthAlgHMACSHA1: "HMAC-SHA", AuthAlgDESMAC: "DES-MAC", AuthAlgKPDK: "KPDK",
	AuthAlgHMACSHA256: "HMAC-SHA2-256", AuthAlgHMACSHA384: "HMAC-SHA2-384", AuthAlgHMACSHA512: "HMAC-SHA2-512",
	AuthAlgHMACRIPEMD: "HMAC-RIPEMD", AuthAlgAESXCBCMAC: "AES-XCBC-MAC", AuthAlgSigRSA: "SIG-RSA",
	AuthAlgAES128GMAC: "AES-128-GMAC", AuthAlgAES192GMAC: "AES-192-GMAC", AuthAlgAES256GMAC: "AES-256-GMAC",
}

func (a AuthAlgorithm) String() string { return valueName(authAlgNames, a) }

// TransformID is the Transform-Id of a Transform payload. Its meaning depends
// on the proposal's protocol (RFC 2407 §4.4); use TransformName to print one.
type TransformID uint8

// ISAKMP transform (RFC 2407 §4.4.2).
const TransformKeyIKE TransformID = 1

// ESP transforms (RFC 2407 §4.4.4 and the IANA registry).
const (
	ESPDESIV64         TransformID = 1
	ESPDES             TransformID = 2
	ESP3DES            TransformID = 3
	ESPRC5             TransformID = 4
	ESPIDEA            TransformID = 5
	ESPCAST            TransformID = 6
	ESPBlowfish        TransformID = 7
	ESP3IDEA           TransformID = 8
	ESPDESIV32         TransformID = 9
	ESPRC4             TransformID = 10
	ESPNull            TransformID = 11
	ESPAESCBC          TransformID = 12 // RFC 3602
	ESPAESCTR          TransformID = 13 // RFC 3686
	ESPAESCCM8         TransformID = 14
	ESPAESCCM12        TransformID = 15
	ESPAESCCM16        TransformID = 16
	ESPAESGCM8         TransformID = 18 // RFC 4106
	ESPAESGCM12        TransformID = 19
	ESPAESGCM16        TransformID = 20
	ESPSEEDCBC         TransformID = 21
	ESPCamelliaCBC     TransformID = 22
	ESPNullAuthAESGMAC TransformID = 23 // RFC 4543
)

// AH transforms (RFC 2407 §4.4.3, RFC 4868).
const (
	AHMD5        TransformID = 2
	AHSHA1       TransformID = 3
	AHDES        TransformID = 4
	AHSHA2_256   TransformID = 5
	AHSHA2_384   TransformID = 6
	AHSHA2_512   TransformID = 7
	AHRIPEMD     TransformID = 8
	AHAESXCBCMAC TransformID = 9
	AHRSA        TransformID = 10
	AHAES128GMAC TransformID = 11
	AHAES192GMAC TransformID = 12
	AHAES256GMAC TransformID = 13
)

// IPCOMP transforms (RFC 2407 §4.4.5).
const (
	IPCompOUI     TransformID = 1
	IPCompDeflate TransformID = 2
	IPCompLZS     TransformID = 3
	IPCompLZJH    TransformID = 4
)

var espNames = map[TransformID]string{
	ESPDESIV64: "ESP_DES_IV64", ESPDES: "ESP_DES", ESP3DES: "ESP_3DES", ESPRC5: "ESP_RC5", ESPIDEA: "ESP_IDEA",
	ESPCAST: "ESP_CAST", ESPBlowfish: "ESP_BLOWFISH", ESP3IDEA: "ESP_3IDEA", ESPDESIV32: "ESP_DES_IV32",
	ESPRC4: "ESP_RC4", ESPNull: "ESP_NULL", ESPAESCBC: "ESP_AES_CBC", ESPAESCTR: "ESP_AES_CTR",
	ESPAESCCM8: "ESP_AES_CCM_8", ESPAESCCM12: "ESP_AES_CCM_12", ESPAESCCM16: "ESP_AES_CCM_16",
	ESPAESGCM8: "ESP_AES_GCM_8", ESPAESGCM12: "ESP_AES_GCM_12", ESPAESGCM16: "ESP_AES_GCM_16",
	ESPSEEDCBC: "ESP_SEED_CBC", ESPCamelliaCBC: "ESP_CAMELLIA", ESPNullAuthAESGMAC: "ESP_NULL_AUTH_AES_GMAC",
}

var ahNames = map[TransformID]string{
	AHMD5: "AH_MD5", AHSHA1: "AH_SHA", AHDES: "AH_DES", AHSHA2_256: "AH_SHA2_256", AHSHA2_384: "AH_SHA2_384",
	AHSHA2_512: "AH_SHA2_512", AHRIPEMD: "AH_RIPEMD", AHAESXCBCMAC: "AH_AES_XCBC_MAC", AHRSA: "AH_RSA",
	AHAES128GMAC: "AH_AES_128_GMAC", AHAES192GMAC: "AH_AES_192_GMAC", AHAES256GMAC: "AH_AES_256_GMAC",
}

var ipcompNames = map[TransformID]string{
	IPCompOUI: "IPCOMP_OUI", IPCompDeflate: "IPCOMP_DEFLATE", IPCompLZS: "IPCOMP_LZS", IPCompLZJH: "IPCOMP_LZJH",
}

// TransformName returns the RFC 2407 name of a transform of the given protocol.
func TransformName(p ProtocolID, id TransformID) string {
	var names map[TransformID]string
	switch p {
	case ProtocolISAKMP:
		names = map[TransformID]string{TransformKeyIKE: "KEY_IKE"}
	case ProtocolESP:
		names = espNames
	case ProtocolAH:
		names = ahNames
	case ProtocolIPComp:
		names = ipcompNames
	}
	if s, ok := names[id]; ok {
		return s
	}
	return fmt.Sprintf("TRANSFORM_%d", uint8(id))
}

// IPsecAttributes is the meaning of the attributes of one AH, ESP or IPCOMP
// transform (RFC 2407 §4.5). Attributes it does not interpret are kept in
// Other in their received order.
type IPsecAttributes struct {
	Encapsulation EncapsulationMode // 0 when absent (RFC 2407: unspecified, an implementation default)
	AuthAlgorithm AuthAlgorithm     // 0 when absent (e.g. ESP with a combined-mode cipher)
	KeyLength     uint16            // bits; 0 when absent
	Group         GroupDescription  // PFS group; 0 when absent
	LifeSeconds   uint64            // 0 when absent
	LifeKilobytes uint64            // 0 when absent
	ESN           bool              // Extended (64-bit) Sequence Numbers (RFC 4304)
	Other         []Attribute
}

// ParseIPsecAttributes interprets an IPsec transform's attributes, or the
// attribute list of a RESPONDER-LIFETIME notification. It fails, with
// ATTRIBUTES-NOT-SUPPORTED, when an attribute appears twice, a value is not a
// number, or an SA Life Duration does not follow an SA Life Type.
func ParseIPsecAttributes(attrs []Attribute) (IPsecAttributes, error) {
	var p IPsecAttributes
	seen := map[AttributeType]bool{}
	var life LifeType
	for _, a := range attrs {
		switch a.Type {
		case IPsecSALifeType, IPsecSALifeDuration:
		default:
			if seen[a.Type] {
				return p, attrError("IPsec attribute %s appears twice", IPsecAttributeName(a.Type))
			}
			seen[a.Type] = true
		}
		switch a.Type {
		case IPsecSALifeType, IPsecSALifeDuration, IPsecGroupDescription, IPsecEncapsulationMode, IPsecAuthAlgorithm, IPsecKeyLength, IPsecExtendedSeqNum:
		default:
			p.Other = append(p.Other, a)
			continue
		}
		v, ok := a.Uint()
		if !ok || (a.Type != IPsecSALifeDuration && v > 0xffff) {
			return p, attrError("IPsec attribute %s has a malformed value", IPsecAttributeName(a.Type))
		}
		switch a.Type {
		case IPsecSALifeType:
			life = LifeType(v)
		case IPsecSALifeDuration:
			if err := setLife(life, v, &p.LifeSeconds, &p.LifeKilobytes); err != nil {
				return p, err
			}
			life = 0
		case IPsecGroupDescription:
			p.Group = GroupDescription(v)
		case IPsecEncapsulationMode:
			p.Encapsulation = EncapsulationMode(v)
		case IPsecAuthAlgorithm:
			p.AuthAlgorithm = AuthAlgorithm(v)
		case IPsecKeyLength:
			p.KeyLength = uint16(v)
		case IPsecExtendedSeqNum:
			if uint16(v) != ipsecExtendedSeqNumEnabled {
				return p, attrError("unknown Extended Sequence Number value %d", v)
			}
			p.ESN = true
		}
	}
	return p, nil
}

// Attributes encodes p: lifetimes, group, encapsulation, authentication, key
// length, ESN, then Other. Zero fields are left out.
func (p IPsecAttributes) Attributes() []Attribute {
	attrs := appendLife(nil, IPsecSALifeType, IPsecSALifeDuration, p.LifeSeconds, p.LifeKilobytes)
	if p.Group != 0 {
		attrs = append(attrs, Basic(IPsecGroupDescription, uint16(p.Group)))
	}
	if p.Encapsulation != 0 {
		attrs = append(attrs, Basic(IPsecEncapsulationMode, uint16(p.Encapsulation)))
	}
	if p.AuthAlgorithm != 0 {
		attrs = append(attrs, Basic(IPsecAuthAlgorithm, uint16(p.AuthAlgorithm)))
	}
	if p.KeyLength != 0 {
		attrs = append(attrs, Basic(IPsecKeyLength, p.KeyLength))
	}
	if p.ESN {
		attrs = append(attrs, Basic(IPsecExtendedSeqNum, ipsecExtendedSeqNumEnabled))
	}
	return append(attrs, p.Other...)
}

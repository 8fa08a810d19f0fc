package isakmp

import (
	"fmt"
	"strings"
)

// ExchangeType is the Exchange Type field of the ISAKMP header (RFC 2408
// §3.1, values from RFC 2408 §4.1 and RFC 2409 §9).
type ExchangeType uint8

const (
	ExchangeNone          ExchangeType = 0
	ExchangeBase          ExchangeType = 1
	ExchangeMainMode      ExchangeType = 2 // Identity Protection (RFC 2409 §5)
	ExchangeAuthOnly      ExchangeType = 3
	ExchangeAggressive    ExchangeType = 4 // RFC 2409 §5
	ExchangeInformational ExchangeType = 5 // RFC 2408 §4.8, RFC 2409 §5.7
	ExchangeTransaction   ExchangeType = 6 // Mode Config / XAUTH (draft-ietf-ipsec-isakmp-mode-cfg-05)
	ExchangeQuickMode     ExchangeType = 32
	ExchangeNewGroup      ExchangeType = 33
)

var exchangeNames = map[ExchangeType]string{
	ExchangeNone:          "NONE",
	ExchangeBase:          "Base",
	ExchangeMainMode:      "Identity Protection (Main Mode)",
	ExchangeAuthOnly:      "Authentication Only",
	ExchangeAggressive:    "Aggressive",
	ExchangeInformational: "Informational",
	ExchangeTransaction:   "Transaction (Config Mode)",
	ExchangeQuickMode:     "Quick Mode",
	ExchangeNewGroup:      "New Group Mode",
}

var exchangeAbbrevs = map[ExchangeType]string{
	ExchangeBase:          "BASE",
	ExchangeMainMode:      "MAIN",
	ExchangeAuthOnly:      "AUTH_ONLY",
	ExchangeAggressive:    "AGGRESSIVE",
	ExchangeInformational: "INFORMATIONAL",
	ExchangeTransaction:   "TRANSACTION",
	ExchangeQuickMode:     "QUICK",
	ExchangeNewGroup:      "NEW_GROUP",
}

// String returns the name Wireshark prints for the exchange type.
func (e ExchangeType) String() string {
	if s, ok := exchangeNames[e]; ok {
		return s
	}
	return fmt.Sprintf("Unknown (%d)", uint8(e))
}

// Abbrev returns a short upper-case name ("MAIN", "QUICK", ...) for events
// and logs.
func (e ExchangeType) Abbrev() string {
	if s, ok := exchangeAbbrevs[e]; ok {
		return s
	}
	return fmt.Sprintf("EXCHANGE_%d", uint8(e))
}

// Flags is the Flags field of the ISAKMP header (RFC 2408 §3.1). Bits other
// than E, C and A are reserved; decoding keeps them as received.
type Flags uint8

const (
	FlagEncryption     Flags = 0x01 // E: the payloads after the header are encrypted
	FlagCommit         Flags = 0x02 // C: key exchange synchronisation (RFC 2408 §3.1)
	FlagAuthentication Flags = 0x04 // A: authenticated but not encrypted (Informational)
)

// String renders the set flags as "E|C|A" (empty for none).
func (f Flags) String() string {
	var parts []string
	if f&FlagEncryption != 0 {
		parts = append(parts, "E")
	}
	if f&FlagCommit != 0 {
		parts = append(parts, "C")
	}
	if f&FlagAuthentication != 0 {
		parts = append(parts, "A")
	}
	if rest := f &^ (FlagEncryption | FlagCommit | FlagAuthentication); rest != 0 {
		parts = append(parts, fmt.Sprintf("0x%02x", uint8(rest)))
	}
	return strings.Join(parts, "|")
}

// PayloadType is a Next Payload value (RFC 2408 §3.1; 14 from
// draft-ietf-ipsec-isakmp-mode-cfg-05, 15–19 from RFC 3547, 20–21 from RFC 3947,
// 130–131 from draft-ietf-ipsec-nat-t-ike-02/03, 132 the Cisco/strongSwan
// fragmentation payload).
type PayloadType uint8

const (
	PayloadNone        PayloadType = 0
	PayloadSA          PayloadType = 1
	PayloadProposal    PayloadType = 2
	PayloadTransform   PayloadType = 3
	PayloadKE          PayloadType = 4
	PayloadID          PayloadType = 5
	PayloadCert        PayloadType = 6
	PayloadCertRequest PayloadType = 7
	PayloadHash        PayloadType = 8
	PayloadSignature   PayloadType = 9
	PayloadNonce       PayloadType = 10
	PayloadNotify      PayloadType = 11
	PayloadDelete      PayloadType = 12
	PayloadVendorID    PayloadType = 13
	PayloadAttributes  PayloadType = 14 // Mode Config / XAUTH attribute payload
	PayloadSAK         PayloadType = 15 // RFC 3547 (GDOI)
	PayloadSAT         PayloadType = 16
	PayloadKD          PayloadType = 17
	PayloadSEQ         PayloadType = 18
	PayloadPOP         PayloadType = 19
	PayloadNATD        PayloadType = 20 // RFC 3947
	PayloadNATOA       PayloadType = 21 // RFC 3947
	PayloadNATDDraft   PayloadType = 130
	PayloadNATOADraft  PayloadType = 131
	PayloadFragment    PayloadType = 132
)

// payloadNames are Wireshark's names (packet-isakmp.c, payload_type). 15 and
// 16 carry the names of draft-ietf-ipsec-nat-t-ike-04..08, as Wireshark shows
// them; 17..19 are RFC 3547's names.
var payloadNames = map[PayloadType]string{
	PayloadNone:        "NONE / No Next Payload",
	PayloadSA:          "Security Association",
	PayloadProposal:    "Proposal",
	PayloadTransform:   "Transform",
	PayloadKE:          "Key Exchange",
	PayloadID:          "Identification",
	PayloadCert:        "Certificate",
	PayloadCertRequest: "Certificate Request",
	PayloadHash:        "Hash",
	PayloadSignature:   "Signature",
	PayloadNonce:       "Nonce",
	PayloadNotify:      "Notification",
	PayloadDelete:      "Delete",
	PayloadVendorID:    "Vendor ID",
	PayloadAttributes:  "Attributes",
	PayloadSAK:         "NAT-Discovery",
	PayloadSAT:         "NAT-Original Address",
	PayloadKD:          "Key Download",
	PayloadSEQ:         "Sequence Number",
	PayloadPOP:         "Proof of Possession",
	PayloadNATD:        "NAT-D (RFC 3947)",
	PayloadNATOA:       "NAT-OA (RFC 3947)",
	PayloadNATDDraft:   "NAT-D (draft-ietf-ipsec-nat-t-ike-01 to 03)",
	PayloadNATOADraft:  "NAT-OA (draft-ietf-ipsec-nat-t-ike-01 to 03)",
	PayloadFragment:    "Cisco-Fragmentation",
}

var payloadAbbrevs = map[PayloadType]string{
	PayloadNone:        "NONE",
	PayloadSA:          "SA",
	PayloadProposal:    "P",
	PayloadTransform:   "T",
	PayloadKE:          "KE",
	PayloadID:          "ID",
	PayloadCert:        "CERT",
	PayloadCertRequest: "CR",
	PayloadHash:        "HASH",
	PayloadSignature:   "SIG",
	PayloadNonce:       "NONCE",
	PayloadNotify:      "N",
	PayloadDelete:      "D",
	PayloadVendorID:    "VID",
	PayloadAttributes:  "ATTR",
	PayloadSAK:         "SAK",
	PayloadSAT:         "SAT",
	PayloadKD:          "KD",
	PayloadSEQ:         "SEQ",
	PayloadPOP:         "POP",
	PayloadNATD:        "NAT-D",
	PayloadNATOA:       "NAT-OA",
	PayloadNATDDraft:   "NAT-D-DRAFT",
	PayloadNATOADraft:  "NAT-OA-DRAFT",
	PayloadFragment:    "FRAG",
}

// String returns the name Wireshark prints for the payload type.
func (p PayloadType) String() string {
	if s, ok := payloadNames[p]; ok {
		return s
	}
	if p >= 128 {
		return fmt.Sprintf("Private Use (%d)", uint8(p))
	}
	return fmt.Sprintf("Unassigned (%d)", uint8(p))
}

// Abbrev returns the short name used in message summaries such as
// "HDR, SA, KE, NONCE, NAT-D, NAT-D" (the notation of RFC 2409 §5).
func (p PayloadType) Abbrev() string {
	if s, ok := payloadAbbrevs[p]; ok {
		return s
	}
	return fmt.Sprintf("PAYLOAD_%d", uint8(p))
}

// DOI is a Domain of Interpretation (RFC 2408 §2.1, RFC 2407 §4.2).
type DOI uint32

const (
	DOIISAKMP DOI = 0
	DOIIPsec  DOI = 1 // RFC 2407
	DOIGDOI   DOI = 2 // RFC 3547
)

func (d DOI) String() string {
	switch d {
	case DOIISAKMP:
		return "ISAKMP"
	case DOIIPsec:
		return "IPSEC"
	case DOIGDOI:
		return "GDOI"
	}
	return fmt.Sprintf("DOI(%d)", uint32(d))
}

// Situation is the IPsec DOI situation bitmap of an SA payload (RFC 2407
// §4.2). IKE as specified by RFC 2409 uses SIT_IDENTITY_ONLY.
type Situation uint32

const (
	SituationIdentityOnly Situation = 0x01
	SituationSecrecy      Situation = 0x02
	SituationIntegrity    Situation = 0x04
)

// ProtocolID is the Protocol-Id of a Proposal, Notify or Delete payload
// (RFC 2407 §4.4.1).
type ProtocolID uint8

const (
	ProtocolReserved ProtocolID = 0
	ProtocolISAKMP   ProtocolID = 1
	ProtocolAH       ProtocolID = 2
	ProtocolESP      ProtocolID = 3
	ProtocolIPComp   ProtocolID = 4
)

// String returns the name Wireshark prints for the protocol.
func (p ProtocolID) String() string {
	switch p {
	case ProtocolReserved:
		return "RESERVED"
	case ProtocolISAKMP:
		return "ISAKMP"
	case ProtocolAH:
		return "IPSEC_AH"
	case ProtocolESP:
		return "IPSEC_ESP"
	case ProtocolIPComp:
		return "IPCOMP"
	}
	return fmt.Sprintf("PROTO(%d)", uint8(p))
}

// IDType is the Identification Type of an ID payload (RFC 2407 §4.6.2.1).
type IDType uint8

const (
	IDIPv4Addr       IDType = 1
	IDFQDN           IDType = 2
	IDUserFQDN       IDType = 3
	IDIPv4AddrSubnet IDType = 4
	IDIPv6Addr       IDType = 5
	IDIPv6AddrSubnet IDType = 6
	IDIPv4AddrRange  IDType = 7
	IDIPv6AddrRange  IDType = 8
	IDDERASN1DN      IDType = 9
	IDDERASN1GN      IDType = 10
	IDKeyID          IDType = 11
)

var idTypeNames = map[IDType]string{
	IDIPv4Addr:       "IPV4_ADDR",
	IDFQDN:           "FQDN",
	IDUserFQDN:       "USER_FQDN",
	IDIPv4AddrSubnet: "IPV4_ADDR_SUBNET",
	IDIPv6Addr:       "IPV6_ADDR",
	IDIPv6AddrSubnet: "IPV6_ADDR_SUBNET",
	IDIPv4AddrRange:  "IPV4_ADDR_RANGE",
	IDIPv6AddrRange:  "IPV6_ADDR_RANGE",
	IDDERASN1DN:      "DER_ASN1_DN",
	IDDERASN1GN:      "DER_ASN1_GN",
	IDKeyID:          "KEY_ID",
}

func (t IDType) String() string {
	if s, ok := idTypeNames[t]; ok {
		return s
	}
	return fmt.Sprintf("ID_TYPE(%d)", uint8(t))
}

// CertEncoding is the Certificate Encoding of CERT and CR payloads (RFC 2408
// §3.9).
type CertEncoding uint8

const (
	CertPKCS7            CertEncoding = 1
	CertPGP              CertEncoding = 2
	CertDNSSignedKey     CertEncoding = 3
	CertX509Signature    CertEncoding = 4
	CertX509KeyExchange  CertEncoding = 5
	CertKerberos         CertEncoding = 6
	CertCRL              CertEncoding = 7
	CertARL              CertEncoding = 8
	CertSPKI             CertEncoding = 9
	CertX509AttributeCRT CertEncoding = 10
)

var certNames = map[CertEncoding]string{
	0:                    "NONE",
	CertPKCS7:            "PKCS #7 wrapped X.509 certificate",
	CertPGP:              "PGP Certificate",
	CertDNSSignedKey:     "DNS Signed Key",
	CertX509Signature:    "X.509 Certificate - Signature",
	CertX509KeyExchange:  "X.509 Certificate - Key Exchange",
	CertKerberos:         "Kerberos Tokens",
	CertCRL:              "Certificate Revocation List (CRL)",
	CertARL:              "Authority Revocation List (ARL)",
	CertSPKI:             "SPKI Certificate",
	CertX509AttributeCRT: "X.509 Certificate - Attribute",
}

// String returns the name Wireshark prints for the encoding.
func (c CertEncoding) String() string {
	if s, ok := certNames[c]; ok {
		return s
	}
	return fmt.Sprintf("RESERVED (%d)", uint8(c))
}

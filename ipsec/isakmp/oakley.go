package isakmp

import "fmt"

// Phase 1 (KEY_IKE transform) attribute classes, RFC 2409 Appendix A. B marks
// basic (TV) classes, V variable ones.
const (
	OakleyEncryptionAlgorithm AttributeType = 1  // B
	OakleyHashAlgorithm       AttributeType = 2  // B
	OakleyAuthMethod          AttributeType = 3  // B
	OakleyGroupDescription    AttributeType = 4  // B
	OakleyGroupType           AttributeType = 5  // B
	OakleyGroupPrime          AttributeType = 6  // V
	OakleyGroupGeneratorOne   AttributeType = 7  // V
	OakleyGroupGeneratorTwo   AttributeType = 8  // V
	OakleyGroupCurveA         AttributeType = 9  // V
	OakleyGroupCurveB         AttributeType = 10 // V
	OakleyLifeType            AttributeType = 11 // B
	OakleyLifeDuration        AttributeType = 12 // V
	OakleyPRF                 AttributeType = 13 // B
	OakleyKeyLength           AttributeType = 14 // B
	OakleyFieldSize           AttributeType = 15 // B
	OakleyGroupOrder          AttributeType = 16 // V
)

var oakleyAttrNames = map[AttributeType]string{
	OakleyEncryptionAlgorithm: "Encryption-Algorithm",
	OakleyHashAlgorithm:       "Hash-Algorithm",
	OakleyAuthMethod:          "Authentication-Method",
	OakleyGroupDescription:    "Group-Description",
	OakleyGroupType:           "Group-Type",
	OakleyGroupPrime:          "Group-Prime",
	OakleyGroupGeneratorOne:   "Group-Generator-One",
	OakleyGroupGeneratorTwo:   "Group-Generator-Two",
	OakleyGroupCurveA:         "Group-Curve-A",
	OakleyGroupCurveB:         "Group-Curve-B",
	OakleyLifeType:            "Life-Type",
	OakleyLifeDuration:        "Life-Duration",
	OakleyPRF:                 "PRF",
	OakleyKeyLength:           "Key-Length",
	OakleyFieldSize:           "Field-Size",
	OakleyGroupOrder:          "Group-Order",
}

// OakleyAttributeName returns Wireshark's name for a phase 1 attribute class.
func OakleyAttributeName(t AttributeType) string { return attrName(oakleyAttrNames, t) }

func attrName(names map[AttributeType]string, t AttributeType) string {
	if s, ok := names[t]; ok {
		return s
	}
	return fmt.Sprintf("Attribute-%d", uint16(t))
}

// EncryptionAlgorithm is a phase 1 Encryption Algorithm value (RFC 2409 App. A).
type EncryptionAlgorithm uint16

const (
	EncDES         EncryptionAlgorithm = 1
	EncIDEA        EncryptionAlgorithm = 2
	EncBlowfish    EncryptionAlgorithm = 3
	EncRC5         EncryptionAlgorithm = 4
	Enc3DES        EncryptionAlgorithm = 5
	EncCAST        EncryptionAlgorithm = 6
	EncAESCBC      EncryptionAlgorithm = 7 // RFC 3602; needs the Key Length attribute
	EncCamelliaCBC EncryptionAlgorithm = 8
)

var encNames = map[EncryptionAlgorithm]string{
	EncDES: "DES-CBC", EncIDEA: "IDEA-CBC", EncBlowfish: "BLOWFISH-CBC", EncRC5: "RC5-R16-B64-CBC",
	Enc3DES: "3DES-CBC", EncCAST: "CAST-CBC", EncAESCBC: "AES-CBC", EncCamelliaCBC: "CAMELLIA-CBC",
}

func (e EncryptionAlgorithm) String() string { return valueName(encNames, e) }

// HashAlgorithm is a phase 1 Hash Algorithm value (RFC 2409 App. A, RFC 4868
// §2 for SHA2). The negotiated PRF is HMAC with this hash.
type HashAlgorithm uint16

const (
	HashMD5      HashAlgorithm = 1
	HashSHA1     HashAlgorithm = 2
	HashTiger    HashAlgorithm = 3
	HashSHA2_256 HashAlgorithm = 4
	HashSHA2_384 HashAlgorithm = 5
	HashSHA2_512 HashAlgorithm = 6
)

var hashNames = map[HashAlgorithm]string{
	HashMD5: "MD5", HashSHA1: "SHA", HashTiger: "TIGER",
	HashSHA2_256: "SHA2-256", HashSHA2_384: "SHA2-384", HashSHA2_512: "SHA2-512",
}

func (h HashAlgorithm) String() string { return valueName(hashNames, h) }

// AuthMethod is a phase 1 Authentication Method value (RFC 2409 App. A, RFC
// 4754, draft-ietf-ipsec-isakmp-hybrid-auth-05, draft-beaulieu-ike-xauth-02).
type AuthMethod uint16

const (
	AuthMethodPSK               AuthMethod = 1
	AuthMethodDSS               AuthMethod = 2
	AuthMethodRSASig            AuthMethod = 3
	AuthMethodRSAEnc            AuthMethod = 4
	AuthMethodRSARevisedEnc     AuthMethod = 5
	AuthMethodElGamalEnc        AuthMethod = 6
	AuthMethodElGamalRevisedEnc AuthMethod = 7
	AuthMethodECDSA             AuthMethod = 8
	AuthMethodECDSAP256         AuthMethod = 9  // RFC 4754
	AuthMethodECDSAP384         AuthMethod = 10 // RFC 4754
	AuthMethodECDSAP521         AuthMethod = 11 // RFC 4754

	AuthMethodHybridInitRSA AuthMethod = 64221
	AuthMethodHybridRespRSA AuthMethod = 64222
	AuthMethodHybridInitDSS AuthMethod = 64223
	AuthMethodHybridRespDSS AuthMethod = 64224

	AuthMethodXAuthInitPSK           AuthMethod = 65001
	AuthMethodXAuthRespPSK           AuthMethod = 65002
	AuthMethodXAuthInitDSS           AuthMethod = 65003
	AuthMethodXAuthRespDSS           AuthMethod = 65004
	AuthMethodXAuthInitRSA           AuthMethod = 65005
	AuthMethodXAuthRespRSA           AuthMethod = 65006
	AuthMethodXAuthInitRSAEnc        AuthMethod = 65007
	AuthMethodXAuthRespRSAEnc        AuthMethod = 65008
	AuthMethodXAuthInitRSARevisedEnc AuthMethod = 65009
	AuthMethodXAuthRespRSARevisedEnc AuthMethod = 65010
)

var authMethodNames = map[AuthMethod]string{
	AuthMethodPSK: "PSK", AuthMethodDSS: "DSS-SIG", AuthMethodRSASig: "RSA-SIG", AuthMethodRSAEnc: "RSA-ENC",
	AuthMethodRSARevisedEnc: "RSA-Revised-ENC", AuthMethodElGamalEnc: "Encryption with El-Gamal",
	AuthMethodElGamalRevisedEnc: "Revised encryption with El-Gamal", AuthMethodECDSA: "ECDSA signatures",
	AuthMethodECDSAP256: "ECDSA with SHA-256 on the P-256 curve", AuthMethodECDSAP384: "ECDSA with SHA-384 on the P-384 curve",
	AuthMethodECDSAP521:     "ECDSA with SHA-512 on the P-521 curve",
	AuthMethodHybridInitRSA: "HybridInitRSA", AuthMethodHybridRespRSA: "HybridRespRSA",
	AuthMethodHybridInitDSS: "HybridInitDSS", AuthMethodHybridRespDSS: "HybridRespDSS",
	AuthMethodXAuthInitPSK: "XAUTHInitPreShared", AuthMethodXAuthRespPSK: "XAUTHRespPreShared",
	AuthMethodXAuthInitDSS: "XAUTHInitDSS", AuthMethodXAuthRespDSS: "XAUTHRespDSS",
	AuthMethodXAuthInitRSA: "XAUTHInitRSA", AuthMethodXAuthRespRSA: "XAUTHRespRSA",
	AuthMethodXAuthInitRSAEnc: "XAUTHInitRSAEncryption", AuthMethodXAuthRespRSAEnc: "XAUTHRespRSAEncryption",
	AuthMethodXAuthInitRSARevisedEnc: "XAUTHInitRSARevisedEncryption", AuthMethodXAuthRespRSARevisedEnc: "XAUTHRespRSARevisedEncryption",
}

func (a AuthMethod) String() string { return valueName(authMethodNames, a) }

// GroupDescription is a Diffie-Hellman group number (RFC 2409 §6, RFC 3526,
// RFC 5903, RFC 5114, RFC 6932, RFC 8031 — the IANA "Group Description"
// registry). The same numbers are used by the phase 1 Group Description and
// the IPsec DOI Group Description (PFS) attributes.
type GroupDescription uint16

const (
	GroupMODP768      GroupDescription = 1
	GroupMODP1024     GroupDescription = 2
	GroupEC2N155      GroupDescription = 3
	GroupEC2N185      GroupDescription = 4
	GroupMODP1536     GroupDescription = 5
	GroupMODP2048     GroupDescription = 14
	GroupMODP3072     GroupDescription = 15
	GroupMODP4096     GroupDescription = 16
	GroupMODP6144     GroupDescription = 17
	GroupMODP8192     GroupDescription = 18
	GroupECP256       GroupDescription = 19
	GroupECP384       GroupDescription = 20
	GroupECP521       GroupDescription = 21
	GroupMODP1024S160 GroupDescription = 22
	GroupMODP2048S224 GroupDescription = 23
	GroupMODP2048S256 GroupDescription = 24
	GroupECP192       GroupDescription = 25
	GroupECP224       GroupDescription = 26
	GroupCurve25519   GroupDescription = 31
	GroupCurve448     GroupDescription = 32
)

var groupNames = map[GroupDescription]string{
	GroupMODP768: "Default 768-bit MODP group", GroupMODP1024: "Alternate 1024-bit MODP group",
	GroupEC2N155: "EC2N group on GP[2^155] group", GroupEC2N185: "EC2N group on GP[2^185] group",
	GroupMODP1536: "1536 bit MODP group", GroupMODP2048: "2048 bit MODP group", GroupMODP3072: "3072 bit MODP group",
	GroupMODP4096: "4096 bit MODP group", GroupMODP6144: "6144 bit MODP group", GroupMODP8192: "8192 bit MODP group",
	GroupECP256: "256-bit random ECP group", GroupECP384: "384-bit random ECP group", GroupECP521: "521-bit random ECP group",
	GroupMODP1024S160: "1024-bit MODP Group with 160-bit Prime Order Subgroup",
	GroupMODP2048S224: "2048-bit MODP Group with 224-bit Prime Order Subgroup",
	GroupMODP2048S256: "2048-bit MODP Group with 256-bit Prime Order Subgroup",
	GroupECP192:       "192-bit Random ECP Group", GroupECP224: "224-bit Random ECP Group",
	27: "224-bit Brainpool ECP group", 28: "256-bit Brainpool ECP group",
	29: "384-bit Brainpool ECP group", 30: "512-bit Brainpool ECP group",
	GroupCurve25519: "Curve25519", GroupCurve448: "Curve448",
}

func (g GroupDescription) String() string { return valueName(groupNames, g) }

// GroupType is a phase 1 Group Type value.
type GroupType uint16

const (
	GroupTypeMODP GroupType = 1
	GroupTypeECP  GroupType = 2
	GroupTypeEC2N GroupType = 3
)

// LifeType says what a following Life Duration counts, in phase 1 (RFC 2409
// App. A) and in the IPsec DOI (RFC 2407 §4.5) alike.
type LifeType uint16

const (
	LifeSeconds   LifeType = 1
	LifeKilobytes LifeType = 2
)

func valueName[T ~uint16](names map[T]string, v T) string {
	if s, ok := names[v]; ok {
		return s
	}
	return fmt.Sprintf("Unknown (%d)", uint16(v))
}

// Phase1Attributes is the meaning of the attributes of one KEY_IKE transform
// (RFC 2409 §5 and App. A). Attributes it does not interpret (group
// definitions, PRF, ...) are kept in Other in their received order.
type Phase1Attributes struct {
	Encryption    EncryptionAlgorithm
	KeyLength     uint16 // bits; 0 when absent (fixed-size ciphers)
	Hash          HashAlgorithm
	AuthMethod    AuthMethod
	Group         GroupDescription
	LifeSeconds   uint64 // 0 when absent
	LifeKilobytes uint64 // 0 when absent
	Other         []Attribute
}

// ParsePhase1Attributes interprets a KEY_IKE transform's attributes. It fails,
// with ATTRIBUTES-NOT-SUPPORTED, when one of the four attributes RFC 2409 §5
// makes mandatory (encryption, hash, authentication method, group) is
// missing, an attribute appears twice, a value is not a number, or a Life
// Duration does not follow a Life Type.
func ParsePhase1Attributes(attrs []Attribute) (Phase1Attributes, error) {
	var p Phase1Attributes
	seen := map[AttributeType]bool{}
	var life LifeType
	for _, a := range attrs {
		switch a.Type {
		case OakleyLifeType, OakleyLifeDuration:
		default:
			if seen[a.Type] {
				return p, attrError("phase 1 attribute %s appears twice", OakleyAttributeName(a.Type))
			}
			seen[a.Type] = true
		}
		switch a.Type {
		case OakleyEncryptionAlgorithm, OakleyHashAlgorithm, OakleyAuthMethod, OakleyGroupDescription, OakleyKeyLength, OakleyLifeType, OakleyLifeDuration:
		default:
			p.Other = append(p.Other, a)
			continue
		}
		v, ok := a.Uint()
		if !ok || (a.Type != OakleyLifeDuration && v > 0xffff) {
			return p, attrError("phase 1 attribute %s has a malformed value", OakleyAttributeName(a.Type))
		}
		switch a.Type {
		case OakleyEncryptionAlgorithm:
			p.Encryption = EncryptionAlgorithm(v)
		case OakleyHashAlgorithm:
			p.Hash = HashAlgorithm(v)
		case OakleyAuthMethod:
			p.AuthMethod = AuthMethod(v)
		case OakleyGroupDescription:
			p.Group = GroupDescription(v)
		case OakleyKeyLength:
			p.KeyLength = uint16(v)
		case OakleyLifeType:
			life = LifeType(v)
		case OakleyLifeDuration:
			if err := setLife(life, v, &p.LifeSeconds, &p.LifeKilobytes); err != nil {
				return p, err
			}
			life = 0
		}
	}
	for _, t := range []AttributeType{OakleyEncryptionAlgorithm, OakleyHashAlgorithm, OakleyAuthMethod, OakleyGroupDescription} {
		if !seen[t] {
			return p, attrError("phase 1 transform lacks the mandatory %s attribute", OakleyAttributeName(t))
		}
	}
	return p, nil
}

// Attributes encodes p in the order implementations commonly send: cipher,
// key length, hash, authentication, group, lifetimes, then Other.
func (p Phase1Attributes) Attributes() []Attribute {
	attrs := []Attribute{Basic(OakleyEncryptionAlgorithm, uint16(p.Encryption))}
	if p.KeyLength != 0 {
		attrs = append(attrs, Basic(OakleyKeyLength, p.KeyLength))
	}
	attrs = append(attrs,
		Basic(OakleyHashAlgorithm, uint16(p.Hash)),
		Basic(OakleyAuthMethod, uint16(p.AuthMethod)),
		Basic(OakleyGroupDescription, uint16(p.Group)))
	attrs = appendLife(attrs, OakleyLifeType, OakleyLifeDuration, p.LifeSeconds, p.LifeKilobytes)
	return append(attrs, p.Other...)
}

func setLife(life LifeType, v uint64, seconds, kilobytes *uint64) error {
	switch life {
	case LifeSeconds:
		*seconds = v
	case LifeKilobytes:
		*kilobytes = v
	case 0:
		return attrError("life duration without a preceding life type")
	default:
		return attrError("unknown life type %d", uint16(life))
	}
	return nil
}

func appendLife(attrs []Attribute, typ, dur AttributeType, seconds, kilobytes uint64) []Attribute {
	if seconds != 0 {
		attrs = append(attrs, Basic(typ, uint16(LifeSeconds)), Number(dur, seconds))
	}
	if kilobytes != 0 {
		attrs = append(attrs, Basic(typ, uint16(LifeKilobytes)), Number(dur, kilobytes))
	}
	return attrs
}

func attrError(format string, args ...any) *Error {
	return newError(NotifyAttributesNotSupported, PayloadSA, 0, format, args...)
}

package pki

import (
	"bytes"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// dnAttr is one attribute type of the DN notation. The names and the string
// types follow strongSwan's atodn (libstrongswan/utils/identification.c), so
// that "dn:CN=gw-a, O=Lab" becomes, byte for byte, the DER charon builds
// from the same string: charon compares an ID with a certificate subject
// byte-exact for UTF8String values, and a lab must work with both peers.
type dnAttr struct {
	name string // how FormatDN prints it
	oid  asn1.ObjectIdentifier
	ia5  bool // IA5String; otherwise PrintableString when it fits, else UTF8String
}

var dnAttrs = []dnAttr{
	{"C", asn1.ObjectIdentifier{2, 5, 4, 6}, false},
	{"ST", asn1.ObjectIdentifier{2, 5, 4, 8}, false},
	{"L", asn1.ObjectIdentifier{2, 5, 4, 7}, false},
	{"STREET", asn1.ObjectIdentifier{2, 5, 4, 9}, false},
	{"O", asn1.ObjectIdentifier{2, 5, 4, 10}, false},
	{"OU", asn1.ObjectIdentifier{2, 5, 4, 11}, false},
	{"CN", asn1.ObjectIdentifier{2, 5, 4, 3}, false},
	{"serialNumber", asn1.ObjectIdentifier{2, 5, 4, 5}, false},
	{"T", asn1.ObjectIdentifier{2, 5, 4, 12}, false},
	{"D", asn1.ObjectIdentifier{2, 5, 4, 13}, false},
	{"postalCode", asn1.ObjectIdentifier{2, 5, 4, 17}, false},
	{"N", asn1.ObjectIdentifier{2, 5, 4, 41}, false},
	{"G", asn1.ObjectIdentifier{2, 5, 4, 42}, false},
	{"I", asn1.ObjectIdentifier{2, 5, 4, 43}, false},
	{"dnQualifier", asn1.ObjectIdentifier{2, 5, 4, 46}, false},
	{"pseudonym", asn1.ObjectIdentifier{2, 5, 4, 65}, false},
	{"UID", asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 1}, false},
	// RFC 4519 makes DC an IA5String; strongSwan writes a PrintableString,
	// and matching charon's bytes matters more here.
	{"DC", asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 25}, false},
	{"E", asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1}, true},
}

// dnAliases are the accepted spellings, lower-cased. "SN" is left out on
// purpose: strongSwan reads it as serialNumber, RFC 4514 as surname.
var dnAliases = func() map[string]*dnAttr {
	m := map[string]*dnAttr{}
	for i := range dnAttrs {
		m[strings.ToLower(dnAttrs[i].name)] = &dnAttrs[i]
	}
	m["email"] = m["e"]
	m["emailaddress"] = m["e"]
	return m
}()

func dnAttrByOID(oid asn1.ObjectIdentifier) *dnAttr {
	for i := range dnAttrs {
		if dnAttrs[i].oid.Equal(oid) {
			return &dnAttrs[i]
		}
	}
	return nil
}

func dnAttrNames() string {
	names := make([]string, len(dnAttrs))
	for i, a := range dnAttrs {
		names[i] = a.name
	}
	return strings.Join(names, ", ") + ", Email, emailAddress or a dotted OID"
}

// ASN.1 universal tags of the string types a DN value may use.
const (
	tagUTF8String      = 12
	tagNumericString   = 18
	tagPrintableString = 19
	tagT61String       = 20
	tagIA5String       = 22
	tagVisibleString   = 26
	tagUniversalString = 28
	tagBMPString       = 30
)

// atv and rdnSET mirror pkix.AttributeTypeAndValue and
// pkix.RelativeDistinguishedNameSET, but keep the value raw: FormatDN needs
// its string type and EqualDN its bytes, both of which pkix throws away. The
// SET suffix is what tells encoding/asn1 that the slice is a SET OF.
type atv struct {
	Type  asn1.ObjectIdentifier
	Value asn1.RawValue
}

type rdnSET []atv

// ParseDN turns strongSwan's DN notation into the DER of an RDNSequence, the
// body of an ID_DER_ASN1_DN identification (RFC 2407 §4.6.2.1) and of a
// certificate subject. RDNs are written in the order they are encoded
// (strongSwan's order, the reverse of RFC 4514's) and separated by commas,
// or by slashes when the string starts with one ("/C=CH/O=Lab/CN=gw-a", as
// OpenSSL prints). Space around types and values is ignored, types are
// case-insensitive, a backslash escapes the next character, and "#" followed
// by hex digits gives a value's DER encoding. As in strongSwan, "+" is an
// ordinary character: multi-valued RDNs cannot be written.
func ParseDN(s string) ([]byte, error) {
	text := trimUnescapedSpace(strings.TrimLeft(s, dnSpace))
	if text == "" {
		return nil, errors.New("pki: empty DN")
	}
	sep := byte(',')
	if text[0] == '/' {
		sep, text = '/', text[1:]
	}
	parts, err := splitEscaped(text, sep)
	if err != nil {
		return nil, fmt.Errorf("pki: DN %q: %w", s, err)
	}
	seq := make([]rdnSET, 0, len(parts))
	for i, p := range parts {
		a, err := parseATV(p)
		if err != nil {
			return nil, fmt.Errorf("pki: DN %q: attribute %d %q: %w", s, i+1, strings.TrimSpace(p), err)
		}
		seq = append(seq, rdnSET{a})
	}
	der, err := asn1.Marshal(seq)
	if err != nil {
		return nil, fmt.Errorf("pki: DN %q: %w", s, err)
	}
	return der, nil
}

// splitEscaped splits s at every sep that is not escaped by a backslash,
// keeping the escapes in the parts for parseATV.
func splitEscaped(s string, sep byte) ([]string, error) {
	var parts []string
	start := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			if i+1 == len(s) {
				return nil, errors.New(`it ends in a lone "\"`)
			}
			i++
		case sep:
			parts = append(parts, s[start:i])
			start = i + 1
		}
	}
	return append(parts, s[start:]), nil
}

func parseATV(p string) (atv, error) {
	eq := -1
	for i := 0; i < len(p); i++ {
		if p[i] == '\\' {
			i++
		} else if p[i] == '=' {
			eq = i
			break
		}
	}
	if strings.TrimSpace(p) == "" {
		return atv{}, errors.New("empty attribute (a doubled or trailing separator?)")
	}
	if eq < 0 {
		return atv{}, errors.New(`no "=" between type and value`)
	}
	typ := strings.TrimSpace(p[:eq])
	if typ == "" {
		return atv{}, errors.New(`no attribute type before "="`)
	}
	var attr *dnAttr
	oid, isOID := parseOID(typ)
	if isOID {
		if len(oid) < 2 || oid[0] > 2 || oid[0] < 2 && oid[1] >= 40 {
			return atv{}, fmt.Errorf("%s is not a valid OID", typ)
		}
		attr = dnAttrByOID(oid)
	} else {
		attr = dnAliases[strings.ToLower(typ)]
		if attr == nil {
			return atv{}, fmt.Errorf("unknown attribute type %q (valid: %s)", typ, dnAttrNames())
		}
		oid = attr.oid
	}

	raw := strings.TrimLeft(p[eq+1:], dnSpace)
	if strings.HasPrefix(raw, "#") {
		v, err := parseHexValue(strings.TrimSpace(raw[1:]))
		if err != nil {
			return atv{}, fmt.Errorf("value %s: %w", raw, err)
		}
		return atv{Type: oid, Value: v}, nil
	}
	val := unescape(trimUnescapedSpace(raw))
	if val == "" {
		return atv{}, fmt.Errorf("%s has an empty value", typ)
	}
	if !utf8.ValidString(val) {
		return atv{}, fmt.Errorf("%s is not valid UTF-8", typ)
	}
	tag := tagUTF8String
	switch {
	case attr != nil && attr.ia5:
		if !isASCII(val) {
			return atv{}, fmt.Errorf("%s must be ASCII (an IA5String)", typ)
		}
		tag = tagIA5String
	case isPrintable(val):
		tag = tagPrintableString
	}
	return atv{Type: oid, Value: asn1.RawValue{Tag: tag, Bytes: []byte(val)}}, nil
}

// parseOID reads a dotted OID such as 2.5.4.3; anything else is a name.
func parseOID(s string) (asn1.ObjectIdentifier, bool) {
	if strings.Trim(s, "0123456789.") != "" || !strings.Contains(s, ".") {
		return nil, false
	}
	fields := strings.Split(s, ".")
	oid := make(asn1.ObjectIdentifier, len(fields))
	for i, f := range fields {
		n, err := strconv.Atoi(f)
		if err != nil {
			return nil, true // digits and dots, but not an OID: reported as such
		}
		oid[i] = n
	}
	return oid, true
}

// parseHexValue reads the "#hex" form: exactly one DER element.
func parseHexValue(h string) (asn1.RawValue, error) {
	der, err := hex.DecodeString(h)
	if err != nil {
		return asn1.RawValue{}, fmt.Errorf("bad hex: %v", err)
	}
	var v asn1.RawValue
	rest, err := asn1.Unmarshal(der, &v)
	if err != nil {
		return asn1.RawValue{}, fmt.Errorf("not a DER value: %v", err)
	}
	if len(rest) > 0 {
		return asn1.RawValue{}, fmt.Errorf("%d bytes after the DER value", len(rest))
	}
	return v, nil
}

// dnSpace is the white space ParseDN ignores around types and values.
const dnSpace = " \t\r\n"

// trimUnescapedSpace drops trailing spaces unless the last one is escaped.
func trimUnescapedSpace(s string) string {
	for len(s) > 0 && strings.IndexByte(dnSpace, s[len(s)-1]) >= 0 {
		// An odd run of backslashes before the space escapes it.
		n := 0
		for i := len(s) - 2; i >= 0 && s[i] == '\\'; i-- {
			n++
		}
		if n%2 == 1 {
			break
		}
		s = s[:len(s)-1]
	}
	return s
}

func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// isPrintable is X.680's PrintableString alphabet, the same test strongSwan
// applies before falling back to UTF8String.
func isPrintable(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte(" '()+,-./:=?", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// parseRDNs decodes an RDNSequence, refusing trailing bytes: an ID payload
// with junk after the DN is malformed, not a DN.
func parseRDNs(der []byte) ([]rdnSET, error) {
	var seq []rdnSET
	rest, err := asn1.Unmarshal(der, &seq)
	if err != nil {
		return nil, fmt.Errorf("pki: not a DER distinguished name: %v", err)
	}
	if len(rest) > 0 {
		return nil, fmt.Errorf("pki: %d bytes after the distinguished name", len(rest))
	}
	return seq, nil
}

// FormatDN prints an RDNSequence in strongSwan's notation ("CN=gw-a,
// O=Lab"), in encoded order, so that logs and `pki show` read like charon's.
// Values that are not strings, and attribute types without a name, print
// in the "#hex" and dotted-OID forms that ParseDN reads back. A multi-valued
// RDN prints its values joined by " + ", which ParseDN does not read back.
func FormatDN(der []byte) (string, error) {
	seq, err := parseRDNs(der)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for i, rdn := range seq {
		if i > 0 {
			b.WriteString(", ")
		}
		for j, a := range rdn {
			if j > 0 {
				b.WriteString(" + ")
			}
			if attr := dnAttrByOID(a.Type); attr != nil {
				b.WriteString(attr.name)
			} else {
				b.WriteString(a.Type.String())
			}
			b.WriteByte('=')
			if s, ok := dnString(a.Value); ok && s != "" {
				b.WriteString(escapeValue(s))
			} else {
				b.WriteString("#" + hex.EncodeToString(a.Value.FullBytes))
			}
		}
	}
	return b.String(), nil
}

// dnString decodes a value of one of the directory string types.
func dnString(v asn1.RawValue) (string, bool) {
	if v.Class != asn1.ClassUniversal || v.IsCompound {
		return "", false
	}
	b := v.Bytes
	switch v.Tag {
	case tagUTF8String:
		return string(b), utf8.Valid(b)
	case tagPrintableString, tagIA5String, tagNumericString, tagVisibleString:
		return string(b), isASCII(string(b))
	case tagT61String:
		// Treated as Latin-1, which is what T61String values hold in practice.
		r := make([]rune, len(b))
		for i, c := range b {
			r[i] = rune(c)
		}
		return string(r), true
	case tagBMPString:
		if len(b)%2 != 0 {
			return "", false
		}
		u := make([]uint16, len(b)/2)
		for i := range u {
			u[i] = uint16(b[2*i])<<8 | uint16(b[2*i+1])
		}
		return string(utf16.Decode(u)), true
	case tagUniversalString:
		if len(b)%4 != 0 {
			return "", false
		}
		r := make([]rune, len(b)/4)
		for i := range r {
			r[i] = rune(uint32(b[4*i])<<24 | uint32(b[4*i+1])<<16 | uint32(b[4*i+2])<<8 | uint32(b[4*i+3]))
			if !utf8.ValidRune(r[i]) {
				return "", false
			}
		}
		return string(r), true
	}
	return "", false
}

// escapeValue backslash-escapes what ParseDN would otherwise read as
// structure: separators, backslashes, a leading "#" and edge spaces.
func escapeValue(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ',' || c == '\\',
			c == '#' && i == 0,
			strings.IndexByte(dnSpace, c) >= 0 && (i == 0 || i == len(s)-1):
			b.WriteByte('\\')
		}
		b.WriteByte(c)
	}
	return b.String()
}

// EqualDN compares two DER distinguished names as names, not as bytes
// (RFC 5280 §7.1, simplified): RDNs in the same order, the attributes of
// each RDN in any order, string values equal ignoring case, string type and
// runs of white space. Values that are not strings must be equal byte for
// byte. A DN that does not parse equals nothing.
func EqualDN(a, b []byte) bool {
	if bytes.Equal(a, b) {
		_, err := parseRDNs(a)
		return err == nil
	}
	sa, err := parseRDNs(a)
	if err != nil {
		return false
	}
	sb, err := parseRDNs(b)
	if err != nil || len(sa) != len(sb) {
		return false
	}
	for i := range sa {
		if !equalRDN(sa[i], sb[i]) {
			return false
		}
	}
	return true
}

func equalRDN(a, b rdnSET) bool {
	if len(a) != len(b) {
		return false
	}
	used := make([]bool, len(b))
next:
	for _, x := range a {
		for j, y := range b {
			if !used[j] && x.Type.Equal(y.Type) && equalValue(x.Value, y.Value) {
				used[j] = true
				continue next
			}
		}
		return false
	}
	return true
}

func equalValue(a, b asn1.RawValue) bool {
	sa, oka := dnString(a)
	sb, okb := dnString(b)
	if oka && okb {
		return strings.EqualFold(strings.Join(strings.Fields(sa), " "), strings.Join(strings.Fields(sb), " "))
	}
	return bytes.Equal(a.FullBytes, b.FullBytes)
}

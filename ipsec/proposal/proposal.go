// Package proposal parses cipher suites written in strongSwan's notation
// ("aes128-sha256-modp2048", "aes128gcm16-modp2048", "sha256") into algorithm
// choices, and prints them back the same way. Lab files, the daemon's config,
// events and the `sas` output all use this one notation, so an engineer can
// compare what ipseclab negotiated with what `swanctl --list-sas` says.
package proposal

import (
	"fmt"
	"strings"
)

// Encr is an encryption algorithm.
type Encr int

const (
	EncrNone     Encr = iota // AH, or ESP with NULL encryption (see EncrNull)
	EncrDES                  // legacy, kept for teaching
	Encr3DES                 // legacy, kept for teaching
	EncrAESCBC               // RFC 3602
	EncrAESGCM16             // RFC 4106, 16-byte ICV; ESP only
	EncrNull                 // RFC 2410: ESP without confidentiality, readable in a capture
)

// Integ is an integrity algorithm (for IKEv1 phase 1, the hash that also
// drives the PRF).
type Integ int

const (
	IntegNone Integ = iota
	IntegMD5
	IntegSHA1
	IntegSHA256
	IntegSHA384
	IntegSHA512
)

// Group is a Diffie-Hellman group, by its IANA number (RFC 2409, 3526, 5903, 8031).
type Group int

const GroupNone Group = 0

// Protocol is what a proposal is for.
type Protocol int

const (
	IKE Protocol = iota // ISAKMP SA (phase 1)
	ESP
	AH
)

func (p Protocol) String() string {
	return [...]string{"IKE", "ESP", "AH"}[p]
}

// Proposal is one suite of algorithms.
type Proposal struct {
	Protocol Protocol
	Encr     Encr
	KeyBits  int // for AES: 128, 192 or 256
	Integ    Integ
	Group    Group // phase 1 group, or PFS group for ESP/AH (0: no PFS)
	ESN      bool  // extended sequence numbers (ESP/AH)
}

var encrNames = map[string]struct {
	e    Encr
	bits int
}{
	"des": {EncrDES, 64}, "3des": {Encr3DES, 192},
	"aes": {EncrAESCBC, 128}, "aes128": {EncrAESCBC, 128}, "aes192": {EncrAESCBC, 192}, "aes256": {EncrAESCBC, 256},
	"aes128gcm16": {EncrAESGCM16, 128}, "aes192gcm16": {EncrAESGCM16, 192}, "aes256gcm16": {EncrAESGCM16, 256},
	"aes128gcm128": {EncrAESGCM16, 128}, "aes192gcm128": {EncrAESGCM16, 192}, "aes256gcm128": {EncrAESGCM16, 256},
	"null": {EncrNull, 0},
}

var integNames = map[string]Integ{
	"md5": IntegMD5, "sha1": IntegSHA1, "sha": IntegSHA1,
	"sha256": IntegSHA256, "sha2_256": IntegSHA256,
	"sha384": IntegSHA384, "sha2_384": IntegSHA384,
	"sha512": IntegSHA512, "sha2_512": IntegSHA512,
}

var groupNames = map[string]Group{
	"modp768": 1, "modp1024": 2, "modp1536": 5, "modp2048": 14, "modp3072": 15, "modp4096": 16,
	"modp6144": 17, "modp8192": 18, "ecp256": 19, "ecp384": 20, "ecp521": 21,
	"curve25519": 31, "x25519": 31,
}

// GroupByName returns the group for a strongSwan keyword such as "modp2048".
func GroupByName(s string) (Group, bool) {
	g, ok := groupNames[strings.ToLower(s)]
	return g, ok
}

// Groups supported, for messages.
const groupList = "modp768, modp1024, modp1536, modp2048, modp3072, modp4096, modp6144, modp8192, ecp256, ecp384, ecp521, curve25519"

// Parse reads one proposal for the given protocol.
//
//	IKE: ENCR-HASH-GROUP, e.g. aes128-sha256-modp2048 (all three are required:
//	     IKEv1 phase 1 negotiates exactly one of each)
//	ESP: ENCR-INTEG[-GROUP][-esn], or AEAD[-GROUP], e.g. aes128-sha1, aes128gcm16-modp2048, null-sha256
//	AH:  INTEG[-GROUP], e.g. sha256, sha1-modp2048
func Parse(p Protocol, s string) (Proposal, error) {
	out := Proposal{Protocol: p}
	words := strings.Split(strings.ToLower(strings.TrimSpace(s)), "-")
	if len(words) == 0 || words[0] == "" {
		return out, fmt.Errorf("empty %s proposal", p)
	}
	for _, w := range words {
		if e, ok := encrNames[w]; ok && p != AH {
			if out.Encr != EncrNone {
				return out, fmt.Errorf("%s proposal %q names two encryption algorithms", p, s)
			}
			if p == IKE && (e.e == EncrAESGCM16 || e.e == EncrNull) {
				return out, fmt.Errorf("IKEv1 phase 1 cannot use %s; use aes128, aes192, aes256, 3des or des", w)
			}
			out.Encr, out.KeyBits = e.e, e.bits
			continue
		}
		if i, ok := integNames[w]; ok {
			if out.Integ != IntegNone {
				return out, fmt.Errorf("%s proposal %q names two integrity algorithms", p, s)
			}
			out.Integ = i
			continue
		}
		if g, ok := groupNames[w]; ok {
			if out.Group != GroupNone {
				return out, fmt.Errorf("%s proposal %q names two Diffie-Hellman groups", p, s)
			}
			out.Group = g
			continue
		}
		if (w == "esn" || w == "noesn") && p != IKE {
			out.ESN = w == "esn"
			continue
		}
		return out, fmt.Errorf("%s proposal %q: unknown algorithm %q (%s)", p, s, w, known(p))
	}
	switch p {
	case IKE:
		if out.Encr == EncrNone || out.Integ == IntegNone || out.Group == GroupNone {
			return out, fmt.Errorf("IKE proposal %q needs an encryption algorithm, a hash and a DH group, like aes128-sha256-modp2048", s)
		}
	case ESP:
		if out.Encr == EncrNone {
			return out, fmt.Errorf("ESP proposal %q needs an encryption algorithm (or null), like aes128-sha256 or aes128gcm16", s)
		}
		if out.Encr == EncrAESGCM16 && out.Integ != IntegNone {
			return out, fmt.Errorf("ESP proposal %q: AES-GCM already authenticates; drop the integrity algorithm", s)
		}
		if out.Encr != EncrAESGCM16 && out.Integ == IntegNone {
			return out, fmt.Errorf("ESP proposal %q needs an integrity algorithm, like %s-sha256", s, words[0])
		}
	case AH:
		if out.Integ == IntegNone {
			return out, fmt.Errorf("AH proposal %q needs an integrity algorithm, like sha256", s)
		}
	}
	return out, nil
}

func known(p Protocol) string {
	switch p {
	case IKE:
		return "IKE takes des, 3des, aes128, aes192, aes256; md5, sha1, sha256, sha384, sha512; " + groupList
	case ESP:
		return "ESP takes des, 3des, aes128, aes192, aes256, aes128gcm16, aes192gcm16, aes256gcm16, null; md5, sha1, sha256, sha384, sha512; optional PFS group " + groupList + "; esn"
	default:
		return "AH takes md5, sha1, sha256, sha384, sha512; optional PFS group " + groupList + "; esn"
	}
}

// ParseList parses several proposals, in preference order.
func ParseList(p Protocol, list []string) ([]Proposal, error) {
	out := make([]Proposal, 0, len(list))
	for _, s := range list {
		pr, err := Parse(p, s)
		if err != nil {
			return nil, err
		}
		out = append(out, pr)
	}
	return out, nil
}

// String prints the proposal in strongSwan's notation.
func (p Proposal) String() string {
	var parts []string
	if p.Protocol != AH {
		switch p.Encr {
		case EncrDES:
			parts = append(parts, "des")
		case Encr3DES:
			parts = append(parts, "3des")
		case EncrAESCBC:
			parts = append(parts, fmt.Sprintf("aes%d", p.KeyBits))
		case EncrAESGCM16:
			parts = append(parts, fmt.Sprintf("aes%dgcm16", p.KeyBits))
		case EncrNull:
			parts = append(parts, "null")
		}
	}
	if p.Integ != IntegNone {
		parts = append(parts, p.Integ.String())
	}
	if p.Group != GroupNone {
		parts = append(parts, p.Group.String())
	}
	if p.ESN {
		parts = append(parts, "esn")
	}
	return strings.Join(parts, "-")
}

func (i Integ) String() string {
	return [...]string{"none", "md5", "sha1", "sha256", "sha384", "sha512"}[i]
}

func (g Group) String() string {
	for name, v := range groupNames {
		if v == g && name != "x25519" {
			return name
		}
	}
	if g == GroupNone {
		return "none"
	}
	return fmt.Sprintf("group%d", int(g))
}

// WithGroup returns the proposal with the PFS group set (for the `pfs:` shortcut).
func (p Proposal) WithGroup(g Group) Proposal {
	p.Group = g
	return p
}

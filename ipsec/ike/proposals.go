package ike

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ipseclab/ipseclab/ipsec/esp"
	"github.com/ipseclab/ipseclab/ipsec/isakmp"
	"github.com/ipseclab/ipseclab/ipsec/keymat"
	"github.com/ipseclab/ipseclab/ipsec/proposal"
)

// This file translates between strongSwan's proposal notation
// ("aes128-sha256-modp2048") and IKEv1's SA payloads. Like strongSwan, we
// offer one Proposal payload whose Transform payloads are the configured
// suites in order (RFC 2408 §4.2: transforms of a proposal are alternatives),
// and as a responder we choose the first of our own suites that the peer
// offered, so that the responder's configuration decides.

// phase1Suite returns the KEY_IKE transform attributes of an IKE suite
// (RFC 2409 App. A), with pre-shared key authentication until the caller
// says otherwise, after checking that package keymat implements it.
func phase1Suite(p proposal.Proposal) (isakmp.Phase1Attributes, error) {
	var a isakmp.Phase1Attributes
	switch p.Encr {
	case proposal.EncrDES:
		a.Encryption = isakmp.EncDES
	case proposal.Encr3DES:
		a.Encryption = isakmp.Enc3DES
	case proposal.EncrAESCBC:
		a.Encryption, a.KeyLength = isakmp.EncAESCBC, uint16(p.KeyBits)
	default:
		return a, fmt.Errorf("phase 1 cannot use %s", p)
	}
	switch p.Integ {
	case proposal.IntegMD5:
		a.Hash = isakmp.HashMD5
	case proposal.IntegSHA1:
		a.Hash = isakmp.HashSHA1
	case proposal.IntegSHA256:
		a.Hash = isakmp.HashSHA2_256
	case proposal.IntegSHA384:
		a.Hash = isakmp.HashSHA2_384
	case proposal.IntegSHA512:
		a.Hash = isakmp.HashSHA2_512
	default:
		return a, fmt.Errorf("phase 1 needs a hash")
	}
	a.Group = isakmp.GroupDescription(p.Group)
	a.AuthMethod = isakmp.AuthMethodPSK
	if _, err := keymat.NewCipher(a.Encryption, a.KeyLength); err != nil {
		return a, err
	}
	if _, err := keymat.LookupGroup(a.Group); err != nil {
		return a, err
	}
	return a, nil
}

// phase1Proposal reads a KEY_IKE transform back into the notation. ok is false
// for an algorithm the notation has no word for.
func phase1Proposal(a isakmp.Phase1Attributes) (proposal.Proposal, bool) {
	p := proposal.Proposal{Protocol: proposal.IKE, Group: proposal.Group(a.Group)}
	switch a.Encryption {
	case isakmp.EncDES:
		p.Encr, p.KeyBits = proposal.EncrDES, 64
	case isakmp.Enc3DES:
		p.Encr, p.KeyBits = proposal.Encr3DES, 192
	case isakmp.EncAESCBC:
		p.Encr, p.KeyBits = proposal.EncrAESCBC, int(a.KeyLength)
	default:
		return p, false
	}
	switch a.Hash {
	case isakmp.HashMD5:
		p.Integ = proposal.IntegMD5
	case isakmp.HashSHA1:
		p.Integ = proposal.IntegSHA1
	case isakmp.HashSHA2_256:
		p.Integ = proposal.IntegSHA256
	case isakmp.HashSHA2_384:
		p.Integ = proposal.IntegSHA384
	case isakmp.HashSHA2_512:
		p.Integ = proposal.IntegSHA512
	default:
		return p, false
	}
	return p, true
}

// phase1Offer is the initiator's SA payload (MM1, AM1): one ISAKMP proposal
// with a KEY_IKE transform per configured suite, each with the lifetime.
func phase1Offer(c *Connection) *isakmp.SA {
	prop := isakmp.Proposal{Number: 1, Protocol: isakmp.ProtocolISAKMP}
	for i, p := range c.Proposals {
		a, _ := phase1Suite(p) // validated
		a.LifeSeconds = uint64(c.Lifetime / time.Second)
		a.AuthMethod = authNumber(c)
		prop.Transforms = append(prop.Transforms, isakmp.Transform{Number: uint8(i + 1), ID: isakmp.TransformKeyIKE, Attributes: a.Attributes()})
	}
	return &isakmp.SA{DOI: isakmp.DOIIPsec, Situation: isakmp.SituationIdentityOnly, Proposals: []isakmp.Proposal{prop}}
}

// choice is a transform that both sides accept: its suite in our notation,
// its attributes as offered, and the proposal as offered cut down to that one
// transform, which is what a responder's SA payload returns.
type choice[A any] struct {
	suite    proposal.Proposal
	attrs    A
	proposal isakmp.Proposal
}

type (
	phase1Choice = choice[isakmp.Phase1Attributes]
	childChoice  = choice[isakmp.IPsecAttributes]
)

// offeredAs is what a peer's transform would be if chosen: prop cut down to t.
func offeredAs[A any](suite proposal.Proposal, attrs A, prop isakmp.Proposal, t isakmp.Transform) choice[A] {
	prop.Transforms = []isakmp.Transform{t}
	return choice[A]{suite: suite, attrs: attrs, proposal: prop}
}

// ranked keeps, among the transforms of an offer that we could accept, the
// one of our own most preferred suite (the first the peer listed, of that
// suite), whatever order the peer listed them in, without keeping the rest:
// an offer may hold thousands.
type ranked[A any] struct {
	best choice[A]
	rank int // index in ours; len(ours) while nothing is acceptable
}

func (r *ranked[A]) consider(ours []proposal.Proposal, c choice[A]) {
	if i := slices.Index(ours, c.suite); i >= 0 && i < r.rank {
		r.best, r.rank = c, i
	}
}

// offerSummary names the first transforms of a peer's offer and counts them
// all, for the event that reports what it offered: the peer chooses how many
// there are.
type offerSummary struct {
	shown []string
	total int
	near  *nearest // the suite nearest to one of ours (mismatch.go)
}

// add counts one transform; name, which may cost an allocation, is called
// only while it is among the first shown.
func (o *offerSummary) add(name func() string) {
	o.total++
	if len(o.shown) < maxOfferShown {
		o.shown = append(o.shown, name())
	}
}

// selectPhase1 chooses from a peer's phase 1 offer the first of our suites
// it contains, with our authentication method. offered lists what the peer
// proposed, for the NO-PROPOSAL-CHOSEN event.
func selectPhase1(offer *isakmp.SA, ours []proposal.Proposal, method isakmp.AuthMethod) (_ phase1Choice, offered offerSummary, ok bool) {
	r := ranked[isakmp.Phase1Attributes]{rank: len(ours)}
	for _, prop := range offer.Proposals {
		if prop.Protocol != isakmp.ProtocolISAKMP {
			offered.add(func() string { return fmt.Sprintf("%s proposal", prop.Protocol) })
			continue
		}
		for _, t := range prop.Transforms {
			a, err := isakmp.ParsePhase1Attributes(t.Attributes)
			s, known := phase1Proposal(a)
			switch {
			case err != nil || t.ID != isakmp.TransformKeyIKE:
				offered.add(func() string { return "malformed transform" })
				continue
			case !known:
				offered.add(func() string { return fmt.Sprintf("%s-%s-%d", a.Encryption, a.Hash, uint16(a.Group)) })
				continue
			}
			offered.add(func() string {
				name := s.String()
				if a.AuthMethod != method {
					name += " (auth " + a.AuthMethod.String() + ")"
				}
				return name
			})
			if a.AuthMethod == method {
				r.consider(ours, offeredAs(s, a, prop, t))
			}
			if r.rank == len(ours) {
				var extra func() string
				if a.AuthMethod != method {
					extra = func() string {
						return fmt.Sprintf("the authentication method differs (%s offered, %s configured)", a.AuthMethod, method)
					}
				}
				offered.considerNearest(s, extra, ours)
			}
		}
	}
	return r.best, offered, r.rank < len(ours)
}

// childTransform is an ESP or AH transform of a child suite, without the
// attributes that depend on the negotiation (mode, lifetimes).
type childTransform struct {
	proto isakmp.ProtocolID
	id    isakmp.TransformID
	attrs isakmp.IPsecAttributes
}

// childSuite maps an ESP or AH suite to its IPsec DOI transform (RFC 2407
// §4.4.3–4.4.4, §4.5).
func childSuite(p proposal.Proposal) (childTransform, error) {
	var t childTransform
	auth := map[proposal.Integ]isakmp.AuthAlgorithm{
		proposal.IntegMD5: isakmp.AuthAlgHMACMD5, proposal.IntegSHA1: isakmp.AuthAlgHMACSHA1,
		proposal.IntegSHA256: isakmp.AuthAlgHMACSHA256, proposal.IntegSHA384: isakmp.AuthAlgHMACSHA384,
		proposal.IntegSHA512: isakmp.AuthAlgHMACSHA512,
	}[p.Integ]
	t.attrs = isakmp.IPsecAttributes{AuthAlgorithm: auth, Group: isakmp.GroupDescription(p.Group), ESN: p.ESN}
	switch p.Protocol {
	case proposal.AH:
		t.proto = isakmp.ProtocolAH
		t.id = map[proposal.Integ]isakmp.TransformID{
			proposal.IntegMD5: isakmp.AHMD5, proposal.IntegSHA1: isakmp.AHSHA1, proposal.IntegSHA256: isakmp.AHSHA2_256,
			proposal.IntegSHA384: isakmp.AHSHA2_384, proposal.IntegSHA512: isakmp.AHSHA2_512,
		}[p.Integ]
		if t.id == 0 {
			return t, fmt.Errorf("AH needs an integrity algorithm")
		}
	case proposal.ESP:
		t.proto = isakmp.ProtocolESP
		switch p.Encr {
		case proposal.EncrDES:
			t.id = isakmp.ESPDES
		case proposal.Encr3DES:
			t.id = isakmp.ESP3DES
		case proposal.EncrAESCBC:
			t.id, t.attrs.KeyLength = isakmp.ESPAESCBC, uint16(p.KeyBits)
		case proposal.EncrAESGCM16:
			t.id, t.attrs.KeyLength = isakmp.ESPAESGCM16, uint16(p.KeyBits)
		case proposal.EncrNull:
			t.id = isakmp.ESPNull
		default:
			return t, fmt.Errorf("ESP needs an encryption algorithm")
		}
	default:
		return t, fmt.Errorf("a child proposal must be ESP or AH")
	}
	if p.Group != 0 {
		if _, err := keymat.LookupGroup(isakmp.GroupDescription(p.Group)); err != nil {
			return t, err
		}
	}
	if _, _, err := espAlgorithms(p); err != nil {
		return t, err
	}
	return t, nil
}

// childProposal reads an offered ESP or AH transform back into the notation.
func childProposal(proto isakmp.ProtocolID, t isakmp.Transform) (proposal.Proposal, isakmp.IPsecAttributes, bool) {
	a, err := isakmp.ParseIPsecAttributes(t.Attributes)
	if err != nil {
		return proposal.Proposal{}, a, false
	}
	p := proposal.Proposal{Group: proposal.Group(a.Group), ESN: a.ESN}
	p.Integ = map[isakmp.AuthAlgorithm]proposal.Integ{
		isakmp.AuthAlgHMACMD5: proposal.IntegMD5, isakmp.AuthAlgHMACSHA1: proposal.IntegSHA1,
		isakmp.AuthAlgHMACSHA256: proposal.IntegSHA256, isakmp.AuthAlgHMACSHA384: proposal.IntegSHA384,
		isakmp.AuthAlgHMACSHA512: proposal.IntegSHA512,
	}[a.AuthAlgorithm]
	if a.AuthAlgorithm != 0 && p.Integ == proposal.IntegNone {
		return p, a, false
	}
	switch proto {
	case isakmp.ProtocolAH:
		p.Protocol = proposal.AH
		return p, a, p.Integ != proposal.IntegNone
	case isakmp.ProtocolESP:
		p.Protocol = proposal.ESP
	default:
		return p, a, false
	}
	aes := func() int {
		if a.KeyLength == 0 {
			return 128 // RFC 3602 §5: the Key Length attribute is mandatory, but be lenient
		}
		return int(a.KeyLength)
	}
	switch t.ID {
	case isakmp.ESPDES:
		p.Encr, p.KeyBits = proposal.EncrDES, 64
	case isakmp.ESP3DES:
		p.Encr, p.KeyBits = proposal.Encr3DES, 192
	case isakmp.ESPAESCBC:
		p.Encr, p.KeyBits = proposal.EncrAESCBC, aes()
	case isakmp.ESPAESGCM16:
		p.Encr, p.KeyBits = proposal.EncrAESGCM16, aes()
	case isakmp.ESPNull:
		p.Encr = proposal.EncrNull
	default:
		return p, a, false
	}
	return p, a, true
}

// childOffer is the initiator's Quick Mode SA payload: one proposal with our
// SPI and a transform per configured suite (RFC 2409 §5.5), each carrying the
// encapsulation mode and the lifetimes. strongSwan sends kilobytes as
// bytes/1000, and so do we.
func childOffer(ch *Child, spi uint32, encap isakmp.EncapsulationMode) *isakmp.SA {
	var prop isakmp.Proposal
	for i, p := range ch.Proposals {
		t, _ := childSuite(p) // validated
		prop.Protocol = t.proto
		a := t.attrs
		a.Encapsulation = encap
		a.LifeSeconds = uint64(ch.Lifetime / time.Second)
		a.LifeKilobytes = ch.LifeBytes / 1000
		prop.Transforms = append(prop.Transforms, isakmp.Transform{Number: uint8(i + 1), ID: t.id, Attributes: a.Attributes()})
	}
	prop.Number, prop.SPI = 1, spiBytes(spi)
	return &isakmp.SA{DOI: isakmp.DOIIPsec, Situation: isakmp.SituationIdentityOnly, Proposals: []isakmp.Proposal{prop}}
}

// selectChild chooses from a Quick Mode offer the first of our suites it
// contains, in the encapsulation mode we expect. Offers that bundle several
// protocols under one proposal number (AH+ESP) are not supported and skipped.
func selectChild(offer *isakmp.SA, ours []proposal.Proposal, encap func(isakmp.EncapsulationMode) bool) (_ childChoice, offered offerSummary, ok bool) {
	r := ranked[isakmp.IPsecAttributes]{rank: len(ours)}
	for _, group := range offer.Offers() {
		if len(group) != 1 {
			offered.add(func() string { return fmt.Sprintf("bundle of %d protocols", len(group)) })
			continue
		}
		prop := group[0]
		for _, t := range prop.Transforms {
			s, a, known := childProposal(prop.Protocol, t)
			if !known {
				offered.add(func() string { return strings.ToLower(isakmp.TransformName(prop.Protocol, t.ID)) })
				continue
			}
			offered.add(func() string {
				name := strings.ToLower(s.Protocol.String()) + ":" + s.String()
				if !encap(a.Encapsulation) {
					name += " (" + a.Encapsulation.String() + ")"
				}
				return name
			})
			if encap(a.Encapsulation) {
				r.consider(ours, offeredAs(s, a, prop, t))
			}
			if r.rank == len(ours) {
				var extra func() string
				if !encap(a.Encapsulation) {
					extra = func() string { return fmt.Sprintf("the encapsulation mode differs (%s offered)", a.Encapsulation) }
				}
				offered.considerNearest(s, extra, ours)
			}
		}
	}
	return r.best, offered, r.rank < len(ours)
}

// espAlgorithms maps a child suite to the data plane's algorithms.
func espAlgorithms(p proposal.Proposal) (esp.EncAlg, esp.IntegAlg, error) {
	integ := map[proposal.Integ]esp.IntegAlg{
		proposal.IntegNone: esp.IntegNone, proposal.IntegMD5: esp.IntegHMACMD5_96, proposal.IntegSHA1: esp.IntegHMACSHA1_96,
		proposal.IntegSHA256: esp.IntegHMACSHA256_128, proposal.IntegSHA384: esp.IntegHMACSHA384_192,
		proposal.IntegSHA512: esp.IntegHMACSHA512_256,
	}[p.Integ]
	if p.Protocol == proposal.AH {
		return 0, integ, nil
	}
	var enc esp.EncAlg
	switch {
	case p.Encr == proposal.EncrNull:
		enc = esp.EncNull
	case p.Encr == proposal.EncrDES:
		enc = esp.EncDES
	case p.Encr == proposal.Encr3DES:
		enc = esp.Enc3DES
	case p.Encr == proposal.EncrAESCBC && p.KeyBits == 128:
		enc = esp.EncAESCBC128
	case p.Encr == proposal.EncrAESCBC && p.KeyBits == 192:
		enc = esp.EncAESCBC192
	case p.Encr == proposal.EncrAESCBC && p.KeyBits == 256:
		enc = esp.EncAESCBC256
	case p.Encr == proposal.EncrAESGCM16 && p.KeyBits == 128:
		enc = esp.EncAESGCM16_128
	case p.Encr == proposal.EncrAESGCM16 && p.KeyBits == 192:
		enc = esp.EncAESGCM16_192
	case p.Encr == proposal.EncrAESGCM16 && p.KeyBits == 256:
		enc = esp.EncAESGCM16_256
	default:
		return 0, 0, fmt.Errorf("the data plane has no %s", p)
	}
	return enc, integ, nil
}

// suiteNames renders suites for events: "aes128-sha256-modp2048, 3des-sha1-modp1024".
func suiteNames(ps []proposal.Proposal) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ", ")
}

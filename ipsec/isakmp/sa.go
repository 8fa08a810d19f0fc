package isakmp

import (
	"encoding/binary"
	"math"
)

// SA is the Security Association payload (RFC 2408 §3.4, IPsec DOI RFC 2407
// §4.6.1): a DOI, a situation and one or more proposals. Proposals with the
// same number are one offer that asks for all of them together (for example AH
// and ESP); Offers groups them.
type SA struct {
	received
	DOI       DOI
	Situation Situation
	Proposals []Proposal
}

// Proposal is a Proposal payload inside an SA (RFC 2408 §3.5). Its transforms
// are alternatives, in the order of the sender's preference.
type Proposal struct {
	Number     uint8
	Protocol   ProtocolID
	SPI        []byte // empty for phase 1, 4 bytes for AH/ESP, 2 (CPI) for IPCOMP
	Transforms []Transform
}

// Transform is a Transform payload inside a Proposal (RFC 2408 §3.6).
type Transform struct {
	Number     uint8
	ID         TransformID
	Attributes []Attribute
}

// Attribute returns the transform's first attribute of type t.
func (t *Transform) Attribute(typ AttributeType) (Attribute, bool) {
	return FindAttribute(t.Attributes, typ)
}

// Offers groups the proposals by proposal number, keeping their order: each
// group is one alternative the responder may choose (RFC 2408 §4.2).
func (p *SA) Offers() [][]Proposal {
	var offers [][]Proposal
	for i, prop := range p.Proposals {
		if i > 0 && prop.Number == p.Proposals[i-1].Number {
			offers[len(offers)-1] = append(offers[len(offers)-1], prop)
			continue
		}
		offers = append(offers, []Proposal{prop})
	}
	return offers
}

func (*SA) Type() PayloadType { return PayloadSA }
func (p *SA) Body() []byte    { return bodyOf(p) }

const (
	saFixedLen        = 8 // DOI, Situation
	proposalFixedLen  = 8 // generic header, number, protocol, SPI size, #transforms
	transformFixedLen = 8 // generic header, number, ID, RESERVED2
)

func (p *SA) appendBody(b []byte) ([]byte, error) {
	b = binary.BigEndian.AppendUint32(b, uint32(p.DOI))
	b = binary.BigEndian.AppendUint32(b, uint32(p.Situation))
	for i, prop := range p.Proposals {
		next := PayloadNone
		if i+1 < len(p.Proposals) {
			next = PayloadProposal
		}
		if len(prop.SPI) > math.MaxUint8 || len(prop.Transforms) > math.MaxUint8 {
			return nil, encodeError("proposal %d has a %d-byte SPI and %d transforms", prop.Number, len(prop.SPI), len(prop.Transforms))
		}
		start := len(b)
		b = append(b, byte(next), 0, 0, 0, prop.Number, byte(prop.Protocol), byte(len(prop.SPI)), byte(len(prop.Transforms)))
		b = append(b, prop.SPI...)
		for j, t := range prop.Transforms {
			next := PayloadNone
			if j+1 < len(prop.Transforms) {
				next = PayloadTransform
			}
			tstart := len(b)
			b = append(b, byte(next), 0, 0, 0, t.Number, byte(t.ID), 0, 0)
			var err error
			if b, err = appendAttributes(b, t.Attributes); err != nil {
				return nil, err
			}
			if err := putLength(b, tstart); err != nil {
				return nil, err
			}
		}
		if err := putLength(b, start); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// putLength fills the Payload Length of the structure that starts at start and
// ends at the end of b.
func putLength(b []byte, start int) error {
	n := len(b) - start
	if n > math.MaxUint16 {
		return encodeError("a proposal or transform is %d bytes long", n)
	}
	binary.BigEndian.PutUint16(b[start+2:], uint16(n))
	return nil
}

func (p *SA) decodeBody(body []byte, off int) error {
	if err := checkMin(PayloadSA, body, saFixedLen, off); err != nil {
		return err
	}
	p.DOI = DOI(binary.BigEndian.Uint32(body))
	p.Situation = Situation(binary.BigEndian.Uint32(body[4:]))
	if p.DOI == DOIIPsec && p.Situation&(SituationSecrecy|SituationIntegrity) != 0 {
		// Labeled situations carry secrecy and integrity fields RFC 2409 never
		// uses; we cannot parse past them.
		return newError(NotifySituationNotSupported, PayloadSA, off, "situation %#x (labeled domain) is not supported", uint32(p.Situation))
	}
	pos := saFixedLen
	base := off + genericHeaderLen
	next := PayloadProposal
	for next != PayloadNone {
		if next != PayloadProposal {
			return newError(NotifyBadProposalSyntax, PayloadSA, base+pos, "proposal followed by payload type %d inside an SA", uint8(next))
		}
		prop, following, n, err := decodeProposal(body[pos:], base+pos)
		if err != nil {
			return err
		}
		p.Proposals = append(p.Proposals, prop)
		next, pos = following, pos+n
	}
	if pos != len(body) {
		return malformed(PayloadSA, base+pos, "%d bytes after the last proposal", len(body)-pos)
	}
	return nil
}

// decodeProposal decodes the proposal at the start of b and returns it, the
// Next Payload it names and its length.
func decodeProposal(b []byte, off int) (Proposal, PayloadType, int, error) {
	var prop Proposal
	if len(b) < proposalFixedLen {
		return prop, 0, 0, malformed(PayloadProposal, off, "proposal needs %d bytes, %d left in the SA", proposalFixedLen, len(b))
	}
	next := PayloadType(b[0])
	length := int(binary.BigEndian.Uint16(b[2:]))
	prop.Number, prop.Protocol = b[4], ProtocolID(b[5])
	spiSize, count := int(b[6]), int(b[7])
	if length < proposalFixedLen+spiSize {
		return prop, 0, 0, malformed(PayloadProposal, off, "proposal length %d is shorter than its fixed part and %d-byte SPI", length, spiSize)
	}
	if length > len(b) {
		return prop, 0, 0, malformed(PayloadProposal, off, "proposal length %d overruns the SA (%d bytes left)", length, len(b))
	}
	prop.SPI = b[proposalFixedLen : proposalFixedLen+spiSize : proposalFixedLen+spiSize]
	pos := proposalFixedLen + spiSize
	tnext := PayloadTransform
	if count == 0 {
		tnext = PayloadNone
	}
	for tnext != PayloadNone {
		if tnext != PayloadTransform {
			return prop, 0, 0, newError(NotifyBadProposalSyntax, PayloadProposal, off+pos, "transform followed by payload type %d inside a proposal", uint8(tnext))
		}
		t, following, n, err := decodeTransform(b[pos:length], off+pos)
		if err != nil {
			return prop, 0, 0, err
		}
		prop.Transforms = append(prop.Transforms, t)
		tnext, pos = following, pos+n
	}
	if len(prop.Transforms) != count {
		return prop, 0, 0, newError(NotifyBadProposalSyntax, PayloadProposal, off, "proposal announces %d transforms but holds %d", count, len(prop.Transforms))
	}
	if pos != length {
		return prop, 0, 0, malformed(PayloadProposal, off+pos, "%d bytes after the last transform", length-pos)
	}
	return prop, next, length, nil
}

func decodeTransform(b []byte, off int) (Transform, PayloadType, int, error) {
	var t Transform
	if len(b) < transformFixedLen {
		return t, 0, 0, malformed(PayloadTransform, off, "transform needs %d bytes, %d left in the proposal", transformFixedLen, len(b))
	}
	next := PayloadType(b[0])
	length := int(binary.BigEndian.Uint16(b[2:]))
	if length < transformFixedLen {
		return t, 0, 0, malformed(PayloadTransform, off, "transform length %d is shorter than its fixed part", length)
	}
	if length > len(b) {
		return t, 0, 0, malformed(PayloadTransform, off, "transform length %d overruns the proposal (%d bytes left)", length, len(b))
	}
	t.Number, t.ID = b[4], TransformID(b[5])
	attrs, err := decodeAttributes(b[transformFixedLen:length], PayloadTransform, off+transformFixedLen)
	if err != nil {
		return t, 0, 0, err
	}
	t.Attributes = attrs
	return t, next, length, nil
}

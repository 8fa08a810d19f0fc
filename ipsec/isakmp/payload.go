package isakmp

import (
	"encoding/binary"
	"math"
)

// genericHeaderLen is the size of the generic payload header that starts
// every payload: Next Payload, RESERVED, Payload Length (RFC 2408 §3.2).
const genericHeaderLen = 4

// criticalBit is the bit of the generic header's RESERVED octet that IKEv2
// (RFC 7296 §3.2) defines as "critical". RFC 2408 leaves the octet reserved;
// an implementation that sets the bit on a payload we do not know tells us not
// to skip it, so we refuse the message with INVALID-PAYLOAD-TYPE instead.
const criticalBit = 0x80

// Payload is one payload of an ISAKMP message. The concrete types are SA, KE,
// ID, Cert, CertRequest, Hash, Signature, Nonce, Notify, Delete, VendorID,
// ConfigAttributes, NATD, NATOA, Fragment and Unknown.
//
// A payload decoded from a message remembers its body exactly as received:
// Body returns those bytes, which is what RFC 2409 hashes (SAi_b, IDii_b, ...)
// are computed over. A payload built locally has no received bytes, and Body
// returns its encoding, which is the same bytes Message.Encode puts on the
// wire.
type Payload interface {
	// Type is the payload's Next Payload value.
	Type() PayloadType
	// Body is the payload without its 4-byte generic header: the bytes as
	// received, or else the encoding (nil if the payload cannot be encoded;
	// Message.Encode reports why).
	Body() []byte

	appendBody(b []byte) ([]byte, error)
	decodeBody(body []byte, off int) error
	receivedBody() []byte
	setReceived(body []byte)
}

// received is embedded in every payload type to remember the received body.
type received struct{ raw []byte }

func (r *received) receivedBody() []byte    { return r.raw }
func (r *received) setReceived(body []byte) { r.raw = body }

func bodyOf(p Payload) []byte {
	if b := p.receivedBody(); b != nil {
		return b
	}
	b, err := p.appendBody(nil)
	if err != nil {
		return nil
	}
	return b
}

// newPayload returns an empty payload for a type that may appear in a
// message's payload chain, or nil for one that may not (Proposal and Transform
// only appear inside an SA payload).
func newPayload(t PayloadType) Payload {
	switch t {
	case PayloadSA:
		return &SA{}
	case PayloadKE:
		return &KE{}
	case PayloadID:
		return &ID{}
	case PayloadCert:
		return &Cert{}
	case PayloadCertRequest:
		return &CertRequest{}
	case PayloadHash:
		return &Hash{}
	case PayloadSignature:
		return &Signature{}
	case PayloadNonce:
		return &Nonce{}
	case PayloadNotify:
		return &Notify{}
	case PayloadDelete:
		return &Delete{}
	case PayloadVendorID:
		return &VendorID{}
	case PayloadAttributes:
		return &ConfigAttributes{}
	case PayloadNATD, PayloadNATDDraft:
		return &NATD{Draft: t == PayloadNATDDraft}
	case PayloadNATOA, PayloadNATOADraft:
		return &NATOA{Draft: t == PayloadNATOADraft}
	case PayloadFragment:
		return &Fragment{}
	case PayloadProposal, PayloadTransform:
		return nil
	}
	return &Unknown{Kind: t}
}

// EncodePayloads returns the payloads as they appear in a message: each with
// its generic header, each Next Payload naming the payload after it, the last
// one NONE. RFC 2409 computes Quick Mode and Informational hashes over exactly
// these bytes ("the entire message after the HASH payload"), so
//
//	hash1 := prf(SKEYID_a, M-ID | EncodePayloads(sa, nonce, ...))
//
// is the HASH(1) of a message whose payloads are hash, sa, nonce, ....
func EncodePayloads(payloads ...Payload) ([]byte, error) {
	return appendChain(nil, payloads)
}

func appendChain(b []byte, payloads []Payload) ([]byte, error) {
	for i, p := range payloads {
		next := PayloadNone
		if i+1 < len(payloads) {
			next = payloads[i+1].Type()
		}
		start := len(b)
		b = append(b, byte(next), 0, 0, 0)
		var err error
		if b, err = p.appendBody(b); err != nil {
			return nil, err
		}
		n := len(b) - start
		if n > math.MaxUint16 {
			return nil, encodeError("%s payload is %d bytes long", p.Type().Abbrev(), n)
		}
		binary.BigEndian.PutUint16(b[start+2:], uint16(n))
	}
	return b, nil
}

// chainEntry is one payload of a decoded chain and where it started.
type chainEntry struct {
	payload Payload
	start   int // offset of the generic header within the decoded buffer
}

// decodeChain decodes the payload chain that starts with a payload of type
// first at the beginning of b. base is the offset of b in the message, for
// error reports. It returns the payloads and the offset just past the last one;
// bytes after that are not looked at (encrypted messages end in padding).
// Every payload aliases b. With sealedIDs set, an ID payload's body is kept
// without the checks of its type (DecodeSealed).
func decodeChain(first PayloadType, b []byte, base int, sealedIDs bool) ([]chainEntry, int, error) {
	entries := make([]chainEntry, 0, countChain(first, b))
	next, pos := first, 0
	for next != PayloadNone {
		if len(b)-pos < genericHeaderLen {
			return nil, 0, malformed(next, base+pos, "generic payload header needs %d bytes, %d left", genericHeaderLen, len(b)-pos)
		}
		following := PayloadType(b[pos])
		reserved := b[pos+1]
		length := int(binary.BigEndian.Uint16(b[pos+2:]))
		if length < genericHeaderLen {
			return nil, 0, malformed(next, base+pos, "payload length %d is shorter than the generic header", length)
		}
		if length > len(b)-pos {
			return nil, 0, malformed(next, base+pos, "payload length %d overruns the message (%d bytes left)", length, len(b)-pos)
		}
		p := newPayload(next)
		if p == nil {
			return nil, 0, newError(NotifyInvalidPayloadType, next, base+pos, "%s payload outside an SA payload", next.Abbrev())
		}
		if _, unknown := p.(*Unknown); unknown && reserved&criticalBit != 0 {
			return nil, 0, newError(NotifyInvalidPayloadType, next, base+pos, "unknown payload type %d is marked critical", uint8(next))
		}
		body := b[pos+genericHeaderLen : pos+length : pos+length]
		if id, ok := p.(*ID); ok && sealedIDs {
			id.Data = body
		} else if err := p.decodeBody(body, base+pos); err != nil {
			return nil, 0, err
		}
		p.setReceived(body)
		entries = append(entries, chainEntry{payload: p, start: pos})
		next, pos = following, pos+length
	}
	return entries, pos, nil
}

// countChain counts the payloads of the chain in b by following the length
// fields, stopping where one does not fit, so that decoding allocates once.
func countChain(first PayloadType, b []byte) int {
	n := 0
	for next, pos := first, 0; next != PayloadNone && len(b)-pos >= genericHeaderLen; n++ {
		length := int(binary.BigEndian.Uint16(b[pos+2:]))
		if length < genericHeaderLen {
			break
		}
		next, pos = PayloadType(b[pos]), pos+length
	}
	return n
}

// checkMin reports a body shorter than the fixed part of its payload.
func checkMin(t PayloadType, body []byte, min, off int) error {
	if len(body) < min {
		return malformed(t, off, "body of %d bytes is shorter than the %d-byte fixed part", len(body), min)
	}
	return nil
}

// KE is the Key Exchange payload (RFC 2408 §3.7): the sender's public
// Diffie-Hellman value g^x, left-padded to the group's size.
type KE struct {
	received
	Data []byte
}

func (*KE) Type() PayloadType                     { return PayloadKE }
func (p *KE) Body() []byte                        { return bodyOf(p) }
func (p *KE) appendBody(b []byte) ([]byte, error) { return append(b, p.Data...), nil }
func (p *KE) decodeBody(body []byte, _ int) error { p.Data = body; return nil }

// Hash is the Hash payload (RFC 2408 §3.11): HASH_I, HASH_R or a Quick Mode /
// Informational HASH.
type Hash struct {
	received
	Data []byte
}

func (*Hash) Type() PayloadType                     { return PayloadHash }
func (p *Hash) Body() []byte                        { return bodyOf(p) }
func (p *Hash) appendBody(b []byte) ([]byte, error) { return append(b, p.Data...), nil }
func (p *Hash) decodeBody(body []byte, _ int) error { p.Data = body; return nil }

// Signature is the Signature payload (RFC 2408 §3.12): SIG_I or SIG_R.
type Signature struct {
	received
	Data []byte
}

func (*Signature) Type() PayloadType                     { return PayloadSignature }
func (p *Signature) Body() []byte                        { return bodyOf(p) }
func (p *Signature) appendBody(b []byte) ([]byte, error) { return append(b, p.Data...), nil }
func (p *Signature) decodeBody(body []byte, _ int) error { p.Data = body; return nil }

// Nonce is the Nonce payload (RFC 2408 §3.13). RFC 2409 §5 wants 8 to 256
// bytes of data; checking that is the exchange's business.
type Nonce struct {
	received
	Data []byte
}

func (*Nonce) Type() PayloadType                     { return PayloadNonce }
func (p *Nonce) Body() []byte                        { return bodyOf(p) }
func (p *Nonce) appendBody(b []byte) ([]byte, error) { return append(b, p.Data...), nil }
func (p *Nonce) decodeBody(body []byte, _ int) error { p.Data = body; return nil }

// VendorID is the Vendor ID payload (RFC 2408 §3.16). Known returns what a
// recognised vendor ID stands for.
type VendorID struct {
	received
	Data []byte
}

func (*VendorID) Type() PayloadType                     { return PayloadVendorID }
func (p *VendorID) Body() []byte                        { return bodyOf(p) }
func (p *VendorID) appendBody(b []byte) ([]byte, error) { return append(b, p.Data...), nil }
func (p *VendorID) decodeBody(body []byte, _ int) error { p.Data = body; return nil }

// Unknown is a payload of a type this package does not interpret (for
// example the GDOI payloads 15–19, or a private-use type). Its body is kept so
// that the exchange can log it; RFC 2408 §5.2 lets the receiver answer with
// INVALID-PAYLOAD-TYPE if it cannot ignore it.
type Unknown struct {
	received
	Kind PayloadType
	Data []byte
}

func (p *Unknown) Type() PayloadType                   { return p.Kind }
func (p *Unknown) Body() []byte                        { return bodyOf(p) }
func (p *Unknown) appendBody(b []byte) ([]byte, error) { return append(b, p.Data...), nil }
func (p *Unknown) decodeBody(body []byte, _ int) error { p.Data = body; return nil }

package isakmp

import (
	"encoding/binary"
	"math"
)

// AttributeType is the Attribute Type of a data attribute with the AF bit
// removed. The same numbers mean different things in different places: see
// the Oakley* constants (phase 1 transforms, RFC 2409 App. A), the IPsec*
// constants (phase 2 transforms, RFC 2407 §4.5) and the Cfg*/XAuth* constants
// (Attribute payload, draft-ietf-ipsec-isakmp-mode-cfg-05).
type AttributeType uint16

// attributeFormatBit is the AF bit: set for the TV ("basic") form.
const attributeFormatBit = 0x8000

// Attribute is one data attribute (RFC 2408 §3.3). In the TV form (AF=1) the
// value is exactly two bytes and travels in the Attribute Length field; in the
// TLV form (AF=0) it is any number of bytes up to 65535.
type Attribute struct {
	Type  AttributeType
	TV    bool
	Value []byte
}

// Basic returns a TV attribute holding v.
func Basic(t AttributeType, v uint16) Attribute {
	return Attribute{Type: t, TV: true, Value: binary.BigEndian.AppendUint16(nil, v)}
}

// Variable returns a TLV attribute holding v.
func Variable(t AttributeType, v []byte) Attribute {
	return Attribute{Type: t, Value: v}
}

// Number returns an attribute holding the integer v: TV when v fits in 16
// bits, else TLV with the value in 4 (or 8) bytes. This is how RFC 2409 App. A
// lets variable-length values such as Life Duration travel as basic attributes
// when they are small.
func Number(t AttributeType, v uint64) Attribute {
	switch {
	case v <= math.MaxUint16:
		return Basic(t, uint16(v))
	case v <= math.MaxUint32:
		return Variable(t, binary.BigEndian.AppendUint32(nil, uint32(v)))
	}
	return Variable(t, binary.BigEndian.AppendUint64(nil, v))
}

// Uint interprets the value as a big-endian unsigned integer. ok is false when
// the value is empty or longer than eight bytes (leading zero bytes are
// allowed in any number).
func (a Attribute) Uint() (v uint64, ok bool) {
	b := a.Value
	for len(b) > 8 && b[0] == 0 {
		b = b[1:]
	}
	if len(a.Value) == 0 || len(b) > 8 {
		return 0, false
	}
	for _, c := range b {
		v = v<<8 | uint64(c)
	}
	return v, true
}

func appendAttribute(b []byte, a Attribute) ([]byte, error) {
	if a.Type&attributeFormatBit != 0 {
		return nil, encodeError("attribute type %d has the AF bit set", a.Type)
	}
	if a.TV {
		if len(a.Value) != 2 {
			return nil, encodeError("TV attribute %d holds %d bytes, not 2", a.Type, len(a.Value))
		}
		b = binary.BigEndian.AppendUint16(b, uint16(a.Type)|attributeFormatBit)
		return append(b, a.Value...), nil
	}
	if len(a.Value) > math.MaxUint16 {
		return nil, encodeError("TLV attribute %d holds %d bytes", a.Type, len(a.Value))
	}
	b = binary.BigEndian.AppendUint16(b, uint16(a.Type))
	b = binary.BigEndian.AppendUint16(b, uint16(len(a.Value)))
	return append(b, a.Value...), nil
}

func appendAttributes(b []byte, attrs []Attribute) ([]byte, error) {
	var err error
	for _, a := range attrs {
		if b, err = appendAttribute(b, a); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// decodeAttributes parses a run of attributes filling b exactly. off is the
// message offset of b and p the payload holding it, for error reports. The
// values alias b.
func decodeAttributes(b []byte, p PayloadType, off int) ([]Attribute, error) {
	attrs := make([]Attribute, 0, countAttributes(b))
	for pos := 0; pos < len(b); {
		if len(b)-pos < 4 {
			return nil, malformed(p, off+pos, "attribute header needs 4 bytes, %d left", len(b)-pos)
		}
		typ := binary.BigEndian.Uint16(b[pos:])
		lv := binary.BigEndian.Uint16(b[pos+2:])
		if typ&attributeFormatBit != 0 {
			attrs = append(attrs, Attribute{Type: AttributeType(typ &^ attributeFormatBit), TV: true, Value: b[pos+2 : pos+4 : pos+4]})
			pos += 4
			continue
		}
		end := pos + 4 + int(lv)
		if end > len(b) {
			return nil, malformed(p, off+pos, "attribute %d length %d overruns its container (%d bytes left)", typ, lv, len(b)-pos-4)
		}
		attrs = append(attrs, Attribute{Type: AttributeType(typ), Value: b[pos+4 : end : end]})
		pos = end
	}
	return attrs, nil
}

// countAttributes counts the attributes in b, stopping at the first one that
// does not fit, so that decoding allocates exactly once.
func countAttributes(b []byte) int {
	n := 0
	for pos := 0; len(b)-pos >= 4; n++ {
		if b[pos]&0x80 != 0 {
			pos += 4
		} else {
			pos += 4 + int(binary.BigEndian.Uint16(b[pos+2:]))
		}
	}
	return n
}

// FindAttribute returns the first attribute of type t.
func FindAttribute(attrs []Attribute, t AttributeType) (Attribute, bool) {
	for _, a := range attrs {
		if a.Type == t {
			return a, true
		}
	}
	return Attribute{}, false
}

package isakmp

import "encoding/binary"

// HeaderLen is the size of the ISAKMP header (RFC 2408 §3.1).
const HeaderLen = 28

// Version is the Major/Minor Version octet of IKEv1: major 1, minor 0.
const Version = 0x10

// Header is the ISAKMP header (RFC 2408 §3.1). NextPayload and Length are
// filled in by Message.Encode; on a decoded message they are the received
// values.
type Header struct {
	InitiatorCookie Cookie // CKY-I
	ResponderCookie Cookie // CKY-R, zero in the first message
	NextPayload     PayloadType
	Version         uint8 // MjVer<<4 | MnVer; Encode writes Version when zero
	Exchange        ExchangeType
	Flags           Flags
	MessageID       uint32 // zero in phase 1, random in later exchanges
	Length          uint32
}

// DecodeHeader decodes the header at the start of b, enough to find the SA a
// message belongs to before decrypting it. It checks the version as RFC 2408
// §5.1 asks (INVALID-MAJOR-VERSION, INVALID-MINOR-VERSION) and leaves the
// reserved flag bits alone.
func DecodeHeader(b []byte) (Header, error) {
	var h Header
	if len(b) < HeaderLen {
		return h, malformed(PayloadNone, 0, "message of %d bytes is shorter than the %d-byte header", len(b), HeaderLen)
	}
	copy(h.InitiatorCookie[:], b[0:8])
	copy(h.ResponderCookie[:], b[8:16])
	h.NextPayload = PayloadType(b[16])
	h.Version = b[17]
	h.Exchange = ExchangeType(b[18])
	h.Flags = Flags(b[19])
	h.MessageID = binary.BigEndian.Uint32(b[20:])
	h.Length = binary.BigEndian.Uint32(b[24:])
	if h.Version>>4 != Version>>4 {
		return h, newError(NotifyInvalidMajorVersion, PayloadNone, 17, "major version %d", h.Version>>4)
	}
	if h.Version&0x0f != Version&0x0f {
		return h, newError(NotifyInvalidMinorVersion, PayloadNone, 17, "minor version %d", h.Version&0x0f)
	}
	return h, nil
}

func (h *Header) append(b []byte) []byte {
	b = append(b, h.InitiatorCookie[:]...)
	b = append(b, h.ResponderCookie[:]...)
	v := h.Version
	if v == 0 {
		v = Version
	}
	b = append(b, byte(h.NextPayload), v, byte(h.Exchange), byte(h.Flags))
	b = binary.BigEndian.AppendUint32(b, h.MessageID)
	return binary.BigEndian.AppendUint32(b, h.Length)
}

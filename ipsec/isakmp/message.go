package isakmp

import (
	"math"
)

// Message is one ISAKMP message: a header and a chain of payloads.
//
// To send, fill Header (cookies, exchange, message ID, flags) and Payloads,
// then call Encode, or EncodeEncrypted once keys exist; both compute the Next
// Payload chain and the lengths.
//
// Decode returns a received message. When the E flag is set only the header
// is decoded and Ciphertext holds the rest; Decrypt turns it into Payloads.
type Message struct {
	Header   Header
	Payloads []Payload

	// Ciphertext is the encrypted body of a received message (E flag set),
	// exactly as received. Its last block is the next IV of the exchange.
	Ciphertext []byte

	chain  []byte // the decoded payload chain as received, padding excluded
	starts []int  // offset of each payload's generic header within chain
	built  []byte // the payload chain as Encode or EncodeEncrypted encoded it
}

// Decode decodes a received datagram (without any non-ESP marker). It copies
// b once; every payload aliases that copy, so the caller may reuse b.
//
// The header's Length must match len(b) (else UNEQUAL-PAYLOAD-LENGTHS). A
// plaintext message's payload chain must end exactly at the end of the
// message. Decode never panics, whatever b holds.
func Decode(b []byte) (*Message, error) { return decode(b, false) }

// DecodeSealed is Decode for a Main or Aggressive Mode message of
// public-key encryption (RFC 2409 §5.2, §5.3), in which ID payloads carry
// encrypted bodies: "only the body of the payloads are encrypted, the
// generic payload headers are left in the clear". Such a body is ciphertext,
// whose first byte Decode would read as an ID type and may find the wrong
// length for it; DecodeSealed keeps every ID body as it is, unchecked, and
// ParseID checks one once it is decrypted. Everything else is as strict as
// Decode.
func DecodeSealed(b []byte) (*Message, error) { return decode(b, true) }

func decode(b []byte, sealedIDs bool) (*Message, error) {
	h, err := DecodeHeader(b)
	if err != nil {
		return nil, err
	}
	if int64(h.Length) != int64(len(b)) {
		return nil, newError(NotifyUnequalPayloadLengths, PayloadNone, 24, "header length %d but the datagram holds %d bytes", h.Length, len(b))
	}
	buf := append([]byte(nil), b...)
	m := &Message{Header: h}
	if h.Flags&FlagEncryption != 0 {
		m.Ciphertext = buf[HeaderLen:]
		return m, nil
	}
	if err := m.decodePayloads(buf[HeaderLen:], false, sealedIDs); err != nil {
		return nil, err
	}
	return m, nil
}

// decodePayloads parses the chain that starts at the beginning of body. With
// padded set, bytes after the chain are IKEv1 encryption padding (which has no
// pad-length byte) and are ignored; otherwise they are an error.
// With sealedIDs set, ID bodies are kept unchecked (DecodeSealed).
func (m *Message) decodePayloads(body []byte, padded, sealedIDs bool) error {
	entries, end, err := decodeChain(m.Header.NextPayload, body, HeaderLen, sealedIDs)
	if err != nil {
		return err
	}
	if !padded && end != len(body) {
		return malformed(PayloadNone, HeaderLen+end, "%d bytes after the last payload", len(body)-end)
	}
	m.Payloads = make([]Payload, len(entries))
	m.starts = make([]int, len(entries))
	for i, e := range entries {
		m.Payloads[i], m.starts[i] = e.payload, e.start
	}
	m.chain = body[:end:end]
	return nil
}

// Encode returns the message in wire form, unencrypted. It sets
// Header.NextPayload and Header.Length. Use EncodeEncrypted when the E flag is
// to be set.
func (m *Message) Encode() ([]byte, error) {
	if m.Header.Flags&FlagEncryption != 0 {
		return nil, encodeError("the E flag is set; use EncodeEncrypted")
	}
	body, err := appendChain(nil, m.Payloads)
	if err != nil {
		return nil, err
	}
	m.built = body
	return m.frame(body)
}

// frame prepends the header to an encoded (possibly encrypted) body.
func (m *Message) frame(body []byte) ([]byte, error) {
	if int64(len(body)) > math.MaxUint32-HeaderLen {
		return nil, encodeError("message body of %d bytes", len(body))
	}
	m.Header.NextPayload = PayloadNone
	if len(m.Payloads) > 0 {
		m.Header.NextPayload = m.Payloads[0].Type()
	}
	m.Header.Length = uint32(HeaderLen + len(body))
	out := make([]byte, 0, HeaderLen+len(body))
	return append(m.Header.append(out), body...), nil
}

// PayloadBytes returns the payloads from index from to the end of the chain,
// each with its generic header: for a received message the bytes as received
// (without encryption padding), for a message built locally their encoding.
// Quick Mode, Informational and Transaction hashes are computed over
// PayloadBytes(1), the message after its HASH payload (RFC 2409 §5.5, §5.7).
func (m *Message) PayloadBytes(from int) ([]byte, error) {
	if from < 0 || from > len(m.Payloads) {
		return nil, encodeError("payload index %d of %d", from, len(m.Payloads))
	}
	if m.chain != nil && len(m.starts) == len(m.Payloads) {
		if from == len(m.starts) {
			return m.chain[len(m.chain):], nil
		}
		return m.chain[m.starts[from]:], nil
	}
	return EncodePayloads(m.Payloads[from:]...)
}

// Plaintext returns the message as it reads decrypted: its header, with
// the E flag cleared and the plaintext's length, followed by the payload
// chain without encryption padding; Decode reads it back. A received
// message's payloads are the bytes received (decrypted), a message sent
// the bytes Encode or EncodeEncrypted encoded. It is nil for an encrypted
// message that was not decrypted. The web view's inspector shows messages
// from these bytes.
func (m *Message) Plaintext() []byte {
	body := m.built
	if body == nil {
		if m.chain == nil && m.Ciphertext != nil {
			return nil
		}
		var err error
		if body, err = m.PayloadBytes(0); err != nil {
			return nil
		}
	}
	h := m.Header
	h.Flags &^= FlagEncryption
	h.Length = uint32(HeaderLen + len(body))
	if len(m.Payloads) > 0 {
		h.NextPayload = m.Payloads[0].Type()
	}
	out := h.append(make([]byte, 0, HeaderLen+len(body)))
	return append(out, body...)
}

// PayloadNames lists the payloads by their short names, for example
// ["SA", "KE", "NONCE", "NAT-D", "NAT-D"]. It is empty for an encrypted
// message that has not been decrypted.
func (m *Message) PayloadNames() []string {
	names := make([]string, len(m.Payloads))
	for i, p := range m.Payloads {
		names[i] = p.Type().Abbrev()
	}
	return names
}

// First returns the message's first payload of type T, or T's zero value
// (a nil pointer) when there is none:
//
//	if sa := isakmp.First[*isakmp.SA](msg); sa != nil { ... }
func First[T Payload](m *Message) T {
	for _, p := range m.Payloads {
		if t, ok := p.(T); ok {
			return t
		}
	}
	var zero T
	return zero
}

// All returns every payload of type T in the message, in order:
//
//	for _, n := range isakmp.All[*isakmp.Notify](msg) { ... }
func All[T Payload](m *Message) []T {
	var all []T
	for _, p := range m.Payloads {
		if t, ok := p.(T); ok {
			all = append(all, t)
		}
	}
	return all
}

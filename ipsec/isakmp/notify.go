package isakmp

import (
	"encoding/binary"
	"encoding/hex"
)

// Cookie is an ISAKMP cookie, CKY-I or CKY-R (RFC 2408 §2.5.3).
type Cookie [8]byte

func (c Cookie) String() string { return hex.EncodeToString(c[:]) }

// ISAKMPSPI is the SPI that names an ISAKMP SA in Notify and Delete payloads:
// CKY-I | CKY-R (RFC 2408 §3.14, §3.15; RFC 3706 §5 for DPD).
func ISAKMPSPI(ckyI, ckyR Cookie) []byte {
	return append(ckyI[:len(ckyI):len(ckyI)], ckyR[:]...)
}

// Notify is the Notification payload (RFC 2408 §3.14).
type Notify struct {
	received
	DOI        DOI
	Protocol   ProtocolID
	NotifyType NotifyType
	SPI        []byte
	Data       []byte
}

const notifyFixedLen = 8

func (*Notify) Type() PayloadType { return PayloadNotify }
func (p *Notify) Body() []byte    { return bodyOf(p) }

func (p *Notify) appendBody(b []byte) ([]byte, error) {
	if len(p.SPI) > 255 {
		return nil, encodeError("notify SPI of %d bytes", len(p.SPI))
	}
	b = binary.BigEndian.AppendUint32(b, uint32(p.DOI))
	b = append(b, byte(p.Protocol), byte(len(p.SPI)))
	b = binary.BigEndian.AppendUint16(b, uint16(p.NotifyType))
	return append(append(b, p.SPI...), p.Data...), nil
}

func (p *Notify) decodeBody(body []byte, off int) error {
	if err := checkMin(PayloadNotify, body, notifyFixedLen, off); err != nil {
		return err
	}
	p.DOI = DOI(binary.BigEndian.Uint32(body))
	p.Protocol = ProtocolID(body[4])
	spiSize := int(body[5])
	p.NotifyType = NotifyType(binary.BigEndian.Uint16(body[6:]))
	if len(body) < notifyFixedLen+spiSize {
		return malformed(PayloadNotify, off, "SPI size %d overruns the payload (%d bytes left)", spiSize, len(body)-notifyFixedLen)
	}
	p.SPI = body[notifyFixedLen : notifyFixedLen+spiSize : notifyFixedLen+spiSize]
	p.Data = body[notifyFixedLen+spiSize:]
	return nil
}

// NewDPD returns an R-U-THERE or R-U-THERE-ACK notification (RFC 3706 §5):
// protocol ISAKMP, SPI CKY-I|CKY-R, and the 32-bit sequence number as data.
func NewDPD(t NotifyType, ckyI, ckyR Cookie, seq uint32) *Notify {
	return &Notify{
		DOI: DOIIPsec, Protocol: ProtocolISAKMP, NotifyType: t,
		SPI: ISAKMPSPI(ckyI, ckyR), Data: binary.BigEndian.AppendUint32(nil, seq),
	}
}

// DPDSequence returns the sequence number of an R-U-THERE or R-U-THERE-ACK.
func (p *Notify) DPDSequence() (uint32, bool) {
	if (p.NotifyType != NotifyRUThere && p.NotifyType != NotifyRUThereAck) || len(p.Data) != 4 {
		return 0, false
	}
	return binary.BigEndian.Uint32(p.Data), true
}

// NewInitialContact returns the INITIAL-CONTACT notification (RFC 2407
// §4.6.3.3) for the ISAKMP SA named by the cookies.
func NewInitialContact(ckyI, ckyR Cookie) *Notify {
	return &Notify{DOI: DOIIPsec, Protocol: ProtocolISAKMP, NotifyType: NotifyInitialContact, SPI: ISAKMPSPI(ckyI, ckyR)}
}

// NewResponderLifetime returns a RESPONDER-LIFETIME notification (RFC 2407
// §4.6.3.1) for the SA with the given protocol and SPI. For an IPsec SA the
// attributes are IPsec DOI ones (IPsecAttributes{LifeSeconds: ...}.Attributes()).
func NewResponderLifetime(proto ProtocolID, spi []byte, attrs []Attribute) (*Notify, error) {
	data, err := appendAttributes(nil, attrs)
	if err != nil {
		return nil, err
	}
	return &Notify{DOI: DOIIPsec, Protocol: proto, NotifyType: NotifyResponderLifetime, SPI: spi, Data: data}, nil
}

// Attributes decodes the notification data as a data attribute list, as
// RESPONDER-LIFETIME carries one.
func (p *Notify) Attributes() ([]Attribute, error) {
	return decodeAttributes(p.Data, PayloadNotify, 0)
}

package isakmp

import (
	"encoding/binary"
	"math"
)

// Delete is the Delete payload (RFC 2408 §3.15). All SPIs have SPISize bytes:
// 16 (CKY-I|CKY-R) for an ISAKMP SA, 4 for AH and ESP.
type Delete struct {
	received
	DOI      DOI
	Protocol ProtocolID
	SPISize  uint8
	SPIs     [][]byte
}

const deleteFixedLen = 8

func (*Delete) Type() PayloadType { return PayloadDelete }
func (p *Delete) Body() []byte    { return bodyOf(p) }

func (p *Delete) appendBody(b []byte) ([]byte, error) {
	if len(p.SPIs) > math.MaxUint16 {
		return nil, encodeError("delete payload with %d SPIs", len(p.SPIs))
	}
	b = binary.BigEndian.AppendUint32(b, uint32(p.DOI))
	b = append(b, byte(p.Protocol), p.SPISize)
	b = binary.BigEndian.AppendUint16(b, uint16(len(p.SPIs)))
	for _, spi := range p.SPIs {
		if len(spi) != int(p.SPISize) {
			return nil, encodeError("delete SPI of %d bytes in a payload of %d-byte SPIs", len(spi), p.SPISize)
		}
		b = append(b, spi...)
	}
	return b, nil
}

func (p *Delete) decodeBody(body []byte, off int) error {
	if err := checkMin(PayloadDelete, body, deleteFixedLen, off); err != nil {
		return err
	}
	p.DOI = DOI(binary.BigEndian.Uint32(body))
	p.Protocol = ProtocolID(body[4])
	p.SPISize = body[5]
	count := int(binary.BigEndian.Uint16(body[6:]))
	rest := body[deleteFixedLen:]
	if p.SPISize == 0 && count != 0 {
		return newError(NotifyInvalidSPI, PayloadDelete, off, "%d SPIs of size 0", count)
	}
	if len(rest) != count*int(p.SPISize) {
		return malformed(PayloadDelete, off, "%d SPIs of %d bytes need %d bytes, the payload holds %d", count, p.SPISize, count*int(p.SPISize), len(rest))
	}
	p.SPIs = make([][]byte, count)
	for i := range p.SPIs {
		n := int(p.SPISize)
		p.SPIs[i] = rest[i*n : (i+1)*n : (i+1)*n]
	}
	return nil
}

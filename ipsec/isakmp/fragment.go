package isakmp

import "encoding/binary"

// Fragment is the IKEv1 fragmentation payload (type 132) introduced by Cisco
// and implemented by strongSwan, racoon and Windows: a whole ISAKMP message is
// cut into fragments carried by otherwise empty messages. Reassembly is the
// exchange layer's job.
type Fragment struct {
	received
	ID     uint16 // the same for all fragments of one message
	Number uint8  // 1-based
	Last   bool
	Data   []byte
}

const (
	fragmentFixedLen = 4
	fragmentLastFlag = 0x01
)

func (*Fragment) Type() PayloadType { return PayloadFragment }
func (p *Fragment) Body() []byte    { return bodyOf(p) }

func (p *Fragment) appendBody(b []byte) ([]byte, error) {
	b = binary.BigEndian.AppendUint16(b, p.ID)
	flags := byte(0)
	if p.Last {
		flags = fragmentLastFlag
	}
	return append(append(b, p.Number, flags), p.Data...), nil
}

func (p *Fragment) decodeBody(body []byte, off int) error {
	if err := checkMin(PayloadFragment, body, fragmentFixedLen, off); err != nil {
		return err
	}
	p.ID, p.Number = binary.BigEndian.Uint16(body), body[2]
	p.Last = body[3]&fragmentLastFlag != 0
	p.Data = body[fragmentFixedLen:]
	return nil
}

package ike

import (
	"encoding/binary"
	"testing"

	"github.com/ipseclab/ipseclab/ipsec/isakmp"
)

// FuzzModeConfigAttributes decodes an attribute payload body of any content
// (RFC 2408 attributes, draft-dukes-ike-mode-cfg) and reads it as a client
// reads the gateway's Mode Config answer: the decoder refuses what is
// malformed, and what it accepts yields either no lease or a lease whose
// address and networks are IPv4 prefixes, never a panic.
func FuzzModeConfigAttributes(f *testing.F) {
	const maxBody = 512
	good := &isakmp.ConfigAttributes{CfgType: isakmp.CfgReply, Identifier: 7, Attributes: []isakmp.Attribute{
		isakmp.Variable(isakmp.CfgInternalIP4Address, []byte{10, 9, 0, 1}),
		isakmp.Variable(isakmp.CfgInternalIP4Netmask, []byte{255, 255, 255, 255}),
		isakmp.Variable(isakmp.CfgInternalIP4DNS, []byte{10, 2, 0, 53}),
		isakmp.Variable(isakmp.UnitySplitInclude, append([]byte{10, 2, 0, 0, 255, 255, 255, 0}, make([]byte, 6)...)),
		isakmp.Variable(isakmp.UnityBanner, []byte("welcome")),
		isakmp.Basic(isakmp.XAuthStatus, 1),
	}}
	msg, err := (&isakmp.Message{Header: isakmp.Header{Exchange: isakmp.ExchangeTransaction, MessageID: 1}, Payloads: []isakmp.Payload{good}}).Encode()
	if err != nil {
		f.Fatal(err)
	}
	header := msg[:isakmp.HeaderLen]
	body := msg[isakmp.HeaderLen+4:]
	f.Add(body)
	f.Add(body[:len(body)/2])
	f.Add([]byte{2, 0, 0, 1})
	f.Fuzz(func(t *testing.T, body []byte) {
		if len(body) > maxBody {
			return
		}
		// A Transaction message whose one payload has this body.
		b := append([]byte(nil), header...)
		b = append(b, 0, 0)
		b = binary.BigEndian.AppendUint16(b, uint16(4+len(body)))
		b = append(b, body...)
		binary.BigEndian.PutUint32(b[24:], uint32(len(b)))
		m, err := isakmp.Decode(b)
		if err != nil {
			return
		}
		attrs := isakmp.First[*isakmp.ConfigAttributes](m)
		if attrs == nil {
			t.Fatalf("no attribute payload in %d bytes that decoded", len(b))
		}
		_ = hasXAuthAttributes(attrs)
		_ = attrString(attrs, isakmp.XAuthUserName)
		_, _ = attrUint(attrs, isakmp.XAuthStatus)
		l, ok := parseLease(attrs)
		if !ok {
			return
		}
		if !l.Addr.Addr().Is4() || l.Addr.Bits() != 32 {
			t.Fatalf("lease address %v", l.Addr)
		}
		for _, n := range l.SplitInclude {
			if !n.IsValid() || !n.Addr().Is4() {
				t.Fatalf("split network %v", n)
			}
		}
	})
}

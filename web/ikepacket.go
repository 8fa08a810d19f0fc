package web

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/ipseclab/ipseclab/events"
	"github.com/ipseclab/ipseclab/ipsec/isakmp"
)

// decodeIKE builds the tree of an IKE message from its plaintext: the
// ISAKMP header, then each payload with its fields, SA payloads down to
// their transforms' attributes. The plaintext is decoded by the stack's own
// decoder (isakmp.Decode); a message it refuses is shown as far as its
// header goes, with the reason.
func decodeIKE(e *events.Event) []*Layer {
	plain := e.IKE.Plain
	var layers []*Layer
	if e.IKE.Local != "" || e.IKE.Remote != "" {
		udp := newLayer("UDP")
		src, dst := e.IKE.Local, e.IKE.Remote
		if e.IKE.Dir == events.Received {
			src, dst = dst, src
		}
		udp.add("Source", "%s", src)
		udp.add("Destination", "%s", dst)
		if strings.HasSuffix(src, ":4500") || strings.HasSuffix(dst, ":4500") {
			udp.add("Non-ESP marker", "00000000 (IKE on port 4500, told apart from ESP in UDP)")
		}
		layers = append(layers, udp)
	}
	hdr := newLayer("ISAKMP header")
	layers = append(layers, hdr)
	h, err := isakmp.DecodeHeader(plain)
	if err != nil {
		hdr.add("Error", "%v", err)
		return layers
	}
	hdr.add("Initiator cookie", "0x%s", h.InitiatorCookie)
	hdr.add("Responder cookie", "0x%s", h.ResponderCookie)
	hdr.add("Next payload", "%s (%d)", h.NextPayload, uint8(h.NextPayload))
	hdr.add("Version", "%d.%d", h.Version>>4, h.Version&0xf)
	hdr.add("Exchange type", "%s (%d)", h.Exchange, uint8(h.Exchange))
	flags := h.Flags
	if e.IKE.Encrypted {
		flags |= isakmp.FlagEncryption
	}
	fs := flags.String()
	if fs == "" {
		fs = "none"
	}
	if e.IKE.Encrypted {
		fs += " (Encryption: the payloads travelled encrypted; shown decrypted)"
	}
	hdr.add("Flags", "%s", fs)
	hdr.add("Message ID", "0x%08x", h.MessageID)
	if e.IKE.Size > 0 {
		hdr.add("Length", "%d bytes on the wire, %d decrypted", e.IKE.Size, len(plain))
	} else {
		hdr.add("Length", "%d", h.Length)
	}
	m, err := isakmp.Decode(plain)
	if err != nil {
		// Public-key encryption hides ID bodies (RFC 2409 §5.2, §5.3).
		if m2, err2 := isakmp.DecodeSealed(plain); err2 == nil {
			m, err = m2, nil
		}
	}
	if err != nil {
		hdr.add("Error", "%v", err)
		return layers
	}
	for _, p := range m.Payloads {
		hdr.Children = append(hdr.Children, payloadLayer(p))
	}
	return layers
}

func hexOf(b []byte) string {
	if len(b) == 0 {
		return "(empty)"
	}
	return "0x" + hex.EncodeToString(b)
}

// payloadLayer describes one payload.
func payloadLayer(p isakmp.Payload) *Layer {
	l := newLayer(payloadTitle(p))
	switch p := p.(type) {
	case *isakmp.SA:
		l.add("Domain of interpretation", "%s", p.DOI)
		l.add("Situation", "0x%08x", uint32(p.Situation))
		for i := range p.Proposals {
			l.Children = append(l.Children, proposalLayer(&p.Proposals[i]))
		}
	case *isakmp.KE:
		l.add("Key exchange data", "%s", hexOf(p.Data))
		l.add("Length", "%d bytes (%d bits)", len(p.Data), 8*len(p.Data))
	case *isakmp.Nonce:
		l.add("Nonce data", "%s", hexOf(p.Data))
		l.add("Length", "%d bytes", len(p.Data))
	case *isakmp.ID:
		l.add("ID type", "%s (%d)", p.IDType, uint8(p.IDType))
		l.add("Protocol ID", "%s", ipProto(p.Protocol))
		l.add("Port", "%d", p.Port)
		l.add("Identification", "%s", idValue(p))
	case *isakmp.Hash:
		l.add("Hash data", "%s", hexOf(p.Data))
		l.add("Length", "%d bytes", len(p.Data))
	case *isakmp.Signature:
		l.add("Signature data", "%s", hexOf(p.Data))
		l.add("Length", "%d bytes", len(p.Data))
	case *isakmp.Cert:
		l.add("Certificate encoding", "%s (%d)", p.Encoding, uint8(p.Encoding))
		if c, err := x509.ParseCertificate(p.Data); err == nil {
			l.add("Subject", "%s", c.Subject)
			l.add("Issuer", "%s", c.Issuer)
			l.add("Serial number", "%s", c.SerialNumber)
			l.add("Valid", "%s to %s", c.NotBefore.UTC().Format("2006-01-02"), c.NotAfter.UTC().Format("2006-01-02"))
			if len(c.DNSNames) > 0 {
				l.add("DNS names", "%s", strings.Join(c.DNSNames, ", "))
			}
		}
		l.add("Certificate data", "%d bytes", len(p.Data))
	case *isakmp.CertRequest:
		l.add("Certificate type", "%s (%d)", p.Encoding, uint8(p.Encoding))
		if len(p.Authority) == 0 {
			l.add("Certificate authority", "(any)")
		} else {
			l.add("Certificate authority", "%s", dnOf(p.Authority))
		}
	case *isakmp.Notify:
		l.add("Domain of interpretation", "%s", p.DOI)
		l.add("Protocol ID", "%s", p.Protocol)
		l.add("Notify message type", "%s (%d)", p.NotifyType, uint16(p.NotifyType))
		if len(p.SPI) > 0 {
			l.add("SPI", "%s", hexOf(p.SPI))
		}
		if seq, ok := p.DPDSequence(); ok {
			l.add("Sequence number", "%d", seq)
		} else if attrs, err := p.Attributes(); err == nil && len(attrs) > 0 && p.NotifyType == isakmp.NotifyResponderLifetime {
			for _, a := range attrs {
				l.add(isakmp.IPsecAttributeName(a.Type), "%s", attrValue(isakmp.ProtocolESP, a))
			}
		} else if len(p.Data) > 0 {
			l.add("Notification data", "%s", hexOf(p.Data))
		}
	case *isakmp.Delete:
		l.add("Domain of interpretation", "%s", p.DOI)
		l.add("Protocol ID", "%s", p.Protocol)
		l.add("SPI size", "%d", p.SPISize)
		l.add("Number of SPIs", "%d", len(p.SPIs))
		for i, s := range p.SPIs {
			l.add(fmt.Sprintf("SPI %d", i+1), "%s", hexOf(s))
		}
	case *isakmp.VendorID:
		name := p.Known().String()
		if p.Known() == isakmp.VendorUnknown {
			name = "not one ipseclab knows"
		}
		l.add("Vendor ID", "%s", hexOf(p.Data))
		l.add("Means", "%s", name)
	case *isakmp.NATD:
		l.add("Hash of address and port", "%s", hexOf(p.Hash))
		if p.Draft {
			l.add("Format", "draft-ietf-ipsec-nat-t-ike-02/03 (payload 130)")
		}
	case *isakmp.NATOA:
		l.add("Original address", "%s", p.Addr)
	case *isakmp.ConfigAttributes:
		l.add("Type", "%s (%d)", p.CfgType, uint8(p.CfgType))
		l.add("Identifier", "%d", p.Identifier)
		for _, a := range p.Attributes {
			l.add(isakmp.ConfigAttributeName(a.Type), "%s", cfgValue(a))
		}
	case *isakmp.Fragment:
		l.add("Fragment ID", "%d", p.ID)
		l.add("Fragment number", "%d", p.Number)
		l.add("Last fragment", "%t", p.Last)
		l.add("Data", "%d bytes", len(p.Data))
	case *isakmp.Unknown:
		l.add("Data", "%s", hexOf(p.Data))
	default:
		l.add("Body", "%s", hexOf(p.Body()))
	}
	return l
}

func payloadTitle(p isakmp.Payload) string {
	switch p := p.(type) {
	case *isakmp.Notify:
		return "Notification: " + p.NotifyType.String()
	case *isakmp.VendorID:
		if k := p.Known(); k != isakmp.VendorUnknown {
			return "Vendor ID: " + k.String()
		}
	case *isakmp.ConfigAttributes:
		return "Attributes: " + p.CfgType.String()
	}
	t := p.Type()
	return fmt.Sprintf("%s (%s)", t.String(), t.Abbrev())
}

func proposalLayer(p *isakmp.Proposal) *Layer {
	l := newLayer(fmt.Sprintf("Proposal #%d: %s", p.Number, p.Protocol))
	l.add("Protocol ID", "%s", p.Protocol)
	if len(p.SPI) > 0 {
		l.add("SPI", "%s", hexOf(p.SPI))
	}
	l.add("Transforms", "%d", len(p.Transforms))
	for _, t := range p.Transforms {
		tl := l.child(fmt.Sprintf("Transform #%d: %s", t.Number, isakmp.TransformName(p.Protocol, t.ID)))
		for _, a := range t.Attributes {
			name := isakmp.IPsecAttributeName(a.Type)
			if p.Protocol == isakmp.ProtocolISAKMP {
				name = isakmp.OakleyAttributeName(a.Type)
			}
			tl.add(name, "%s", attrValue(p.Protocol, a))
		}
	}
	return l
}

// attrValue names an SA attribute's value where the registry names it.
func attrValue(proto isakmp.ProtocolID, a isakmp.Attribute) string {
	v, ok := a.Uint()
	if !ok {
		return hexOf(a.Value)
	}
	u := uint16(v)
	if proto == isakmp.ProtocolISAKMP {
		switch a.Type {
		case isakmp.OakleyEncryptionAlgorithm:
			return isakmp.EncryptionAlgorithm(u).String()
		case isakmp.OakleyHashAlgorithm:
			return isakmp.HashAlgorithm(u).String()
		case isakmp.OakleyAuthMethod:
			return isakmp.AuthMethod(u).String()
		case isakmp.OakleyGroupDescription:
			return isakmp.GroupDescription(u).String()
		case isakmp.OakleyLifeType:
			return lifeType(u)
		}
		return fmt.Sprint(v)
	}
	switch a.Type {
	case isakmp.IPsecSALifeType:
		return lifeType(u)
	case isakmp.IPsecGroupDescription:
		return isakmp.GroupDescription(u).String()
	case isakmp.IPsecEncapsulationMode:
		return isakmp.EncapsulationMode(u).String()
	case isakmp.IPsecAuthAlgorithm:
		return isakmp.AuthAlgorithm(u).String()
	}
	return fmt.Sprint(v)
}

func lifeType(v uint16) string {
	switch isakmp.LifeType(v) {
	case isakmp.LifeSeconds:
		return "Seconds"
	case isakmp.LifeKilobytes:
		return "Kilobytes"
	}
	return fmt.Sprintf("Unknown (%d)", v)
}

// cfgValue shows a Mode Config or XAUTH attribute's value: addresses as
// addresses, text as text, numbers as numbers.
func cfgValue(a isakmp.Attribute) string {
	if a.TV {
		v, _ := a.Uint()
		switch a.Type {
		case isakmp.XAuthStatus:
			if v == 1 {
				return "1 (OK)"
			}
			return fmt.Sprintf("%d (FAIL)", v)
		case isakmp.XAuthType:
			if v == 0 {
				return "0 (Generic)"
			}
		}
		return fmt.Sprint(v)
	}
	b := a.Value
	switch a.Type {
	case isakmp.CfgInternalIP4Address, isakmp.CfgInternalIP4Netmask, isakmp.CfgInternalIP4DNS, isakmp.CfgInternalIP4NBNS:
		if len(b) == 4 {
			return fmt.Sprintf("%d.%d.%d.%d", b[0], b[1], b[2], b[3])
		}
	case isakmp.CfgInternalIP4Subnet:
		if len(b) == 8 {
			return fmt.Sprintf("%d.%d.%d.%d/%d.%d.%d.%d", b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7])
		}
	case isakmp.UnitySplitInclude, isakmp.UnitySplitExclude:
		var nets []string
		for len(b) >= 14 {
			nets = append(nets, fmt.Sprintf("%d.%d.%d.%d/%d.%d.%d.%d", b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]))
			b = b[14:]
		}
		if len(nets) > 0 {
			return strings.Join(nets, ", ")
		}
		b = a.Value
	case isakmp.CfgSupportedAttributes:
		var names []string
		for i := 0; i+2 <= len(b); i += 2 {
			names = append(names, isakmp.ConfigAttributeName(isakmp.AttributeType(binary.BigEndian.Uint16(b[i:]))))
		}
		return strings.Join(names, ", ")
	}
	if len(b) == 0 {
		return "(empty)"
	}
	if printable(b) {
		return fmt.Sprintf("%q", b)
	}
	return hexOf(b)
}

func printable(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c > 0x7e {
			return false
		}
	}
	return true
}

// idValue shows an identification: its string form, or for a distinguished
// name the name.
func idValue(p *isakmp.ID) string {
	if p.IDType == isakmp.IDDERASN1DN {
		return dnOf(p.Data)
	}
	if s := p.String(); s != "" {
		return s
	}
	return hexOf(p.Data)
}

// dnOf renders a DER distinguished name, or its bytes when it is not one.
func dnOf(der []byte) string {
	var seq pkix.RDNSequence
	if rest, err := asn1.Unmarshal(der, &seq); err == nil && len(rest) == 0 {
		var n pkix.Name
		n.FillFromRDNSequence(&seq)
		return n.String()
	}
	return hexOf(der)
}

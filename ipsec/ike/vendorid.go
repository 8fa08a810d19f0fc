package ike

import (
	"github.com/ipseclab/ipseclab/ipsec/isakmp"
)

// Vendor IDs (RFC 2408 §3.16) are how IKEv1 peers announce extensions: the
// NAT traversal versions (RFC 3947 §3.1) and dead peer detection (RFC 3706
// §4). An extension is used only when both sides announced it, so each side
// reads the other's list before adding the extension's payloads.

// peerFeatures is what the peer's vendor IDs announced.
type peerFeatures struct {
	natt      bool // NAT traversal, in the version below
	nattDraft bool // draft-ietf-ipsec-nat-t-ike-02/03: payload types 130/131, encapsulation 61443/61444
	dpd       bool
	vendors   []string // every vendor ID, named when known
}

// ourVendorIDs are the vendor IDs of MM1/AM1: NAT-T in the RFC version and
// the drafts that peers still look for (as strongSwan sends them), and DPD.
func ourVendorIDs(c *Connection) []isakmp.Payload {
	var v []isakmp.Payload
	if !c.NoNATT {
		for _, k := range []isakmp.KnownVendor{isakmp.VendorNATTRFC3947, isakmp.VendorNATTDraft03, isakmp.VendorNATTDraft02, isakmp.VendorNATTDraft02N} {
			v = append(v, isakmp.NewVendorID(k))
		}
	}
	return append(v, isakmp.NewVendorID(isakmp.VendorDPD))
}

// responderVendorIDs answer the initiator's: DPD, and the one NAT-T version
// we chose from what it offered.
func (e *Engine) responderVendorIDs(sa *isakmpSA) []isakmp.Payload {
	v := []isakmp.Payload{isakmp.NewVendorID(isakmp.VendorDPD)}
	switch {
	case !sa.peer.natt:
	case sa.peer.nattDraft:
		v = append(v, isakmp.NewVendorID(isakmp.VendorNATTDraft02))
	default:
		v = append(v, isakmp.NewVendorID(isakmp.VendorNATTRFC3947))
	}
	return v
}

// readVendorIDs records the peer's extensions, preferring RFC 3947 NAT-T to
// the drafts.
func (e *Engine) readVendorIDs(sa *isakmpSA, m *isakmp.Message) {
	for _, v := range isakmp.All[*isakmp.VendorID](m) {
		k := v.Known()
		if k == isakmp.VendorUnknown {
			sa.peer.vendors = append(sa.peer.vendors, "unknown "+hexPrefix(v.Data))
			continue
		}
		sa.peer.vendors = append(sa.peer.vendors, k.String())
		if supported, draft := k.NATT(); supported && !sa.conn.cfg.NoNATT {
			if !draft || !sa.peer.natt {
				sa.peer.nattDraft = draft
			}
			sa.peer.natt = true
		}
		if k == isakmp.VendorDPD {
			sa.peer.dpd = true
		}
	}
}

func hexPrefix(b []byte) string {
	const max = 8
	const digits = "0123456789abcdef"
	var s []byte
	for i, c := range b {
		if i == max {
			s = append(s, "..."...)
			break
		}
		s = append(s, digits[c>>4], digits[c&15])
	}
	return string(s)
}

package node

import (
	"net/netip"

	"github.com/ipseclab/ipseclab/topology"
)

// ConnSide is a connection seen from one of its two nodes: which end it is,
// who the peer is, and the traffic selectors turned to this node's point of
// view (a lab file writes them from the initiator's).
type ConnSide struct {
	Conn              *topology.IPsecConn
	Initiator         bool
	Local, Remote     topology.Peer
	LocalTS, RemoteTS []netip.Prefix
	PSK               string // this side's secret
}

// SidesOf returns the connections a node takes part in, in name order.
func SidesOf(lab *topology.Lab, node string) []ConnSide {
	var out []ConnSide
	for _, name := range lab.ConnNames() {
		c := lab.IPsec[name]
		var s ConnSide
		switch node {
		case c.Initiator.Node:
			s = ConnSide{Conn: c, Initiator: true, Local: c.Initiator, Remote: c.Responder,
				LocalTS: prefixes(c.Child.LocalTS), RemoteTS: prefixes(c.Child.RemoteTS)}
		case c.Responder.Node:
			s = ConnSide{Conn: c, Local: c.Responder, Remote: c.Initiator,
				LocalTS: prefixes(c.Child.RemoteTS), RemoteTS: prefixes(c.Child.LocalTS)}
		default:
			continue
		}
		s.PSK = c.Auth.Secret
		if s.Local.PSK != "" {
			s.PSK = s.Local.PSK
		}
		out = append(out, s)
	}
	return out
}

func prefixes(l topology.PrefixList) []netip.Prefix {
	out := make([]netip.Prefix, len(l))
	for i, p := range l {
		out[i] = p.Prefix
	}
	return out
}

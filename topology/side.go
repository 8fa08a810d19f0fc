package topology

import "net/netip"

// Side is a connection seen from one of its two nodes: which end it is, who
// the peer is, and the traffic selectors turned to this node's point of view
// (a lab file writes them from the initiator's). It is what an IPsec
// implementation on that node is configured from, in a lab and in a daemon.
type Side struct {
	Conn              *IPsecConn
	Initiator         bool
	Local, Remote     Peer
	LocalTS, RemoteTS []netip.Prefix
	PSK               string // this side's secret
}

// SidesOf returns the connections a node takes part in, in name order.
func (l *Lab) SidesOf(node string) []Side {
	var out []Side
	for _, name := range l.ConnNames() {
		c := l.IPsec[name]
		switch node {
		case c.Initiator.Node:
			out = append(out, sideOf(c, true))
		case c.Responder.Node:
			out = append(out, sideOf(c, false))
		}
	}
	return out
}

// sideOf is c from its initiator's or its responder's node.
func sideOf(c *IPsecConn, initiator bool) Side {
	s := Side{Conn: c, Initiator: initiator, Local: c.Initiator, Remote: c.Responder,
		LocalTS: c.Child.LocalTS.prefixes(), RemoteTS: c.Child.RemoteTS.prefixes()}
	if !initiator {
		s.Local, s.Remote = c.Responder, c.Initiator
		s.LocalTS, s.RemoteTS = s.RemoteTS, s.LocalTS
	}
	s.PSK = c.Auth.Secret
	if s.Local.PSK != "" {
		s.PSK = s.Local.PSK
	}
	return s
}

func (l PrefixList) prefixes() []netip.Prefix {
	out := make([]netip.Prefix, len(l))
	for i, p := range l {
		out[i] = p.Prefix
	}
	return out
}

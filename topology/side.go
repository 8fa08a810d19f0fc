package topology

import (
	"crypto/x509"
	"net/netip"

	"github.com/ipseclab/ipseclab/ipsec/pki"
)

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

	Auth    AuthMethod // phase 1 authentication
	KeyType KeyType    // the lab PKI's key type for this connection

	// Certificate authentication (every Auth but psk), once the lab PKI has
	// filled what the lab file leaves to it (Lab.UseLabPKI): this side's
	// chain and key, the CAs the peer's chain must lead to, and the peer's
	// certificate where it is known beforehand (peer-cert, else the one the
	// peer node uses in this lab), which public-key encryption needs.
	Cred     *pki.Credential
	CACerts  []*x509.Certificate
	PeerCert *x509.Certificate
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
	s.Auth, s.KeyType = c.Auth.Method, c.KeyType
	s.PSK = c.Auth.Secret
	if s.Local.PSK != "" {
		s.PSK = s.Local.PSK
	}
	if lc := s.Local.Certs; lc != nil {
		s.Cred, s.CACerts, s.PeerCert = lc.Own, lc.CAs, lc.PeerCert
	}
	if rc := s.Remote.Certs; s.PeerCert == nil && rc != nil && rc.Own != nil && len(rc.Own.Chain) > 0 {
		s.PeerCert = rc.Own.Chain[0]
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

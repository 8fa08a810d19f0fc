package topology

import (
	"crypto/x509"
	"net/netip"
	"slices"
	"time"

	"github.com/ipseclab/ipseclab/ipsec/pki"
	"github.com/ipseclab/ipseclab/ipsec/proposal"
)

// Side is a connection seen from one of its nodes: which end it is, who the
// peer is, and the traffic selectors turned to this node's point of view
// (a lab file writes them from the initiator's). It is what an IPsec
// implementation on that node is configured from, in a lab and in a daemon.
//
// A connection with N initiators (remote access) has N+1 sides: one per
// client, whose Remote is the gateway, and the gateway's, which serves them
// all as one connection.
type Side struct {
	Conn              *IPsecConn
	Initiator         bool
	Local, Remote     Peer
	LocalTS, RemoteTS []netip.Prefix
	PSK               string // this side's secret

	// The connection's settings on this side: its own where it has them
	// (Peer.IKE, Peer.Child), else the connection's.
	IKEProposals, ChildProposals []proposal.Proposal
	IKELifetime, ChildLifetime   time.Duration
	LifeBytes                    int64

	Auth    AuthMethod // phase 1 authentication
	KeyType KeyType    // the lab PKI's key type for this connection

	// Certificate authentication (every Auth but psk), once the lab PKI has
	// filled what the lab file leaves to it (Lab.UseLabPKI): this side's
	// chain and key, the CAs the peer's chain must lead to, and the peer's
	// certificate where it is known beforehand (peer-cert, else the one the
	// peer node uses in this lab), which public-key encryption needs.
	// A hybrid client has no chain of its own: the CAs check the gateway's.
	Cred     *pki.Credential
	CACerts  []*x509.Certificate
	PeerCert *x509.Certificate

	// Remote access. AnyPeer: this responder serves any peer (remote: any,
	// given or implied): Remote is then the zero Peer, with no address and
	// no identity, and Clients lists the initiators the lab declares. XAuth
	// is this side's XAUTH (the gateway: Users, users-file's included; a
	// client: User and Password), ModeConfig its Mode Config (the gateway:
	// what it lends; a client: only Push, how the gateway hands it over).
	// A client with Mode Config has no LocalTS (its address comes from the
	// pool) and RemoteTS the split-include networks, or 0.0.0.0/0; the
	// gateway the reverse, with RemoteTS the pool.
	AnyPeer bool
	Clients []Peer
	// RemoteFrom is, on the responder of a connection with one initiator,
	// the address that initiator's IKE packets arrive from: its own, or its
	// NAT's. A responder that accepts its peer from any address ranks its
	// connections by it (a Main Mode responder picks the key by address).
	RemoteFrom netip.Addr
	XAuth      *XAuth
	ModeConfig *ModeConfig
}

// ModeConfig is one side's Mode Config (draft-dukes-ike-mode-cfg-02),
// resolved from the responder's settings.
type ModeConfig struct {
	// The gateway:
	Pool          netip.Prefix   // addresses to lend: the network and broadcast excluded
	DNS, NBNS     []netip.Addr   // INTERNAL_IP4_DNS, INTERNAL_IP4_NBNS
	SplitInclude  []netip.Prefix // Cisco Unity's split include; empty: everything
	Banner        string         // Cisco Unity's banner
	DefaultDomain string         // Cisco Unity's default domain
	// Both:
	Push bool // the gateway SETs the address (push); otherwise the client REQUESTs it (pull)
}

// everything is the selector of all IPv4 traffic.
var everything = netip.MustParsePrefix("0.0.0.0/0")

// SidesOf returns the connections a node takes part in, in name order.
func (l *Lab) SidesOf(node string) []Side {
	var out []Side
	for _, name := range l.ConnNames() {
		c := l.IPsec[name]
		if p := c.ClientOf(node); p != nil {
			out = append(out, sideOf(c, p))
		} else if c.Responder.Node == node {
			s := sideOf(c, nil)
			if !s.AnyPeer {
				s.RemoteFrom, _ = l.ikeSource(c.Clients()[0], &c.Responder)
			}
			out = append(out, s)
		}
	}
	return out
}

// sideOf is c from one of its initiators (client), or from its responder
// (client nil).
func sideOf(c *IPsecConn, client *Peer) Side {
	initiator := client != nil
	s := Side{Conn: c, Initiator: initiator, LocalTS: c.Child.LocalTS.prefixes(), RemoteTS: c.Child.RemoteTS.prefixes()}
	if initiator {
		s.Local, s.Remote = *client, c.Responder
	} else {
		s.Local = c.Responder
		s.LocalTS, s.RemoteTS = s.RemoteTS, s.LocalTS
		if c.AnyPeer() {
			s.AnyPeer = true
			for _, p := range c.Clients() {
				s.Clients = append(s.Clients, *p)
			}
		} else {
			s.Remote = *c.Clients()[0]
		}
	}
	s.sideDefaults(c)
	s.ownSettings()
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
	if x := s.Local.XAuth; x != nil {
		s.XAuth = &XAuth{Users: x.Users, UsersFile: x.UsersFile, User: x.User, Password: x.Password}
	}
	if r := &c.Responder; c.ModeConfig() {
		var split []netip.Prefix
		if len(r.SplitInclude) > 0 {
			split = r.SplitInclude.prefixes()
		}
		tunnel := split
		if len(tunnel) == 0 {
			tunnel = []netip.Prefix{everything}
		}
		mc := &ModeConfig{Push: r.ModeCfg == ModeCfgPush}
		if initiator {
			s.LocalTS, s.RemoteTS = nil, tunnel
		} else {
			mc.Pool, mc.SplitInclude, mc.Banner, mc.DefaultDomain = r.Pool.Prefix, split, r.Banner, r.DefaultDomain
			mc.DNS, mc.NBNS = addrs(r.DNS), addrs(r.NBNS)
			s.LocalTS, s.RemoteTS = slices.Clone(tunnel), []netip.Prefix{r.Pool.Prefix}
		}
		s.ModeConfig = mc
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

func addrs(l []Addr) []netip.Addr {
	if len(l) == 0 {
		return nil
	}
	out := make([]netip.Addr, len(l))
	for i, a := range l {
		out[i] = a.Addr
	}
	return out
}

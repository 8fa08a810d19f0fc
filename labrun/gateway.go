package labrun

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"time"

	"github.com/ipseclab/ipseclab/ipsec/esp"
	"github.com/ipseclab/ipseclab/ipsec/ike"
	"github.com/ipseclab/ipseclab/ipsec/stack"
	"github.com/ipseclab/ipseclab/topology"
)

// gatewayNode is ipseclab's own IKEv1 + ESP/AH stack on a `kind: gateway` node.
type gatewayNode struct {
	name  string
	stack *stack.Stack
}

func startGateway(r *Runtime, name string) (IPsecNode, error) {
	cfg := stack.Config{
		Node:        name,
		Events:      r.Bus,
		Host:        stack.Namespace{Handle: r.Deployment.Nodes[name].Handle},
		PublishKeys: r.publishKeys,
	}
	for _, s := range r.Lab.SidesOf(name) {
		// The runtime starts `start: start` connections once every node of
		// the lab is up (startConnections), as it does charon's.
		cfg.Connections = append(cfg.Connections, IKEConnection(s, ike.StartNone))
	}
	st, err := stack.New(cfg)
	if err != nil {
		return nil, err
	}
	if err := st.Start(); err != nil {
		return nil, err
	}
	return &gatewayNode{name: name, stack: st}, nil
}

// IKEConnection turns one side of a connection into the stack's
// configuration; start is what `start: start` becomes: ike.StartStart where
// the stack itself should initiate, ike.StartNone where its owner will.
func IKEConnection(s topology.Side, start ike.StartAction) ike.Connection {
	c := s.Conn
	conn := ike.Connection{
		Name:       c.Name,
		Role:       ike.Responder,
		Local:      s.Local.Address.Addr,
		LocalID:    s.Local.ID,
		RemoteID:   s.Remote.ID,
		PSK:        s.PSK,
		Proposals:  s.IKEProposals,
		Lifetime:   s.IKELifetime,
		NoReauth:   c.IKE.Reauth == topology.ReauthOff,
		ForceEncap: c.IKE.Encap,
		NoNATT:     c.IKE.NATT.Mode == topology.NATTOff,
		Keepalive:  keepalive(c.IKE.NATT.Keepalive),
		Retransmit: ike.Retransmit{Timeout: c.IKE.Retransmit.Timeout.Duration, Tries: c.IKE.Retransmit.Tries, Base: c.IKE.Retransmit.Base},
		Child: ike.Child{
			Proposals:    s.ChildProposals,
			Lifetime:     s.ChildLifetime,
			LifeBytes:    uint64(s.LifeBytes),
			ReplayWindow: c.Child.ReplayWin,
		},
	}
	if r := c.Child.RandTime; r != nil {
		conn.Child.RandTime = r.Duration
		if r.Duration == 0 {
			conn.Child.RandTime = ike.NoRand
		}
	}
	if r := c.Child.RandBytes; r != nil {
		conn.Child.RandBytes = int64(*r)
		if *r == 0 {
			conn.Child.RandBytes = ike.NoRand
		}
	}
	// Certificates come from the lab PKI or the lab's files. Public-key
	// encryption (RFC 2409 §5.2, §5.3) encrypts to the peer's certificate,
	// which the lab knows beforehand (PeerCert), as the method requires.
	// xauth-psk is a pre-shared key, xauth-pubkey signatures, each with
	// XAUTH after (remoteAccess sets it); a hybrid client has no
	// certificate of its own, only the CAs that the gateway's must lead to.
	method := ike.AuthPSK
	switch s.Auth {
	case topology.AuthPubkey, topology.AuthXAuthPubkey:
		method = ike.AuthPubkey
	case topology.AuthRSAEncryption:
		method = ike.AuthRSAEncryption
	case topology.AuthRSARevised:
		method = ike.AuthRSARevisedEncryption
	case topology.AuthHybrid:
		method = ike.AuthHybrid
	}
	switch {
	case method != ike.AuthPSK && s.Cred != nil:
		conn.Auth = ike.Auth{Method: method, Chain: s.Cred.Chain, Key: s.Cred.Key, CAs: s.CACerts, PeerCert: s.PeerCert}
	case method == ike.AuthHybrid && s.Initiator:
		conn.Auth = ike.Auth{Method: method, CAs: s.CACerts, PeerCert: s.PeerCert}
	}
	remoteAccess(&conn, s)
	if c.IKE.Mode == topology.AggressiveMode {
		conn.Mode = ike.AggressiveMode
	}
	// An initiator knows its responder; a responder accepts its initiator
	// from any address, since NATs may stand between them, but expects it
	// from where the lab sends its packets, to tell its peers apart.
	conn.ExpectedRemote = s.RemoteFrom
	if s.Initiator {
		conn.Role = ike.Initiator
		conn.Remote = s.Remote.Address.Addr
		switch c.Child.Start {
		case topology.StartTrap:
			conn.Child.Start = ike.StartTrap
		case topology.StartAtDeploy:
			conn.Child.Start = start
		}
	}
	if d := c.IKE.DPD; d != nil {
		conn.DPD = ike.DPD{Delay: d.Delay.Duration, Timeout: d.Timeout.Duration, Action: ike.DPDClear}
		if d.Mode == topology.DPDOnDemand {
			conn.DPD.Mode = ike.DPDOnDemand
		}
		switch d.Action {
		case topology.DPDRestart:
			conn.DPD.Action = ike.DPDRestart
		case topology.DPDHold:
			conn.DPD.Action = ike.DPDHold
		}
	}
	if c.Child.Mode == topology.TransportMode {
		conn.Child.Mode = esp.Transport
	} else {
		conn.Child.Mode = esp.Tunnel
	}
	// A transport-mode child's selectors are the IKE endpoints (the lab file
	// may only name them): IKE takes them as each side sees them, the NAT's
	// address in place of a peer behind one.
	if len(s.LocalTS) > 0 && conn.Child.Mode == esp.Tunnel {
		conn.Child.LocalTS = s.LocalTS[0]
	}
	if len(s.RemoteTS) > 0 && conn.Child.Mode == esp.Tunnel {
		conn.Child.RemoteTS = s.RemoteTS[0]
	}
	// With Mode Config, a client's own selector is the address it is lent
	// (none until then), and the gateway's remote one the pool it lends from.
	if s.ModeConfig != nil {
		if s.Initiator {
			conn.Child.LocalTS, conn.Child.RemoteTS = netip.Prefix{}, modeConfigTS(s.RemoteTS)
		} else {
			conn.Child.LocalTS = modeConfigTS(s.LocalTS)
		}
	}
	return conn
}

// remoteAccess maps a side's XAUTH and Mode Config: the gateway gets its
// users and what it lends, a client its credentials and an empty Mode
// Config (it asks, or accepts what the gateway sets). A gateway that serves
// any peer (remote: any) knows neither a peer's address nor its identity.
func remoteAccess(conn *ike.Connection, s topology.Side) {
	if s.AnyPeer {
		conn.Remote, conn.RemoteID = netip.Addr{}, ""
	}
	if x := s.XAuth; x != nil && s.Auth.XAuth() {
		if s.Initiator {
			conn.XAuth = &ike.XAuth{User: x.User, Password: x.Password}
		} else {
			conn.XAuth = &ike.XAuth{Users: maps.Clone(x.Users)}
		}
	}
	if mc := s.ModeConfig; mc != nil {
		if s.Initiator {
			conn.ModeConfig = &ike.ModeConfig{Push: mc.Push} // whether to ask, or to wait to be told
		} else {
			conn.ModeConfig = &ike.ModeConfig{
				Pool: mc.Pool, DNS: slices.Clone(mc.DNS), NBNS: slices.Clone(mc.NBNS), SplitInclude: slices.Clone(mc.SplitInclude),
				Push: mc.Push, Banner: mc.Banner, DefaultDomain: mc.DefaultDomain,
			}
		}
	}
}

// modeConfigTS is a Mode Config side's selector among ts, the split-include
// networks (or 0.0.0.0/0): Quick Mode carries one subnet per side, so with
// several networks the SAs cover everything and the client routes only the
// split-include networks into the tunnel, as vpnc and Cisco's clients do.
func modeConfigTS(ts []netip.Prefix) netip.Prefix {
	if len(ts) == 1 {
		return ts[0]
	}
	return netip.MustParsePrefix("0.0.0.0/0")
}

func (g *gatewayNode) Initiate(ctx context.Context, conn string) error {
	return g.stack.Initiate(ctx, conn)
}

func (g *gatewayNode) Terminate(ctx context.Context, conn string) error {
	return g.stack.Terminate(ctx, conn)
}

func (g *gatewayNode) SAs(context.Context) ([]SAInfo, error) {
	st := g.stack.SAs()
	var out []SAInfo
	for _, s := range st.ISAKMP {
		info := SAInfo{Node: g.name, Impl: "ipseclab", Conn: s.Conn, Type: "isakmp", State: s.State, Role: s.Role,
			Local: s.Local, Remote: s.Remote, SPIIn: s.ICookie, SPIOut: s.RCookie, Proposal: s.Proposal, Encap: s.NATT,
			XAuthUser: s.XAuthUser, VirtualIP: s.VirtualIP}
		if !s.Established.IsZero() {
			info.Age = time.Since(s.Established).Round(time.Second).String()
		}
		out = append(out, info)
	}
	for _, s := range st.IPsec {
		out = append(out, SAInfo{Node: g.name, Impl: "ipseclab", Conn: s.Conn, Type: s.Protocol, State: s.State,
			Local: s.Local, Remote: s.Remote, SPIIn: s.SPIIn, SPIOut: s.SPIOut, Proposal: s.Proposal, Mode: s.Mode, Encap: s.UDPEncap,
			LocalTS: s.LocalTS, RemoteTS: s.RemoteTS, Age: time.Since(s.Installed).Round(time.Second).String(),
			PacketsIn: s.In.Packets, PacketsOut: s.Out.Packets, BytesIn: s.In.Bytes, BytesOut: s.Out.Bytes,
			ReplayDrops: s.In.ReplayDrops, IntegrityFailures: s.In.IntegrityFailures, PolicyDrops: s.In.PolicyDrops + s.Out.PolicyDrops,
			OtherDrops: s.In.OtherDrops + s.Out.OtherDrops, MTU: s.MTU})
	}
	return out, nil
}

// Stats shows whatever the stack counts, group by group, through the JSON
// of stack.Stats: a counter added there shows here with no change.
func (g *gatewayNode) Stats(context.Context) (NodeStats, error) {
	groups, err := CountersOf(g.stack.Stats(), "stack")
	st := NodeStats{Node: g.name, Impl: "ipseclab", Counters: groups}
	if g.stack.DataPlane() == nil {
		st.Note = "the stack is not running (crashed); its counters went with it, and start again from zero when it restarts"
	}
	return st, err
}

func (g *gatewayNode) Crash() error {
	if g.stack.DataPlane() == nil {
		return fmt.Errorf("the IPsec stack of %s has crashed already; restart it first", g.name)
	}
	g.stack.Crash()
	return nil
}

func (g *gatewayNode) Restart(context.Context) error { return g.stack.Restart() }

// Close stops the stack when the lab goes: its peers go too, so it tells
// them nothing, and its namespace's deletion removes its TUN device and
// routes (stack.Release).
func (g *gatewayNode) Close() error { return g.stack.Release() }

// keepalive is the lab file's NAT-T keepalive setting for the engine.
func keepalive(k topology.Keepalive) time.Duration {
	if k.Off {
		return ike.KeepaliveOff
	}
	return k.Interval
}

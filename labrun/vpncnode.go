package labrun

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ipseclab/ipseclab/events"
	"github.com/ipseclab/ipseclab/ipsec/proposal"
	"github.com/ipseclab/ipseclab/topology"
	"github.com/ipseclab/ipseclab/vpnc"
)

// vpncProgram is the vpnc a vpnc node runs; tests point it elsewhere.
var vpncProgram = vpnc.DefaultVPNC

// vpncNode runs vpnc on a `kind: vpnc` node, configured from the ipsec:
// block of the one connection the node initiates (topology allows one). vpnc
// is the connection: Initiate starts it and waits until Mode Config's
// address is on its TUN device, Terminate stops it, which deletes the SAs at
// the gateway.
type vpncNode struct {
	r     *Runtime
	name  string
	netns string
	dir   string

	mu      sync.Mutex
	conns   map[string]*vpncConn
	crashed bool
}

type vpncConn struct {
	name   string
	cfg    vpnc.Config
	err    error // why the lab's connection is not yet a vpnc configuration
	client *vpnc.Client

	// What vpnc reported, for SAs.
	ike, esp string
	natt     bool
}

func startVPNC(r *Runtime, name string) (IPsecNode, error) {
	if _, err := exec.LookPath(vpncProgram); err != nil {
		return nil, fmt.Errorf("%s: %w", vpncProgram, vpnc.ErrNotInstalled)
	}
	n := &vpncNode{r: r, name: name, netns: NetnsPath(NodeNetns(r.Lab.Name, name)),
		dir: filepath.Join(StateDir(r.Lab.Name), "vpnc-"+name), conns: map[string]*vpncConn{}}
	for _, s := range r.Lab.SidesOf(name) {
		if !s.Initiator {
			continue // topology refuses a vpnc responder
		}
		// The lab's validation has the configuration right; an error here
		// is said when the connection is brought up.
		cfg, err := vpncConfig(s)
		n.conns[s.Conn.Name] = &vpncConn{name: s.Conn.Name, cfg: cfg, err: err}
	}
	return n, nil
}

// vpncConfig is what a connection's ipsec: block says to vpnc: the gateway
// is the responder's address, the group name the client's key ID (or the
// connection's name), the group secret the PSK, the XAUTH user and password
// the client's, the groups those of the first proposals vpnc can take
// (topology checked there is one), Hybrid with the CAs that check the
// gateway's certificate. vpnc wants a group secret even in Hybrid mode,
// whose hashes do not use it.
func vpncConfig(s topology.Side) (vpnc.Config, error) {
	c := s.Conn
	cfg := vpnc.Config{
		Gateway:     s.Remote.Address.Addr,
		GroupID:     groupName(s.Local.ID, c.Name),
		GroupSecret: s.PSK,
		PFS:         "nopfs",
	}
	if x := s.XAuth; x != nil {
		cfg.Username, cfg.Password = x.User, x.Password
	}
	// The client's remote selector is the gateway's split-include networks
	// (or everything). vpnc proposes one network: that one when there is
	// one, else 0.0.0.0/0 for the gateway to narrow.
	if len(s.RemoteTS) == 1 && s.RemoteTS[0].Bits() > 0 {
		cfg.TargetNetwork = s.RemoteTS[0]
	}
	if s.Auth == topology.AuthHybrid {
		cfg.Hybrid, cfg.CACerts = true, s.CACerts
		if cfg.GroupSecret == "" {
			cfg.GroupSecret = "unused-in-hybrid"
		}
	}
	for _, p := range c.IKEProposals {
		if vpncGroup(p.Group) != "" {
			cfg.DHGroup = vpncGroup(p.Group)
			break
		}
	}
	for _, p := range c.ChildProposals {
		if g := vpncGroup(p.Group); g != "" && p.Encr == proposal.EncrAESCBC {
			cfg.PFS = g
			break
		}
	}
	if c.IKE.NATT.Mode == topology.NATTOff {
		cfg.NATT = "none"
	} else if c.IKE.Encap {
		cfg.NATT = "force-natt"
	}
	if d := c.IKE.DPD; d != nil && d.Delay.Duration > 0 {
		// vpnc takes whole seconds from 10 s.
		cfg.DPDIdle = max(d.Delay.Duration.Round(time.Second), 10*time.Second)
	}
	return cfg, cfg.Validate()
}

// groupName is the IPSec ID vpnc sends: a "keyid:" identity's value, or any
// other ID as written, or the connection's name.
func groupName(id, conn string) string {
	if v, ok := strings.CutPrefix(id, "keyid:"); ok {
		return v
	}
	if id != "" {
		return id
	}
	return conn
}

// vpncGroup names a MODP group as vpnc does (dh14 for modp2048), or "".
func vpncGroup(g proposal.Group) string {
	switch g {
	case 1, 2, 5, 14, 15, 16, 17, 18:
		return fmt.Sprintf("dh%d", g)
	}
	return ""
}

func (n *vpncNode) conn(name string) (*vpncConn, error) {
	vc := n.conns[name]
	if vc == nil {
		return nil, fmt.Errorf("vpnc node %s initiates no connection %q", n.name, name)
	}
	return vc, nil
}

// Initiate starts vpnc for the connection, unless it runs already, and waits
// until the tunnel is up.
func (n *vpncNode) Initiate(ctx context.Context, conn string) error {
	n.mu.Lock()
	vc, err := n.conn(conn)
	if err != nil {
		n.mu.Unlock()
		return err
	}
	if vc.err != nil {
		n.mu.Unlock()
		return fmt.Errorf("vpnc on %s cannot connect %s: %w", n.name, conn, vc.err)
	}
	if n.crashed {
		n.mu.Unlock()
		return fmt.Errorf("vpnc on %s crashed: restart it first", n.name)
	}
	client := vc.client
	if client == nil || isDone(client.Exited()) {
		events.Publisher{Bus: n.r.Bus, Node: n.name, Conn: conn}.Publish(events.Event{Kind: events.InitiateByHand, Step: events.StepInitiation,
			Message: fmt.Sprintf("vpnc on %s connects to %s for %s", n.name, vc.cfg.Gateway, conn),
			Explain: "vpnc is the connection: it runs Aggressive Mode, answers XAUTH, asks Mode Config for an address and puts it on its TUN device"})
		if err := os.MkdirAll(n.dir, 0o700); err != nil {
			n.mu.Unlock()
			return err
		}
		vc.ike, vc.esp, vc.natt = "", "", false
		client, err = vpnc.Start(ctx, vc.cfg, vpnc.Options{
			Netns: n.netns,
			Dir:   filepath.Join(n.dir, conn),
			VPNC:  vpncProgram,
			OnLog: n.onLog(vc),
		})
		if err != nil {
			n.mu.Unlock()
			return err
		}
		vc.client = client
	}
	n.mu.Unlock()
	if _, err := client.Wait(ctx); err != nil {
		if isDone(client.Exited()) {
			_ = client.Stop() // it said why it ended; the error is in err
		}
		return err
	}
	return nil
}

func isDone(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// Terminate stops vpnc: it deletes its SAs at the gateway and runs the
// script, which removes the address and routes.
func (n *vpncNode) Terminate(ctx context.Context, conn string) error {
	n.mu.Lock()
	vc, err := n.conn(conn)
	var client *vpnc.Client
	if err == nil {
		client, vc.client = vc.client, nil
	}
	n.mu.Unlock()
	if err != nil || client == nil {
		return err
	}
	exited := isDone(client.Exited())
	if err := client.Stop(); err != nil && !exited {
		return err
	}
	return nil
}

// onLog publishes vpnc's lines as events and keeps what SAs shows.
func (n *vpncNode) onLog(vc *vpncConn) func(vpnc.LogLine) {
	pub := events.Publisher{Bus: n.r.Bus, Node: n.name, Conn: vc.name}
	return func(l vpnc.LogLine) {
		for _, e := range l.Events() {
			if e.Kind == events.ProposalChosen && e.SA != nil {
				n.mu.Lock()
				if e.SA.Type == "isakmp" {
					vc.ike = e.SA.Proposal
				} else {
					vc.esp = e.SA.Proposal
				}
				n.mu.Unlock()
			}
			if strings.HasPrefix(l.Text, "NAT-T mode: ") {
				n.mu.Lock()
				vc.natt = true
				n.mu.Unlock()
			}
			pub.Publish(e)
		}
	}
}

// SAs shows what vpnc says of its SAs: at --debug 1 it names the proposals
// and the address, not SPIs or counters.
func (n *vpncNode) SAs(ctx context.Context) ([]SAInfo, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []SAInfo
	for _, name := range slices.Sorted(maps.Keys(n.conns)) {
		vc := n.conns[name]
		if vc.client == nil {
			continue
		}
		l := vc.client.Lease()
		if !l.Addr.IsValid() {
			continue
		}
		remote := vc.cfg.Gateway.String()
		out = append(out, SAInfo{Node: n.name, Impl: "vpnc", Conn: name, Type: "isakmp", State: "ESTABLISHED", Role: "initiator",
			Remote: remote, Proposal: vc.ike, Encap: vc.natt, XAuthUser: vc.cfg.Username, VirtualIP: l.Addr.String()})
		remoteTS := "0.0.0.0/0"
		if len(l.SplitInclude) > 0 {
			remoteTS = prefixJoin(l.SplitInclude)
		}
		out = append(out, SAInfo{Node: n.name, Impl: "vpnc", Conn: name, Type: "esp", State: "INSTALLED", Remote: remote,
			Proposal: vc.esp, Mode: "tunnel", Encap: vc.natt, LocalTS: l.Addr.String() + "/32", RemoteTS: remoteTS})
	}
	return out, nil
}

func prefixJoin[T fmt.Stringer](l []T) string {
	return strings.Join(prefixStrings(l), ",")
}

// Stats has nothing to count: vpnc reports no counters.
func (n *vpncNode) Stats(ctx context.Context) (NodeStats, error) {
	return NodeStats{Node: n.name, Impl: "vpnc", Note: "vpnc reports no counters; its SAs live in its own process"}, nil
}

// Crash kills vpnc with SIGKILL: no Delete reaches the gateway, which keeps
// its SAs until DPD or their lifetime ends them.
func (n *vpncNode) Crash() error {
	n.mu.Lock()
	var clients []*vpnc.Client
	for _, vc := range n.conns {
		if vc.client != nil && !isDone(vc.client.Exited()) {
			clients = append(clients, vc.client)
		}
		vc.client = nil
	}
	if len(clients) == 0 {
		n.mu.Unlock()
		return fmt.Errorf("vpnc on %s is not running", n.name)
	}
	n.crashed = true
	n.mu.Unlock()
	for _, c := range clients {
		c.Kill()
		_ = c.Stop()
	}
	n.r.Bus.Publish(events.Event{Kind: events.StackCrashed, Node: n.name, Step: events.StepTermination, Level: events.Warn,
		Message: "vpnc on " + n.name + " was killed: its SAs are lost, and the gateway was not told"})
	return nil
}

// Restart lets vpnc run again; it connects on the next Initiate (tunnel-up).
func (n *vpncNode) Restart(ctx context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, vc := range n.conns {
		if vc.client != nil && !isDone(vc.client.Exited()) {
			return fmt.Errorf("vpnc on %s is running; crash it first", n.name)
		}
	}
	n.crashed = false
	n.r.Bus.Publish(events.Event{Kind: events.StackRestarted, Node: n.name, Message: "vpnc on " + n.name + " may run again; it connects on tunnel-up"})
	return nil
}

// Close stops every vpnc of the node.
func (n *vpncNode) Close() error {
	n.mu.Lock()
	var clients []*vpnc.Client
	for _, vc := range n.conns {
		if vc.client != nil {
			clients = append(clients, vc.client)
		}
		vc.client = nil
	}
	n.mu.Unlock()
	var errs []error
	for _, c := range clients {
		exited := isDone(c.Exited()) // it said why, in its events
		if err := c.Stop(); err != nil && !exited {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

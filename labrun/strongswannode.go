package labrun

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ipseclab/ipseclab/events"
	"github.com/ipseclab/ipseclab/ipsec/ike"
	"github.com/ipseclab/ipseclab/ipsec/proposal"
	"github.com/ipseclab/ipseclab/strongswan"
	"github.com/ipseclab/ipseclab/topology"
)

// strongSwanNode runs charon on a `kind: strongswan` node, configured from
// the same ipsec: block as ipseclab's own gateways, so that a lab can mix the
// two implementations.
type strongSwanNode struct {
	r    *Runtime
	name string
	cfg  strongswan.Config
	opt  strongswan.Options

	mu       sync.Mutex
	charon   *strongswan.Charon
	routed   map[string]string    // CHILD_SA unique id (the reqid of a first trap) → connection, from charon's ROUTED lines
	acquired map[string]time.Time // connection → when we last initiated it on a dropped packet
}

func startStrongSwan(r *Runtime, name string) (IPsecNode, error) {
	n := &strongSwanNode{r: r, name: name}
	var keepAlive time.Duration
	var retransmit strongswan.Retransmit
	for _, s := range r.Lab.SidesOf(name) {
		c := s.Conn
		// charon has one set of retransmission settings: each is the first
		// a connection of the node gives.
		rt := c.IKE.Retransmit
		if retransmit.Timeout == 0 {
			retransmit.Timeout = rt.Timeout.Duration
		}
		if retransmit.Tries == 0 {
			retransmit.Tries = rt.Tries
		}
		if retransmit.Base == 0 {
			retransmit.Base = rt.Base
		}
		conn := strongswan.Connection{
			Name:       c.Name,
			LocalAddrs: []string{s.Local.Address.String()},
			Aggressive: c.IKE.Mode == topology.AggressiveMode,
			Encap:      c.IKE.Encap,
			Proposals:  proposalStrings(s.IKEProposals),
			LocalID:    s.Local.ID,
			RemoteID:   s.Remote.ID,
			PSK:        s.PSK,
			ReauthTime: s.IKELifetime,
		}
		if c.IKE.Reauth == topology.ReauthOff {
			// reauth_time 0: charon neither re-establishes its IKE SA nor
			// lets it expire.
			conn.ReauthTime = 0
		}
		if s.Auth == topology.AuthPubkey && s.Cred != nil {
			conn.LocalAuth, conn.RemoteAuth, conn.PSK = "pubkey", "pubkey", ""
			conn.LocalCerts, conn.PrivateKey, conn.CACerts, conn.PeerCert = s.Cred.Chain, s.Cred.Key, s.CACerts, s.PeerCert
		}
		raPool := n.remoteAccess(&conn, s)
		// The initiator may sit behind a NAT, so a responder accepts it from
		// any address; the initiator knows where its responder is.
		conn.RemoteAddrs = []string{"%any"}
		if s.Initiator {
			conn.RemoteAddrs = []string{s.Remote.Address.String()}
		} else if s.RemoteFrom.IsValid() && conn.PSK != "" {
			// As ipseclab's gateway does (ExpectedRemote), charon ranks its
			// connections by the peer's address, the one where the lab sends
			// it from first, and takes the pre-shared key of the identity
			// configured there: the initiator's own address by default.
			conn.RemoteAddrs = []string{s.RemoteFrom.String(), "%any"}
			if conn.RemoteID == "" {
				conn.RemoteID = s.Remote.Address.Addr.String()
			}
		}
		if d := c.IKE.DPD; d != nil {
			conn.DPDDelay, conn.DPDTimeout = d.Delay.Duration, d.Timeout.Duration
		}
		// charon has one keepalive interval for all its connections: the
		// shortest asked for, or none if every connection says off.
		k := keepalive(c.IKE.NATT.Keepalive)
		if k == 0 {
			k = ike.DefaultKeepalive
		}
		if keepAlive <= 0 || k > 0 && k < keepAlive {
			keepAlive = k
		}
		child := strongswan.Child{
			Name:     c.Name,
			LocalTS:  prefixStrings(s.LocalTS),
			RemoteTS: prefixStrings(s.RemoteTS),
			Mode:     string(c.Child.Mode),
			LifeTime: s.ChildLifetime,
			// Rekey at 90% of the hard limits, as ipseclab's own stack does.
			RekeyTime: s.ChildLifetime * 9 / 10,
			LifeBytes: uint64(s.LifeBytes),
		}
		child.RekeyBytes = child.LifeBytes * 9 / 10
		child.RekeyTime = child.RekeyTime.Truncate(time.Second) // swanctl takes whole seconds
		// The same random part as ipseclab's stack: 5 % of the hard limits
		// unless the lab says otherwise (charon's default is 10 %).
		child.RandTime, child.RandBytes = s.ChildLifetime/20, int64(child.LifeBytes/20)
		if r := c.Child.RandTime; r != nil {
			child.RandTime = r.Duration
		}
		// swanctl takes whole seconds.
		if child.RandTime = child.RandTime.Truncate(time.Second); child.RandTime == 0 {
			child.RandTime = strongswan.None
		}
		if r := c.Child.RandBytes; r != nil {
			child.RandBytes = int64(*r)
			if *r == 0 {
				child.RandBytes = strongswan.None
			}
		}
		for _, p := range s.ChildProposals {
			child.ESPProposals = append(child.ESPProposals, p.String())
		}
		// The runtime initiates start: connections itself, from the
		// initiator, so that both implementations behave alike.
		// A responder does not trap: with a remote address it knows (a hub's
		// spoke, above) charon would otherwise start tunnels on traffic too.
		child.StartAction = "none"
		if c.Child.Start == topology.StartTrap && s.Initiator {
			child.StartAction = "trap"
		}
		if d := c.IKE.DPD; d != nil {
			child.DPDAction = string(d.Action)
			if d.Action == topology.DPDHold {
				child.DPDAction = "trap" // swanctl's word for it
			}
		}
		if raPool {
			// Dynamic: the client's side is the address the pool lends
			// (charon's unity plugin sends the gateway's local_ts to it as
			// UNITY_SPLIT_INCLUDE).
			if s.Initiator {
				child.LocalTS = nil
			} else {
				child.RemoteTS = nil
			}
		}
		conn.Children = []strongswan.Child{child}
		n.cfg.Connections = append(n.cfg.Connections, conn)
	}
	// The vici socket's path must fit a unix socket address, so the node's
	// directory is short and lives in the lab's state directory.
	n.opt = strongswan.Options{
		Netns:      NetnsPath(NodeNetns(r.Lab.Name, name)),
		Dir:        filepath.Join(StateDir(r.Lab.Name), "sw-"+name),
		KeyLog:     true,
		OnLog:      n.onLog,
		KeepAlive:  keepAlive,
		Retransmit: retransmit,
	}
	if err := n.start(context.Background()); err != nil {
		return nil, err
	}
	return n, nil
}

func prefixStrings[T fmt.Stringer](l []T) []string {
	out := make([]string, len(l))
	for i, p := range l {
		out[i] = p.String()
	}
	return out
}

func (n *strongSwanNode) start(ctx context.Context) error {
	if err := os.MkdirAll(n.opt.Dir, 0o700); err != nil {
		return err
	}
	ch, err := strongswan.Start(ctx, n.cfg, n.opt)
	if err != nil {
		return err
	}
	n.mu.Lock()
	n.charon = ch
	n.mu.Unlock()
	return nil
}

func (n *strongSwanNode) get() (*strongswan.Charon, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.charon == nil {
		return nil, fmt.Errorf("charon on %s is not running", n.name)
	}
	return n.charon, nil
}

func (n *strongSwanNode) Initiate(ctx context.Context, conn string) error {
	ch, err := n.get()
	if err != nil {
		return err
	}
	// ipseclab's own stack says this itself; charon is asked over vici.
	events.Publisher{Bus: n.r.Bus, Node: n.name, Conn: conn}.Publish(events.Event{Kind: events.InitiateByHand, Step: events.StepInitiation,
		Message: fmt.Sprintf("charon on %s initiates %s", n.name, conn)})
	return ch.Initiate(ctx, conn, conn)
}

func (n *strongSwanNode) Terminate(ctx context.Context, conn string) error {
	ch, err := n.get()
	if err != nil {
		return err
	}
	return ch.Terminate(ctx, conn)
}

func (n *strongSwanNode) SAs(ctx context.Context) ([]SAInfo, error) {
	ch, err := n.get()
	if err != nil {
		return nil, err
	}
	ikes, err := ch.ListSAs(ctx)
	if err != nil {
		return nil, err
	}
	var out []SAInfo
	for _, ike := range ikes {
		role := "responder"
		if ike.Initiator {
			role = "initiator"
		}
		out = append(out, SAInfo{Node: n.name, Impl: "strongswan", Conn: ike.Name, Type: "isakmp", State: ike.State, Role: role,
			Local: ike.Local.String(), Remote: ike.Remote.String(),
			SPIIn: fmt.Sprintf("%016x", ike.ICookie), SPIOut: fmt.Sprintf("%016x", ike.RCookie), Proposal: ike.Proposal(),
			Encap: ike.NATLocal || ike.NATRemote || ike.NATFake, Age: ike.Established.Round(time.Second).String(),
			VirtualIP: strings.Join(append(slices.Clone(ike.LocalVIPs), ike.RemoteVIPs...), ",")})
		for _, c := range ike.Children {
			// ESP in UDP travels between the ISAKMP SA's ports (4500 after
			// the float); ESP over IP has no port.
			local, remote := ike.Local.Addr().String(), ike.Remote.Addr().String()
			if c.Encap {
				local, remote = ike.Local.String(), ike.Remote.String()
			}
			out = append(out, SAInfo{Node: n.name, Impl: "strongswan", Conn: ike.Name, Type: strings.ToLower(c.Protocol), State: c.State,
				Local: local, Remote: remote,
				SPIIn: fmt.Sprintf("%08x", c.SPIIn), SPIOut: fmt.Sprintf("%08x", c.SPIOut), Proposal: c.Proposal(),
				Mode: strings.ToLower(c.Mode), Encap: c.Encap, LocalTS: strings.Join(c.LocalTS, ","), RemoteTS: strings.Join(c.RemoteTS, ","),
				Age: c.Installed.Round(time.Second).String(), PacketsIn: c.PacketsIn, PacketsOut: c.PacketsOut, BytesIn: c.BytesIn, BytesOut: c.BytesOut})
		}
	}
	return out, nil
}

// Stats shows the little charon counts: its IKE SAs, half-open ones among
// them. The note says so, lest an empty column read as "nothing dropped".
func (n *strongSwanNode) Stats(ctx context.Context) (NodeStats, error) {
	out := NodeStats{Node: n.name, Impl: "strongswan"}
	ch, err := n.get()
	if err != nil {
		// A crashed node is one line of the listing, not its end.
		out.Note = err.Error()
		return out, nil
	}
	st, err := ch.Stats(ctx)
	if err != nil {
		return out, err
	}
	out.Counters, err = CountersOf(map[string]any{"ike": st}, "")
	out.Note = "charon's vici counts IKE SAs; neither charon nor kernel-libipsec reports dropped packets there"
	return out, err
}

// Crash kills charon with SIGKILL: no Delete leaves the node.
func (n *strongSwanNode) Crash() error {
	n.mu.Lock()
	ch := n.charon
	n.charon = nil
	n.mu.Unlock()
	if ch == nil {
		return fmt.Errorf("charon on %s is not running", n.name)
	}
	if p, err := os.FindProcess(ch.Pid()); err == nil {
		_ = p.Kill()
	}
	<-ch.Exited()
	_ = ch.Stop()
	n.r.Bus.Publish(events.Event{Kind: events.StackCrashed, Node: n.name, Step: events.StepTermination, Level: events.Warn,
		Message: "charon on " + n.name + " was killed: every SA is lost, and the peers were not told"})
	return nil
}

func (n *strongSwanNode) Restart(ctx context.Context) error {
	n.mu.Lock()
	running := n.charon != nil
	n.mu.Unlock()
	if running {
		return fmt.Errorf("charon on %s is running; crash it first", n.name)
	}
	if err := n.start(ctx); err != nil {
		return err
	}
	n.r.Bus.Publish(events.Event{Kind: events.StackRestarted, Node: n.name, Message: "charon on " + n.name + " restarted with no SAs"})
	return nil
}

func (n *strongSwanNode) Close() error {
	n.mu.Lock()
	ch := n.charon
	n.charon = nil
	n.mu.Unlock()
	if ch == nil {
		return nil
	}
	return ch.Stop()
}

var (
	swIKEUp    = regexp.MustCompile(`IKE_SA (\S+)\[\d+\] established between (\S+)\.\.\.(\S+)`)
	swChildUp  = regexp.MustCompile(`CHILD_SA (\S+)\{\d+\} established with SPIs (\w+)_i (\w+)_o and TS (.*) === (.*)`)
	swIKEDown  = regexp.MustCompile(`deleting IKE_SA (\S+)\[\d+\]`)
	swChildDel = regexp.MustCompile(`closing CHILD_SA (\S+)\{\d+\}`)
	swAuthFail = regexp.MustCompile(`AUTHENTICATION_FAILED|authentication of .* failed`)
	swNoProp   = regexp.MustCompile(`NO_PROPOSAL_CHOSEN|no matching proposal found`)
	swRouted   = regexp.MustCompile(`CHILD_SA (\S+)\{(\d+)\} state change: CREATED => ROUTED`)
	swNoSA     = regexp.MustCompile(`could not find an outbound IPsec SA for reqid \{(\d+)\}`)
	swDPDDead  = regexp.MustCompile(`DPD check timed out, enforcing DPD action`)
	swContact  = regexp.MustCompile(`destroying duplicate IKE_SA for peer '([^']*)', received INITIAL_CONTACT`)
)

// acquire stands in for the acquire that kernel-libipsec never raises: it
// drops a packet that matches a trap policy without an SA, and says so in its
// log. ipseclab then initiates the connection, as the kernel's acquire would
// have made charon do.
func (n *strongSwanNode) acquire(reqid string) {
	n.mu.Lock()
	conn := n.routed[reqid]
	if conn == "" {
		// A ROUTED line names the CHILD_SA's unique id, which is its reqid
		// only for the first one: a trap that DPD's hold (swanctl's trap)
		// installs is a new CHILD_SA with the old reqid. One routed
		// connection is then the one.
		conns := map[string]bool{}
		for _, c := range n.routed {
			conns[c] = true
		}
		if len(conns) == 1 {
			for c := range conns {
				conn = c
			}
		}
	}
	if conn == "" || time.Since(n.acquired[conn]) < 10*time.Second {
		n.mu.Unlock()
		return
	}
	if n.acquired == nil {
		n.acquired = map[string]time.Time{}
	}
	n.acquired[conn] = time.Now()
	n.mu.Unlock()
	events.Publisher{Bus: n.r.Bus, Node: n.name, Conn: conn}.Publish(events.Event{Kind: events.Acquire, Step: events.StepInitiation,
		Message: fmt.Sprintf("a packet matched %s's policy for %s and has no SA: initiate", n.name, conn),
		Explain: "kernel-libipsec drops such packets without an acquire, so ipseclab asks charon to initiate, as the kernel would"})
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = n.Initiate(ctx, conn)
	}()
}

// onLog publishes charon's log, and turns the lines that mark a tunnel's
// milestones into the same events ipseclab's own stack publishes, so that
// scripts can expect them from either implementation.
func (n *strongSwanNode) onLog(l strongswan.LogLine) {
	pub := events.Publisher{Bus: n.r.Bus, Node: n.name, Conn: connOfLog(l)}
	lvl := events.Debug
	if l.Level <= 0 {
		lvl = events.Info
	}
	pub.Publish(events.Event{Kind: events.StrongSwanLog, Level: lvl, Message: "charon: " + l.Text,
		Fields: map[string]any{"group": l.Group, "log_level": l.Level}})
	switch {
	case swRouted.MatchString(l.Text):
		m := swRouted.FindStringSubmatch(l.Text)
		n.mu.Lock()
		if n.routed == nil {
			n.routed = map[string]string{}
		}
		n.routed[m[2]] = m[1]
		n.mu.Unlock()
	case swNoSA.MatchString(l.Text):
		n.acquire(swNoSA.FindStringSubmatch(l.Text)[1])
	case swIKEUp.MatchString(l.Text):
		n.recordKeys()
		m := swIKEUp.FindStringSubmatch(l.Text)
		pub.Publish(events.Event{Kind: events.Phase1Up, Conn: m[1], Step: events.StepPhase1,
			Message: fmt.Sprintf("ISAKMP SA %s established (strongSwan) between %s and %s", m[1], m[2], m[3])})
	case swChildUp.MatchString(l.Text):
		n.recordKeys()
		m := swChildUp.FindStringSubmatch(l.Text)
		pub.Publish(events.Event{Kind: events.Phase2Up, Conn: m[1], Step: events.StepPhase2,
			Message: fmt.Sprintf("IPsec SAs %s established (strongSwan): SPI in %s, out %s, %s ⇄ %s", m[1], m[2], m[3], m[4], m[5]),
			SA:      &events.SAInfo{Type: "esp", SPIIn: m[2], SPIOut: m[3], LocalTS: m[4], RemoteTS: m[5]}})
	case swIKEDown.MatchString(l.Text):
		m := swIKEDown.FindStringSubmatch(l.Text)
		pub.Publish(events.Event{Kind: events.SADeleted, Conn: m[1], Step: events.StepTermination, Message: "strongSwan deletes ISAKMP SA " + m[1]})
	case swChildDel.MatchString(l.Text):
		m := swChildDel.FindStringSubmatch(l.Text)
		pub.Publish(events.Event{Kind: events.SADeleted, Conn: m[1], Step: events.StepTermination, Message: "strongSwan closes the IPsec SAs of " + m[1]})
	case swContact.MatchString(l.Text):
		m := swContact.FindStringSubmatch(l.Text)
		pub.Publish(events.Event{Kind: events.SADeleted, Step: events.StepTermination,
			Message: fmt.Sprintf("strongSwan destroys its old IKE SA with %s and the IPsec SAs under it: the peer restarted (INITIAL_CONTACT)", m[1])})
	case swDPDDead.MatchString(l.Text):
		pub.Publish(events.Event{Kind: events.DPDDead, Step: events.StepTermination, Level: events.Error,
			Message: "strongSwan: no answer to R-U-THERE within dpd_timeout: the peer is dead, the DPD action applies"})
	case swAuthFail.MatchString(l.Text):
		pub.Publish(events.Event{Kind: events.AuthFailed, Step: events.StepPhase1, Level: events.Error, Message: "strongSwan: " + l.Text})
	case swNoProp.MatchString(l.Text):
		pub.Publish(events.Event{Kind: events.NoProposal, Level: events.Error, Message: "strongSwan: " + l.Text})
	}
}

// recordKeys adds charon's keys, read from its log, to the capture's
// Wireshark tables when the lab is being captured.
func (n *strongSwanNode) recordKeys() {
	kt := n.r.keys.Load()
	ch, err := n.get()
	if kt == nil || err != nil {
		return
	}
	keys := ch.Keys()
	var ike, esp strings.Builder
	_ = keys.WriteIKEv1DecryptionTable(&ike)
	_ = keys.WriteESPSATable(&esp)
	for _, line := range strings.Split(ike.String(), "\n") {
		_ = kt.add(IKEv1TableFile, strings.TrimSpace(line))
	}
	for _, line := range strings.Split(esp.String(), "\n") {
		_ = kt.add(ESPTableFile, strings.TrimSpace(line))
	}
}

// connOfLog is the connection a log line is about.
func connOfLog(l strongswan.LogLine) string { return l.IKESA }

// remoteAccess maps a side's XAUTH, Mode Config and hybrid settings onto
// swanctl's IKEv1 words (strongswan.Connection): on a client the second
// round local-xauth and vips = 0.0.0.0, on the gateway remote-xauth with
// xauth-generic and a pool of its own. It reports whether Mode Config lends
// an address, which makes the client's selector dynamic.
func (n *strongSwanNode) remoteAccess(conn *strongswan.Connection, s topology.Side) bool {
	if s.AnyPeer {
		conn.RemoteID = ""
	}
	if x := s.XAuth; x != nil && s.Auth.XAuth() {
		if s.Initiator {
			conn.XAuthID, conn.XAuthPassword = x.User, x.Password
		} else {
			conn.XAuthUsers = maps.Clone(x.Users)
		}
	}
	if s.Auth == topology.AuthXAuthPubkey && s.Cred != nil {
		conn.LocalAuth, conn.RemoteAuth, conn.PSK = "pubkey", "pubkey", ""
		conn.LocalCerts, conn.PrivateKey, conn.CACerts, conn.PeerCert = s.Cred.Chain, s.Cred.Key, s.CACerts, s.PeerCert
	}
	if s.Auth == topology.AuthHybrid {
		conn.PSK = ""
		if s.Initiator { // no certificate of its own: XAUTH alone, the gateway's checked
			conn.LocalAuth, conn.RemoteAuth, conn.CACerts, conn.PeerCert = "xauth", "pubkey", s.CACerts, s.PeerCert
		} else if s.Cred != nil {
			conn.LocalAuth, conn.RemoteAuth = "pubkey", "xauth"
			conn.LocalCerts, conn.PrivateKey = s.Cred.Chain, s.Cred.Key
		}
	}
	mc := s.ModeConfig
	if mc == nil {
		return false
	}
	conn.Push = mc.Push
	if s.Initiator {
		conn.VIPs = []string{"0.0.0.0"}
		return true
	}
	if !mc.Pool.IsValid() {
		return false
	}
	pool := strongswan.Pool{Name: conn.Name, Addrs: mc.Pool.String(), DNS: addrStrings(mc.DNS), NBNS: addrStrings(mc.NBNS),
		Banner: mc.Banner, DefaultDomain: mc.DefaultDomain}
	n.cfg.Pools = append(n.cfg.Pools, pool)
	conn.Pools = []string{pool.Name}
	return true
}

func addrStrings(as []netip.Addr) []string {
	var out []string
	for _, a := range as {
		out = append(out, a.String())
	}
	return out
}

// proposalStrings writes IKE proposals in strongSwan's notation.
func proposalStrings(ps []proposal.Proposal) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return out
}

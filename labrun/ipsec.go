package labrun

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"sort"
	"sync"
	"time"

	"github.com/ipseclab/ipseclab/events"
	"github.com/ipseclab/ipseclab/topology"
)

// IPsecNode is an IPsec implementation running on a lab node: ipseclab's own
// stack on a gateway, strongSwan's charon on a strongswan node, or vpnc on a
// vpnc node. The script, the control socket and the CLI drive them all
// through this one seam.
type IPsecNode interface {
	Initiate(ctx context.Context, conn string) error
	Terminate(ctx context.Context, conn string) error
	SAs(ctx context.Context) ([]SAInfo, error)
	Stats(ctx context.Context) (NodeStats, error)
	// Crash loses all state at once, sending nothing, as a reboot would;
	// Restart brings the implementation back with its configuration and no SAs.
	Crash() error
	Restart(ctx context.Context) error
	Close() error
}

// SAInfo is one SA as `ipseclab sas` shows it, whichever implementation holds it.
type SAInfo struct {
	Node     string `json:"node"`
	Impl     string `json:"impl"` // ipseclab, strongswan or vpnc
	Conn     string `json:"connection"`
	Type     string `json:"type"` // isakmp, esp, ah
	State    string `json:"state"`
	Role     string `json:"role,omitempty"` // initiator or responder (ISAKMP SA)
	Local    string `json:"local"`
	Remote   string `json:"remote"`
	SPIIn    string `json:"spi_in"` // ISAKMP SA: initiator cookie
	SPIOut   string `json:"spi_out"`
	Proposal string `json:"proposal"`
	Mode     string `json:"mode,omitempty"`
	Encap    bool   `json:"udp_encap,omitempty"`
	LocalTS  string `json:"local_ts,omitempty"`
	RemoteTS string `json:"remote_ts,omitempty"`
	Age      string `json:"age,omitempty"`
	// Remote access (ISAKMP SA): the XAUTH user, and the address Mode
	// Config lent the client (on the gateway) or gave us (on the client).
	XAuthUser string `json:"xauth_user,omitempty"`
	VirtualIP string `json:"virtual_ip,omitempty"`

	PacketsIn         uint64 `json:"packets_in"`
	PacketsOut        uint64 `json:"packets_out"`
	BytesIn           uint64 `json:"bytes_in"`
	BytesOut          uint64 `json:"bytes_out"`
	ReplayDrops       uint64 `json:"replay_drops"`
	IntegrityFailures uint64 `json:"integrity_failures"`
	PolicyDrops       uint64 `json:"policy_drops"`
	OtherDrops        uint64 `json:"other_drops"`   // malformed ESP or AH, sequence numbers run out, TFC dummies (ipseclab nodes)
	MTU               int    `json:"mtu,omitempty"` // the inner MTU the outbound SA leaves (ipseclab nodes)
}

// Counter returns one of the counters by the name lab files use.
func (s SAInfo) Counter(name string) (uint64, bool) {
	switch name {
	case "packets-in":
		return s.PacketsIn, true
	case "packets-out":
		return s.PacketsOut, true
	case "bytes-in":
		return s.BytesIn, true
	case "bytes-out":
		return s.BytesOut, true
	case "replay-drops":
		return s.ReplayDrops, true
	case "integrity-failures":
		return s.IntegrityFailures, true
	case "policy-drops":
		return s.PolicyDrops, true
	case "other-drops":
		return s.OtherDrops, true
	case "mtu":
		return uint64(s.MTU), true
	}
	return 0, false
}

// ipsecStarters build the IPsec implementation of a node kind.
var ipsecStarters = map[topology.Kind]func(r *Runtime, node string) (IPsecNode, error){
	topology.KindStrongSwan: startStrongSwan,
	topology.KindGateway:    startGateway,
	topology.KindVPNC:       startVPNC,
}

// startIPsec starts every IPsec node's implementation, then connections whose
// child says `start: start` are initiated.
func (r *Runtime) startIPsec(ctx context.Context) error {
	r.ipsec = map[string]IPsecNode{}
	// They stop side by side: each is independent of the others, and a lab
	// may have a thousand.
	r.AddCloser(func() error {
		nodes := make([]IPsecNode, 0, len(r.ipsec))
		for _, n := range r.ipsec {
			nodes = append(nodes, n)
		}
		var mu sync.Mutex
		var errs []error
		_ = parallel(context.Background(), 4*runtime.NumCPU(), len(nodes), func(i int) error {
			if err := nodes[i].Close(); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
			return nil
		})
		return errors.Join(errs...)
	})
	// They start side by side too; what serialises them is the kernel's
	// RTNL lock (a TUN device, rules and routes each).
	var names []string
	for _, name := range r.Lab.NodeNames() {
		if ipsecStarters[r.Lab.Topology.Nodes[name].Kind] != nil {
			names = append(names, name)
		}
	}
	var mu sync.Mutex
	if err := parallel(ctx, 4*runtime.NumCPU(), len(names), func(i int) error {
		name := names[i]
		kind := r.Lab.Topology.Nodes[name].Kind
		n, err := ipsecStarters[kind](r, name)
		if err != nil {
			return fmt.Errorf("%s %s: %w", kind, name, err)
		}
		mu.Lock()
		r.ipsec[name] = n
		mu.Unlock()
		return nil
	}); err != nil {
		return err
	}
	// A negotiation that fails is what some labs are about (a wrong key, a
	// NAT that eats ESP): the script goes on, and its expectations judge.
	tunnelStep := func(ctx context.Context, ts *topology.TunnelStep, up bool) error {
		if err := r.tunnel(ctx, ts, up); err != nil {
			verb := map[bool]string{true: "up", false: "down"}[up]
			r.Bus.Publish(events.Event{Kind: events.ScriptStep, Conn: ts.Connection, Level: events.Warn,
				Message: fmt.Sprintf("tunnel-%s %s did not complete: %v", verb, ts.Connection, err)})
		}
		return nil
	}
	r.RegisterAction("tunnel-up", func(ctx context.Context, s *topology.Step) error {
		return tunnelStep(ctx, s.TunnelUp, true)
	})
	r.RegisterAction("tunnel-down", func(ctx context.Context, s *topology.Step) error {
		return tunnelStep(ctx, s.TunnelDown, false)
	})
	r.RegisterAction("crash", func(ctx context.Context, s *topology.Step) error {
		n, err := r.ipsecNode(s.Crash.Node)
		if err != nil {
			return err
		}
		return n.Crash()
	})
	r.RegisterAction("restart", func(ctx context.Context, s *topology.Step) error {
		n, err := r.ipsecNode(s.Restart.Node)
		if err != nil {
			return err
		}
		return n.Restart(ctx)
	})
	r.RegisterAction("fault", r.faultAction)
	r.RegisterCounters(r.saCounter)
	r.Handle("GET /v1/sas", r.handleSAs)
	r.Handle("GET /v1/stats", r.handleStats)
	r.Handle("POST /v1/crash", r.handleCrash)
	r.Handle("POST /v1/fault", r.handleFault)
	r.Handle("GET /v1/fault", r.handleFaultList)
	r.Handle("POST /v1/tunnel", tunnelHandler(func(ctx context.Context, tr TunnelRequest) error {
		return r.tunnel(ctx, &topology.TunnelStep{Connection: tr.Connection, Node: tr.Node}, tr.Up)
	}))

	// `start: start` connections come up at deploy, from their initiator
	// (from each, when a gateway serves several clients). A vpnc client
	// needs Mode Config, whose connections start so by default (topology
	// refuses trap there: a client has no address to trap from).
	for _, cname := range r.Lab.ConnNames() {
		c := r.Lab.IPsec[cname]
		if c.Child.Start != topology.StartAtDeploy {
			continue
		}
		for _, ini := range c.Clients() {
			node := ini.Node
			n := r.ipsec[node]
			if n == nil {
				continue
			}
			go func() {
				if err := n.Initiate(ctx, cname); err != nil {
					r.Bus.Publish(events.Event{Kind: events.Phase1Failed, Node: node, Conn: cname, Step: events.StepPhase1, Level: events.Error,
						Message: fmt.Sprintf("%s could not bring up %s: %v", node, cname, err)})
				}
			}()
		}
	}
	return nil
}

func (r *Runtime) ipsecNode(node string) (IPsecNode, error) {
	if n := r.ipsec[node]; n != nil {
		return n, nil
	}
	return nil, fmt.Errorf("%s runs no IPsec implementation in lab %s", node, r.Lab.Name)
}

// tunnel brings a connection up or down from the side the step names (the
// initiator by default: the first, when there are several).
func (r *Runtime) tunnel(ctx context.Context, s *topology.TunnelStep, up bool) error {
	c := r.Lab.IPsec[s.Connection]
	if c == nil {
		return fmt.Errorf("no connection %q", s.Connection)
	}
	side := s.Node
	if side == "" {
		side = c.Clients()[0].Node
	}
	n, err := r.ipsecNode(side)
	if err != nil {
		return err
	}
	if up {
		return n.Initiate(ctx, s.Connection)
	}
	return n.Terminate(ctx, s.Connection)
}

// SAs lists the SAs of one node, or of every IPsec node when node is "".
func (r *Runtime) SAs(ctx context.Context, node string) ([]SAInfo, error) {
	var out []SAInfo
	err := r.eachIPsecNode(node, func(name string, n IPsecNode) error {
		sas, err := n.SAs(ctx)
		out = append(out, sas...)
		return err
	})
	return out, err
}

// eachIPsecNode calls f for one IPsec node, or for every one in name order
// when node is "", and names the node in f's error.
func (r *Runtime) eachIPsecNode(node string, f func(name string, n IPsecNode) error) error {
	names := []string{node}
	if node == "" {
		names = nil
		for n := range r.ipsec {
			names = append(names, n)
		}
		sort.Strings(names)
	}
	for _, name := range names {
		n, err := r.ipsecNode(name)
		if err != nil {
			return err
		}
		if err := f(name, n); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	return nil
}

// saCounter sums a counter over the connection's IPsec SAs on a node.
func (r *Runtime) saCounter(node, conn, counter string) (int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	sas, err := r.SAs(ctx, node)
	if err != nil {
		return 0, err
	}
	var sum uint64
	found := false
	for _, s := range sas {
		if s.Conn != conn || s.Type == "isakmp" {
			continue
		}
		v, ok := s.Counter(counter)
		if !ok {
			return 0, fmt.Errorf("unknown counter %q", counter)
		}
		if counter == "mtu" {
			// Not a sum: the smallest inner MTU of the SAs (several while
			// one replaces another), and only ipseclab's gateways know it.
			if v == 0 {
				continue
			}
			if !found || v < sum {
				sum = v
			}
		} else {
			sum += v
		}
		found = true
	}
	if !found && counter == "mtu" {
		return 0, fmt.Errorf("%s reports no inner MTU for connection %s (only ipseclab gateways do)", node, conn)
	}
	if !found {
		return 0, fmt.Errorf("%s has no IPsec SA of connection %s", node, conn)
	}
	return int64(sum), nil
}

func (r *Runtime) handleSAs(w http.ResponseWriter, req *http.Request) {
	sas, err := r.SAs(req.Context(), req.URL.Query().Get("node"))
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	writeJSON(w, sas)
}

// TunnelRequest asks the lab process to bring a connection up or down.
type TunnelRequest struct {
	Connection string `json:"connection"`
	Node       string `json:"node,omitempty"`
	Up         bool   `json:"up"`
	// TimeoutMS bounds the wait in the lab process (default 60 s). It ends
	// before the client's own wait, so that the client hears why the
	// tunnel did not come up rather than only that it waited too long.
	TimeoutMS int64 `json:"timeout_ms,omitempty"`
}

// tunnelTimeout is how long the lab process waits for a request.
func (tr TunnelRequest) timeout() time.Duration {
	if tr.TimeoutMS > 0 {
		return time.Duration(tr.TimeoutMS) * time.Millisecond
	}
	return 60 * time.Second
}

// tunnelReplyGrace is how much longer a client waits than the lab process, for
// the answer to travel back.
const tunnelReplyGrace = 5 * time.Second

// tunnelHandler serves POST /v1/tunnel, for a lab process and a daemon
// alike: act brings the connection up or down within the request's timeout.
func tunnelHandler(act func(ctx context.Context, tr TunnelRequest) error) http.HandlerFunc {
	return func(w http.ResponseWriter, req *http.Request) {
		var tr TunnelRequest
		if err := decodeBody(req, &tr); err != nil {
			writeError(w, http.StatusBadRequest, err)
			return
		}
		ctx, cancel := context.WithTimeout(req.Context(), tr.timeout())
		defer cancel()
		if err := act(ctx, tr); err != nil {
			writeError(w, http.StatusBadRequest, err)
			return
		}
		writeJSON(w, map[string]string{"status": "ok"})
	}
}

// SAs asks the lab process for SAs (of one node, or all when node is "").
func (c *Client) SAs(ctx context.Context, node string) ([]SAInfo, error) {
	var out []SAInfo
	return out, c.Do(ctx, "GET", "/v1/sas?node="+node, nil, &out)
}

// Tunnel brings a connection up or down, waiting at most tr's timeout.
func (c *Client) Tunnel(ctx context.Context, tr TunnelRequest) error {
	ctx, cancel := context.WithTimeout(ctx, tr.timeout()+tunnelReplyGrace)
	defer cancel()
	return c.Do(ctx, "POST", "/v1/tunnel", tr, nil)
}

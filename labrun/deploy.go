package labrun

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/ipseclab/ipseclab/events"
	"github.com/ipseclab/ipseclab/topology"
)

// ErrNotRoot is returned when ipseclab is not running as root.
var ErrNotRoot = errors.New("ipseclab needs root to create network namespaces: run it with sudo")

// CheckRoot returns ErrNotRoot unless the process is root.
func CheckRoot() error {
	if os.Geteuid() != 0 {
		return ErrNotRoot
	}
	return nil
}

// Namespace is one network namespace of a deployed lab.
type Namespace struct {
	Name   string // e.g. ipseclab-demo.gw1
	Node   string // the lab node, or "" for the LAN namespace
	Handle netns.NsHandle
	NL     *netlink.Handle // rtnetlink socket inside the namespace
}

// Path is the namespace's bind-mount path.
func (n *Namespace) Path() string { return NetnsPath(n.Name) }

// Wire is the implementation of a point-to-point link once created.
type Wire interface {
	// Release stops the wire and leaves its interfaces in their
	// namespaces: deleting a namespace removes every interface in it, all
	// in one batch.
	Release() error
}

// WireFactory creates a link's two interfaces, one in each namespace, named as
// the lab file names them. Addresses, MTU and state are set by the deployer
// afterwards. The default creates a veth pair; the lab runtime passes one that
// creates impairable TAP links.
type WireFactory interface {
	NewWire(link *topology.Link, a, b *Namespace) (Wire, error)
}

// Options tune a deployment.
type Options struct {
	Bus     *events.Bus
	Wires   WireFactory // nil: plain veth pairs
	Workers int         // concurrent namespace operations; 0: a default
}

// Deployment is a lab's namespaces, links and LANs as created.
type Deployment struct {
	Lab   *topology.Lab
	Nodes map[string]*Namespace
	LANs  *Namespace // holds the bridges; nil when the lab has no LAN

	bus     events.Publisher
	mu      sync.Mutex
	created []*Namespace // in creation order, for rollback
	wires   map[string]Wire
}

// Deploy creates the lab. It fails when the lab's namespaces already exist.
// If any step fails, everything created so far is removed before Deploy
// returns: a failed deploy leaves nothing behind.
func Deploy(ctx context.Context, lab *topology.Lab, opt Options) (_ *Deployment, err error) {
	if err := CheckRoot(); err != nil {
		return nil, err
	}
	if existing, _ := ListNetns(LabPrefix(lab.Name)); len(existing) > 0 {
		return nil, fmt.Errorf("lab %s is already deployed (namespace %s exists): run `ipseclab destroy --name %s` first", lab.Name, existing[0], lab.Name)
	}
	workers := opt.Workers
	if workers <= 0 {
		workers = 4 * runtime.NumCPU()
	}
	d := &Deployment{
		Lab:   lab,
		Nodes: map[string]*Namespace{},
		bus:   events.Publisher{Bus: opt.Bus},
		wires: map[string]Wire{},
	}
	start := time.Now()
	d.bus.Publish(events.Event{Kind: events.LabDeploying, Message: fmt.Sprintf("deploying lab %s: %d nodes, %d links, %d LANs",
		lab.Name, len(lab.Topology.Nodes), len(lab.Topology.Links), len(lab.Topology.LANs))})
	defer func() {
		if err != nil {
			d.bus.Publish(events.Event{Kind: events.LabRollback, Level: events.Warn, Message: "deploy failed; removing what was created: " + err.Error()})
			if derr := d.Destroy(); derr != nil {
				err = fmt.Errorf("%w (and the rollback failed: %v)", err, derr)
			}
		}
	}()

	names := lab.NodeNames()
	total := len(names) + len(lab.Topology.Links) + len(lab.Topology.LANs) + len(names)
	var done atomic.Int64
	progress := func(what string) {
		n := done.Add(1)
		d.bus.Publish(events.Event{Kind: events.LabProgress, Level: events.Debug, Message: what,
			Fields: map[string]any{"done": n, "total": total}})
	}

	// 1. Namespaces, with loopback up and sysctls set before any interface
	// exists, so per-interface defaults (disable_ipv6) apply to all of them.
	ipv6 := labUsesIPv6(lab)
	if err := parallel(ctx, workers, len(names), func(i int) error {
		name := names[i]
		ns, err := d.createNamespace(NodeNetns(lab.Name, name), name)
		if err != nil {
			return fmt.Errorf("node %s: %w", name, err)
		}
		if err := setupNamespace(ns, lab.Topology.Nodes[name].Kind.Forwards(), ipv6); err != nil {
			return fmt.Errorf("node %s: %w", name, err)
		}
		progress("node " + name)
		d.bus.Publish(events.Event{Kind: events.NodeCreated, Node: name, Level: events.Debug,
			Message: fmt.Sprintf("%s (%s) in namespace %s", name, lab.Topology.Nodes[name].Kind, ns.Name)})
		return nil
	}); err != nil {
		return d, err
	}
	if len(lab.Topology.LANs) > 0 {
		ns, err := d.createNamespace(LANNetns(lab.Name), "")
		if err != nil {
			return d, fmt.Errorf("LAN namespace: %w", err)
		}
		if err := setupNamespace(ns, false, false); err != nil {
			return d, fmt.Errorf("LAN namespace: %w", err)
		}
		d.LANs = ns
	}

	// 2. Links and LANs.
	wires := opt.Wires
	if wires == nil {
		wires = VethFactory{Lab: lab.Name}
	}
	if err := parallel(ctx, workers, len(lab.Topology.Links), func(i int) error {
		link := lab.Topology.Links[i]
		a, b := d.Nodes[link.Endpoints[0].Node], d.Nodes[link.Endpoints[1].Node]
		w, err := wires.NewWire(link, a, b)
		if err != nil {
			return fmt.Errorf("link %s: %w", link.Name, err)
		}
		d.mu.Lock()
		d.wires[link.Name] = w
		d.mu.Unlock()
		progress("link " + link.Name)
		d.bus.Publish(events.Event{Kind: events.LinkCreated, Link: link.Name, Level: events.Debug, Message: "link " + link.Name})
		return nil
	}); err != nil {
		return d, err
	}
	if err := parallel(ctx, workers, len(lab.Topology.LANs), func(i int) error {
		lan := lab.Topology.LANs[i]
		if err := d.createLAN(lan); err != nil {
			return fmt.Errorf("LAN %s: %w", lan.Name, err)
		}
		progress("LAN " + lan.Name)
		d.bus.Publish(events.Event{Kind: events.LANCreated, Level: events.Debug, Message: fmt.Sprintf("LAN %s with %d members", lan.Name, len(lan.Members))})
		return nil
	}); err != nil {
		return d, err
	}

	// 3. Addresses, link state, routes and permanent neighbours, per node.
	pins := neighbourPins(lab)
	macs := &macCache{d: d, m: map[topology.Endpoint]net.HardwareAddr{}}
	if err := parallel(ctx, workers, len(names), func(i int) error {
		name := names[i]
		if err := d.configureNode(lab.Topology.Nodes[name], d.Nodes[name], pins[name], macs); err != nil {
			return fmt.Errorf("node %s: %w", name, err)
		}
		progress("addresses and routes of " + name)
		return nil
	}); err != nil {
		return d, err
	}
	d.bus.Publish(events.Event{Kind: events.LabDeployed, Message: fmt.Sprintf("lab %s deployed in %s", lab.Name, time.Since(start).Round(time.Millisecond)),
		Fields: map[string]any{"duration_ms": time.Since(start).Milliseconds()}})
	return d, nil
}

func labUsesIPv6(lab *topology.Lab) bool {
	for _, n := range lab.Topology.Nodes {
		for _, i := range n.Ifaces {
			for _, a := range i.Addrs {
				if a.Addr().Is6() {
					return true
				}
			}
		}
	}
	return false
}

func (d *Deployment) createNamespace(name, node string) (*Namespace, error) {
	h, err := CreateNetns(name)
	if err != nil {
		return nil, err
	}
	ns := &Namespace{Name: name, Node: node, Handle: h}
	d.mu.Lock()
	d.created = append(d.created, ns)
	if node != "" {
		d.Nodes[node] = ns
	}
	d.mu.Unlock()
	ns.NL, err = netlink.NewHandleAt(h, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("netlink in %s: %w", name, err)
	}
	return ns, nil
}

// setupNamespace brings lo up and sets the sysctls of a node. IPv6 is switched
// off in labs that do not use it, so that captures show only the lab's traffic
// (no router solicitations or MLD reports) — what a student expects to see.
func setupNamespace(ns *Namespace, forward, ipv6 bool) error {
	lo, err := ns.NL.LinkByName("lo")
	if err != nil {
		return err
	}
	if err := ns.NL.LinkSetUp(lo); err != nil {
		return fmt.Errorf("lo up: %w", err)
	}
	sysctls := map[string]string{
		// Asymmetric paths are normal in labs (NAT, tunnels): do not drop them.
		"net/ipv4/conf/all/rp_filter":     "0",
		"net/ipv4/conf/default/rp_filter": "0",
	}
	if forward {
		sysctls["net/ipv4/ip_forward"] = "1"
		if ipv6 {
			sysctls["net/ipv6/conf/all/forwarding"] = "1"
		}
	}
	if !ipv6 {
		sysctls["net/ipv6/conf/all/disable_ipv6"] = "1"
		sysctls["net/ipv6/conf/default/disable_ipv6"] = "1"
	}
	return SetSysctls(ns.Handle, sysctls)
}

// SetSysctls writes /proc/sys values inside a namespace. /proc/sys/net
// resolves to the namespace of the thread that opens it, so the writes run on
// a thread inside the namespace.
func SetSysctls(h netns.NsHandle, kv map[string]string) error {
	keys := make([]string, 0, len(kv))
	for k := range kv {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return InNetnsHandle(h, func() error {
		for _, k := range keys {
			if err := os.WriteFile(filepath.Join("/proc/sys", k), []byte(kv[k]), 0); err != nil {
				return fmt.Errorf("sysctl %s=%s: %w", k, kv[k], err)
			}
		}
		return nil
	})
}

// VethFactory creates links as plain veth pairs.
type VethFactory struct{ Lab string }

type vethWire struct{}

func (vethWire) Release() error { return nil }

// NewWire creates the veth pair from inside a's namespace with its peer placed
// directly in b's: nothing ever appears in the host namespace.
func (f VethFactory) NewWire(link *topology.Link, a, b *Namespace) (Wire, error) {
	ea, eb := link.Endpoints[0], link.Endpoints[1]
	veth := &netlink.Veth{
		LinkAttrs:        netlink.LinkAttrs{Name: ea.Iface, HardwareAddr: MAC(f.Lab, ea.Node, ea.Iface)},
		PeerName:         eb.Iface,
		PeerHardwareAddr: MAC(f.Lab, eb.Node, eb.Iface),
		PeerNamespace:    netlink.NsFd(b.Handle),
	}
	if err := a.NL.LinkAdd(veth); err != nil {
		return nil, fmt.Errorf("create veth %s/%s: %w", ea, eb, err)
	}
	return vethWire{}, nil
}

// createLAN builds a bridge in the LAN namespace and one veth per member.
func (d *Deployment) createLAN(lan *topology.LAN) error {
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: lan.Name, MTU: mtuOr(lan.MTU)}}
	if err := d.LANs.NL.LinkAdd(br); err != nil {
		return fmt.Errorf("create bridge: %w", err)
	}
	if err := d.LANs.NL.LinkSetUp(br); err != nil {
		return err
	}
	for j, m := range lan.Members {
		member := d.Nodes[m.Node]
		port := fmt.Sprintf("l%dp%d", lan.Index, j)
		veth := &netlink.Veth{
			LinkAttrs:        netlink.LinkAttrs{Name: port, MasterIndex: br.Index, MTU: mtuOr(lan.MTU)},
			PeerName:         m.Iface,
			PeerHardwareAddr: MAC(d.Lab.Name, m.Node, m.Iface),
			PeerNamespace:    netlink.NsFd(member.Handle),
		}
		if err := d.LANs.NL.LinkAdd(veth); err != nil {
			return fmt.Errorf("member %s: %w", m, err)
		}
		if err := d.LANs.NL.LinkSetUp(veth); err != nil {
			return err
		}
	}
	return nil
}

func mtuOr(m int) int {
	if m == 0 {
		return 1500
	}
	return m
}

// configureNode sets MTUs and addresses, brings interfaces up, then adds
// routes and the permanent neighbour entries (neighbours.go).
func (d *Deployment) configureNode(n *topology.Node, ns *Namespace, pins []neighbourPin, macs *macCache) error {
	index := map[string]int{}
	for _, i := range n.Ifaces {
		l, err := ns.NL.LinkByName(i.Name)
		if err != nil {
			return fmt.Errorf("interface %s: %w", i.Name, err)
		}
		index[i.Name] = l.Attrs().Index
		if l.Attrs().MTU != i.MTU {
			if err := ns.NL.LinkSetMTU(l, i.MTU); err != nil {
				return fmt.Errorf("mtu of %s: %w", i.Name, err)
			}
		}
		for _, a := range i.Addrs {
			addr := &netlink.Addr{IPNet: prefixToIPNet(a)}
			if a.Addr().Is6() {
				addr.Flags = unix.IFA_F_NODAD // usable at once; the lab has no duplicates by validation
			}
			if err := ns.NL.AddrAdd(l, addr); err != nil {
				return fmt.Errorf("address %s on %s: %w", a, i.Name, err)
			}
		}
		if err := ns.NL.LinkSetUp(l); err != nil {
			return fmt.Errorf("%s up: %w", i.Name, err)
		}
	}
	add := func(dst netip.Prefix, via netip.Addr) error {
		r := &netlink.Route{Dst: prefixToIPNet(dst), Gw: via.AsSlice()}
		if dst.Bits() == 0 {
			r.Dst = nil
			if via.Is6() {
				r.Family = netlink.FAMILY_V6
			}
		}
		if err := ns.NL.RouteAdd(r); err != nil {
			return fmt.Errorf("route to %s via %s: %w", dst, via, err)
		}
		return nil
	}
	if n.Gateway.IsValid() {
		def := netip.MustParsePrefix("0.0.0.0/0")
		if n.Gateway.Is6() {
			def = netip.MustParsePrefix("::/0")
		}
		if err := add(def, n.Gateway.Addr); err != nil {
			return err
		}
	}
	for _, r := range n.Routes {
		if err := add(r.To.Prefix, r.Via.Addr); err != nil {
			return err
		}
	}
	return d.pinNeighbours(ns, pins, index, macs)
}

// Wire returns the implementation of the named link.
func (d *Deployment) Wire(link string) Wire {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.wires[link]
}

// Destroy removes everything the deployment created. The wires stop first;
// then deleting the namespaces removes every interface in them, the kernel
// batching the work of all the lab's devices instead of paying each
// device's RCU grace periods under its RTNL lock in turn.
func (d *Deployment) Destroy() error {
	d.bus.Publish(events.Event{Kind: events.LabDestroying, Level: events.Debug, Message: "destroying lab " + d.Lab.Name})
	start := time.Now()
	d.mu.Lock()
	wires := d.wires
	d.wires = map[string]Wire{}
	created := d.created
	d.created = nil
	d.mu.Unlock()
	var errs []error
	var mu sync.Mutex
	fail := func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}
	var wg sync.WaitGroup
	for name, w := range wires {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := w.Release(); err != nil {
				fail(fmt.Errorf("link %s: %w", name, err))
			}
		}()
	}
	wg.Wait()
	_ = parallel(context.Background(), 8, len(created), func(i int) error {
		ns := created[i]
		if ns.NL != nil {
			ns.NL.Close()
		}
		ns.Handle.Close()
		if err := DeleteNetns(ns.Name); err != nil {
			fail(err)
		}
		return nil
	})
	d.bus.Publish(events.Event{Kind: events.LabDestroyed, Message: fmt.Sprintf("lab %s destroyed in %s", d.Lab.Name, time.Since(start).Round(time.Millisecond))})
	return errors.Join(errs...)
}

// parallel runs fn(0..n-1) on up to workers goroutines and returns the first
// error; after an error no new work starts.
func parallel(ctx context.Context, workers, n int, fn func(i int) error) error {
	if n == 0 {
		return nil
	}
	var (
		next    atomic.Int64
		failed  atomic.Bool
		errOnce sync.Once
		first   error
		wg      sync.WaitGroup
	)
	if workers > n {
		workers = n
	}
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !failed.Load() {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				err := ctx.Err()
				if err == nil {
					err = fn(i)
				}
				if err != nil {
					errOnce.Do(func() { first = err })
					failed.Store(true)
					return
				}
			}
		}()
	}
	wg.Wait()
	return first
}

func prefixToIPNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

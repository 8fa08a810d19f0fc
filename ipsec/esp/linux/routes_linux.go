package linux

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/ipseclab/ipseclab/ipsec/esp"
)

// DefaultRouteTable is the routing table that holds the routes into the TUN,
// the number strongSwan uses for the same purpose.
const DefaultRouteTable = 220

// routes sends each policy's remote selector into the TUN, in a table of its
// own, like strongSwan's table 220:
//
//	ip rule:  fwmark BypassMark → main       (the data plane's own sockets: ESP, AH, UDP 4500)
//	ip rule:  udp sport 500 → main           (IKE)
//	ip rule:  everything else → table 220, then main
//	table 220: <remote selector> dev ipsec0 src <local address inside the local selector> mtu <the SA's>
//	table 220: throw <local selector>, where a remote selector holds it
//
// A spoke of a hub whose remote selector summarises every site (10.3.0.0/24
// to 10.0.0.0/13) would otherwise send its own LAN's packets, the replies the
// tunnel brings in among them, back into the TUN: the throw route returns
// them to the main table, as strongSwan's bypass-lan plugin does with pass
// policies.
// The first rules keep IPsec's own packets out of the TUN even when a selector
// covers the peer gateway, as it does in transport mode. A mark, not the IP
// protocol, identifies ESP and AH: the kernel routes a raw IP_HDRINCL socket's
// packets as protocol 255, whatever their header says.
type routes struct {
	h     *netlink.Handle
	link  netlink.Link
	table int
	rules []*netlink.Rule

	mu   sync.Mutex
	refs map[netip.Prefix]int // several policies may share a remote prefix
	mtu  int                  // of a route whose policies have no SA yet
	// The inner MTU of each policy's current outbound SA, by remote prefix:
	// a route shared by several policies takes the smallest, which fits
	// them all.
	mtus map[netip.Prefix]map[esp.PolicyKey]int
	srcs map[netip.Prefix]net.IP // each route's source address, as last set
	// What a route had when it was last installed, kept after it goes: a
	// responder's route comes and goes with every negotiation, and taking
	// the same source address and MTU again spares the address dump and
	// the second route change that each negotiation otherwise cost.
	last map[netip.Prefix]lastRoute
	// Local selectors inside their policy's remote one, by the policies
	// that ask for their bypass (throw) route.
	bypass map[netip.Prefix]int

	maxPath int // the largest path MTU the data plane uses (Config.MaxPathMTU)

	acceptLocal *sysctlSetting // restored on close
	closed      bool

	// ioctlFD is a UDP socket of the namespace, for SIOCGIFMTU (-1: none),
	// and names the interfaces it was asked about, by index.
	ioctlFD int
	names   map[int]string
}

// lastRoute is a route as last installed: its MTU, and the source address
// found for the local selector ts (nil: none was found).
type lastRoute struct {
	mtu int
	ts  esp.TrafficSelector
	src net.IP
}

var errClosed = errors.New("data plane closed")

const rulePriority = 200

// BypassMark is the socket mark (SO_MARK) of the data plane's sockets; packets
// carrying it never enter the TUN. An IKE socket may set it too.
const BypassMark = 0x1e5c

var _ esp.Routes = (*routes)(nil)

func newRoutes(h *netlink.Handle, link netlink.Link, table, mtu, maxPath int, acceptLocal *sysctlSetting, ioctlFD int) (*routes, error) {
	r := &routes{h: h, link: link, table: table, refs: map[netip.Prefix]int{}, mtu: mtu, maxPath: maxPath,
		mtus: map[netip.Prefix]map[esp.PolicyKey]int{}, srcs: map[netip.Prefix]net.IP{}, last: map[netip.Prefix]lastRoute{}, bypass: map[netip.Prefix]int{},
		acceptLocal: acceptLocal, ioctlFD: ioctlFD, names: map[int]string{}}
	add := func(rule *netlink.Rule) error {
		rule.Family = unix.AF_INET
		if err := h.RuleAdd(rule); err != nil {
			return fmt.Errorf("ip rule %v: %w", rule, err)
		}
		r.rules = append(r.rules, rule)
		return nil
	}
	marked := netlink.NewRule()
	marked.Priority, marked.Table, marked.Mark = rulePriority, unix.RT_TABLE_MAIN, BypassMark
	ike := netlink.NewRule()
	ike.Priority, ike.Table, ike.IPProto = rulePriority, unix.RT_TABLE_MAIN, unix.IPPROTO_UDP
	ike.Sport = netlink.NewRulePortRange(500, 500)
	for _, rule := range []*netlink.Rule{marked, ike} {
		if err := add(rule); err != nil {
			r.Close()
			return nil, err
		}
	}
	rule := netlink.NewRule()
	rule.Priority, rule.Table = rulePriority+1, table
	if err := add(rule); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

// localAddressIn finds an address of the namespace inside the selector, to be
// the source of locally generated packets that the route sends into the TUN.
func (r *routes) localAddressIn(ts esp.TrafficSelector) net.IP {
	addrs, err := r.h.AddrList(nil, unix.AF_INET)
	if err != nil {
		return nil
	}
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP.To4()); ok && ts.Prefix.Contains(ip) {
			return a.IP
		}
	}
	return nil
}

func (r *routes) route(pfx netip.Prefix) *netlink.Route {
	return &netlink.Route{
		LinkIndex: r.link.Attrs().Index,
		Dst:       &net.IPNet{IP: pfx.Addr().AsSlice(), Mask: net.CIDRMask(pfx.Bits(), 32)},
		Table:     r.table,
		Scope:     netlink.SCOPE_LINK,
		Src:       r.srcs[pfx],
		MTU:       r.routeMTU(pfx),
	}
}

// routeMTU is the MTU of the route to pfx: the smallest of its policies'.
func (r *routes) routeMTU(pfx netip.Prefix) int {
	m := 0
	for _, v := range r.mtus[pfx] {
		if m == 0 || v < m {
			m = v
		}
	}
	return cmp.Or(m, r.last[pfx].mtu, r.mtu)
}

// install adds or replaces the route to pfx as r.route makes it, and
// remembers what it was given.
func (r *routes) install(pfx netip.Prefix) error {
	rt := r.route(pfx)
	if err := r.h.RouteReplace(rt); err != nil {
		return err
	}
	l := r.last[pfx]
	l.mtu, l.src = rt.MTU, rt.Src
	r.last[pfx] = l
	return nil
}

// sourceFor is the source address for the route to pfx of a policy with
// local selector ts: the one found last time, if it was for the same
// selector, else looked up. A remembered address gone since makes the
// route change fail, and AddRoute then looks again.
func (r *routes) sourceFor(pfx netip.Prefix, ts esp.TrafficSelector) (src net.IP, remembered bool) {
	if l, ok := r.last[pfx]; ok && l.ts == ts && l.src != nil {
		return l.src, true
	}
	return r.localAddressIn(ts), false
}

// AddRoute implements esp.Routes.
func (r *routes) AddRoute(p esp.Policy) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	pfx := p.RemoteTS.Prefix
	old, had := r.srcs[pfx]
	src, remembered := r.sourceFor(pfx, p.LocalTS)
	r.srcs[pfx] = src
	err := r.install(pfx)
	if err != nil && remembered {
		r.srcs[pfx] = r.localAddressIn(p.LocalTS)
		err = r.install(pfx)
	}
	if err != nil {
		if had {
			r.srcs[pfx] = old
		} else {
			delete(r.srcs, pfx)
		}
		return fmt.Errorf("route %s into the TUN: %w", pfx, err)
	}
	r.refs[pfx]++
	l := r.last[pfx]
	l.ts = p.LocalTS
	r.last[pfx] = l
	if local, ok := bypassed(p); ok {
		if r.bypass[local]++; r.bypass[local] == 1 {
			if err := r.h.RouteReplace(r.throw(local)); err != nil {
				return fmt.Errorf("bypass route %s: %w", local, err)
			}
		}
	}
	return nil
}

// bypassed returns the local selector of p when its remote selector holds
// it: packets for it must not enter the TUN.
func bypassed(p esp.Policy) (netip.Prefix, bool) {
	local, remote := p.LocalTS.Prefix.Masked(), p.RemoteTS.Prefix.Masked()
	return local, local.IsValid() && remote.IsValid() && local.Bits() > remote.Bits() && remote.Contains(local.Addr())
}

func (r *routes) throw(pfx netip.Prefix) *netlink.Route {
	return &netlink.Route{
		Dst:   &net.IPNet{IP: pfx.Addr().AsSlice(), Mask: net.CIDRMask(pfx.Bits(), 32)},
		Table: r.table,
		Type:  unix.RTN_THROW,
	}
}

// dropBypass drops p's claim on the bypass route of its local selector.
func (r *routes) dropBypass(p esp.Policy) error {
	local, ok := bypassed(p)
	if !ok || r.bypass[local] == 0 {
		return nil
	}
	if r.bypass[local]--; r.bypass[local] > 0 {
		return nil
	}
	delete(r.bypass, local)
	if err := r.h.RouteDel(r.throw(local)); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("delete bypass route %s: %w", local, err)
	}
	return nil
}

// PathMTU is the MTU toward peer as the data plane's own packets go there
// (with the bypass mark, so past the TUN's routes): the route's MTU if it has
// one or the kernel learned one (PMTU), else the outgoing interface's.
func (r *routes) PathMTU(peer netip.Addr) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return 0, errClosed
	}
	routes, err := r.h.RouteGetWithOptions(peer.AsSlice(), &netlink.RouteGetOptions{Mark: BypassMark})
	if err != nil {
		return 0, fmt.Errorf("route to %s: %w", peer, err)
	}
	if len(routes) == 0 {
		return 0, fmt.Errorf("no route to %s", peer)
	}
	if routes[0].MTU > 0 {
		return routes[0].MTU, nil
	}
	if mtu, ok := r.ioctlMTU(routes[0].LinkIndex); ok {
		return mtu, nil
	}
	link, err := r.h.LinkByIndex(routes[0].LinkIndex)
	if err != nil {
		return 0, fmt.Errorf("interface toward %s: %w", peer, err)
	}
	r.names[routes[0].LinkIndex] = link.Attrs().Name
	return link.Attrs().MTU, nil
}

// ioctlMTU asks the kernel for an interface's MTU by its name (SIOCGIFMTU),
// having checked that the name still belongs to the index: two small
// system calls, where a netlink request for the link returns (and the
// library decodes) all its attributes, which cost each SA installed some
// 30 µs. It fails on an index whose name it has not learned yet.
func (r *routes) ioctlMTU(index int) (int, bool) {
	name, ok := r.names[index]
	if !ok || r.ioctlFD < 0 {
		return 0, false
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return 0, false
	}
	if err := unix.IoctlIfreq(r.ioctlFD, unix.SIOCGIFINDEX, ifr); err != nil || int(ifr.Uint32()) != index {
		delete(r.names, index) // renamed, or gone
		return 0, false
	}
	if err := unix.IoctlIfreq(r.ioctlFD, unix.SIOCGIFMTU, ifr); err != nil {
		return 0, false
	}
	return int(ifr.Uint32()), true
}

// SetRouteMTU records the inner MTU of the policy's new outbound SA, and
// returns the MTU of its route: the smallest of the policies that share the
// remote prefix. changed reports whether the route had to change.
func (r *routes) SetRouteMTU(p esp.Policy, mtu int) (routeMTU int, changed bool, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	pfx := p.RemoteTS.Prefix
	if r.closed || r.refs[pfx] == 0 {
		return 0, false, nil
	}
	before := r.routeMTU(pfx)
	if r.mtus[pfx] == nil {
		r.mtus[pfx] = map[esp.PolicyKey]int{}
	}
	old, had := r.mtus[pfx][p.Key()]
	r.mtus[pfx][p.Key()] = mtu
	after := r.routeMTU(pfx)
	if after == before {
		return after, false, nil
	}
	if err := r.install(pfx); err != nil {
		if had {
			r.mtus[pfx][p.Key()] = old
		} else {
			delete(r.mtus[pfx], p.Key())
		}
		return before, false, fmt.Errorf("route %s into the TUN, MTU %d: %w", pfx, after, err)
	}
	return after, true, nil
}

// DeleteRoute drops the policy's claim on its route: the route goes with the
// last policy, and until then takes the smallest MTU of those left.
func (r *routes) DeleteRoute(p esp.Policy) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.dropBypass(p); err != nil {
		return err
	}
	pfx := p.RemoteTS.Prefix
	installed := r.route(pfx) // the kernel deletes a route only by its metrics too
	delete(r.mtus[pfx], p.Key())
	if r.refs[pfx]--; r.refs[pfx] > 0 {
		if rt := r.route(pfx); rt.MTU != installed.MTU {
			if err := r.install(pfx); err != nil {
				return fmt.Errorf("route %s into the TUN, MTU %d: %w", pfx, rt.MTU, err)
			}
		}
		return nil
	}
	delete(r.refs, pfx)
	delete(r.mtus, pfx)
	delete(r.srcs, pfx)
	if err := r.h.RouteDel(installed); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("delete route %s: %w", pfx, err)
	}
	return nil
}

// MaxPathMTU implements esp.Routes.
func (r *routes) MaxPathMTU() int { return r.maxPath }

// Close removes the rules and puts accept_local back. The routes go with the
// TUN device.
// Release forgets the routes and rules without removing them, for the
// deletion of the namespace to remove (esp.Releaser).
func (r *routes) Release() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	r.rules, r.acceptLocal = nil, nil
	r.h.Close()
	return nil
}

func (r *routes) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	var errs []error
	for _, rule := range r.rules {
		if err := r.h.RuleDel(rule); err != nil && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, err)
		}
	}
	r.rules = nil
	// Throw routes have no device to take them away.
	for local := range r.bypass {
		if err := r.h.RouteDel(r.throw(local)); err != nil && !errors.Is(err, unix.ESRCH) {
			errs = append(errs, err)
		}
	}
	r.bypass = nil
	if r.acceptLocal != nil {
		if err := r.acceptLocal.restore(); err != nil {
			errs = append(errs, fmt.Errorf("restore accept_local: %w", err))
		}
		r.acceptLocal = nil
	}
	r.h.Close()
	if r.ioctlFD >= 0 {
		unix.Close(r.ioctlFD)
		r.ioctlFD = -1
	}
	return errors.Join(errs...)
}

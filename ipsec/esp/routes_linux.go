package esp

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// DefaultRouteTable is the routing table that holds the routes into the TUN,
// the number strongSwan uses for the same purpose.
const DefaultRouteTable = 220

// nsRoutes sends each policy's remote selector into the TUN, in a table of its
// own, like strongSwan's table 220:
//
//	ip rule:  fwmark BypassMark → main       (the data plane's own sockets: ESP, AH, UDP 4500)
//	ip rule:  udp sport 500 → main           (IKE)
//	ip rule:  everything else → table 220, then main
//	table 220: <remote selector> dev ipsec0 src <local address inside the local selector> mtu <the SA's>
//
// The first rules keep IPsec's own packets out of the TUN even when a selector
// covers the peer gateway, as it does in transport mode. A mark, not the IP
// protocol, identifies ESP and AH: the kernel routes a raw IP_HDRINCL socket's
// packets as protocol 255, whatever their header says.
type nsRoutes struct {
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
	mtus map[netip.Prefix]map[PolicyKey]int
	srcs map[netip.Prefix]net.IP // each route's source address, as last set

	acceptLocal *sysctlSetting // restored on close
	closed      bool
}

// sysctlSetting is a sysctl the data plane changed, kept open in the
// namespace where it was changed, with the value to put back.
type sysctlSetting struct {
	f   *os.File
	old []byte
}

// setAcceptLocal sets net.ipv4.conf.all.accept_local in the calling thread's
// namespace. With custom rules, such as the ones above, the kernel validates
// the source of every packet it receives by a second, reverse route lookup
// through every rule (fib_validate_source), unless rp_filter is off, as it is
// in a lab, and accept_local on. Over protocol 50, where each ESP packet is
// routed on its own, that lookup cost 5% of the CPU. The price is that a
// packet claiming one of the node's own addresses as its source is no longer
// refused as a martian. Where rp_filter is on for all interfaces, as on many
// hosts that run the daemon outside a lab, every interface does the full
// check anyway: the setting would only loosen it, so it is left alone and
// setAcceptLocal returns nil.
func setAcceptLocal() (*sysctlSetting, error) {
	rpFilter, err := os.ReadFile("/proc/sys/net/ipv4/conf/all/rp_filter")
	if err != nil {
		return nil, fmt.Errorf("rp_filter: %w", err)
	}
	if strings.TrimSpace(string(rpFilter)) != "0" {
		return nil, nil
	}
	f, err := os.OpenFile("/proc/sys/net/ipv4/conf/all/accept_local", os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("accept_local: %w", err)
	}
	old := make([]byte, 16)
	n, err := f.ReadAt(old, 0)
	if n == 0 {
		f.Close()
		return nil, fmt.Errorf("accept_local: %w", err)
	}
	if _, err := f.WriteAt([]byte("1"), 0); err != nil {
		f.Close()
		return nil, fmt.Errorf("accept_local: %w", err)
	}
	return &sysctlSetting{f: f, old: old[:n]}, nil
}

// restore puts the old value back; it is safe to call again.
func (s *sysctlSetting) restore() error {
	if s.f == nil {
		return nil
	}
	_, err := s.f.WriteAt(s.old, 0)
	s.f.Close()
	s.f = nil
	return err
}

const rulePriority = 200

// BypassMark is the socket mark (SO_MARK) of the data plane's sockets; packets
// carrying it never enter the TUN. An IKE socket may set it too.
const BypassMark = 0x1e5c

func newNSRoutes(h *netlink.Handle, link netlink.Link, table, mtu int, acceptLocal *sysctlSetting) (*nsRoutes, error) {
	r := &nsRoutes{h: h, link: link, table: table, refs: map[netip.Prefix]int{}, mtu: mtu,
		mtus: map[netip.Prefix]map[PolicyKey]int{}, srcs: map[netip.Prefix]net.IP{}, acceptLocal: acceptLocal}
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
			r.close()
			return nil, err
		}
	}
	rule := netlink.NewRule()
	rule.Priority, rule.Table = rulePriority+1, table
	if err := add(rule); err != nil {
		r.close()
		return nil, err
	}
	return r, nil
}

// localAddressIn finds an address of the namespace inside the selector, to be
// the source of locally generated packets that the route sends into the TUN.
func (r *nsRoutes) localAddressIn(ts TrafficSelector) net.IP {
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

func (r *nsRoutes) route(pfx netip.Prefix) *netlink.Route {
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
func (r *nsRoutes) routeMTU(pfx netip.Prefix) int {
	m := 0
	for _, v := range r.mtus[pfx] {
		if m == 0 || v < m {
			m = v
		}
	}
	return cmp.Or(m, r.mtu)
}

func (r *nsRoutes) addRoute(p Policy) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	pfx := p.RemoteTS.Prefix
	old, had := r.srcs[pfx]
	r.srcs[pfx] = r.localAddressIn(p.LocalTS)
	if err := r.h.RouteReplace(r.route(pfx)); err != nil {
		if had {
			r.srcs[pfx] = old
		} else {
			delete(r.srcs, pfx)
		}
		return fmt.Errorf("route %s into the TUN: %w", pfx, err)
	}
	r.refs[pfx]++
	return nil
}

// pathMTU is the MTU toward peer as the data plane's own packets go there
// (with the bypass mark, so past the TUN's routes): the route's MTU if it has
// one or the kernel learned one (PMTU), else the outgoing interface's.
func (r *nsRoutes) pathMTU(peer netip.Addr) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return 0, errRoutesClosed
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
	link, err := r.h.LinkByIndex(routes[0].LinkIndex)
	if err != nil {
		return 0, fmt.Errorf("interface toward %s: %w", peer, err)
	}
	return link.Attrs().MTU, nil
}

// setMTU records the inner MTU of the policy's new outbound SA, and returns
// the MTU of its route: the smallest of the policies that share the remote
// prefix. changed reports whether the route had to change.
func (r *nsRoutes) setMTU(p Policy, mtu int) (routeMTU int, changed bool, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	pfx := p.RemoteTS.Prefix
	if r.closed || r.refs[pfx] == 0 {
		return 0, false, nil
	}
	before := r.routeMTU(pfx)
	if r.mtus[pfx] == nil {
		r.mtus[pfx] = map[PolicyKey]int{}
	}
	old, had := r.mtus[pfx][p.Key()]
	r.mtus[pfx][p.Key()] = mtu
	after := r.routeMTU(pfx)
	if after == before {
		return after, false, nil
	}
	if err := r.h.RouteReplace(r.route(pfx)); err != nil {
		if had {
			r.mtus[pfx][p.Key()] = old
		} else {
			delete(r.mtus[pfx], p.Key())
		}
		return before, false, fmt.Errorf("route %s into the TUN, MTU %d: %w", pfx, after, err)
	}
	return after, true, nil
}

// deleteRoute drops the policy's claim on its route: the route goes with the
// last policy, and until then takes the smallest MTU of those left.
func (r *nsRoutes) deleteRoute(p Policy) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	pfx := p.RemoteTS.Prefix
	installed := r.route(pfx) // the kernel deletes a route only by its metrics too
	delete(r.mtus[pfx], p.Key())
	if r.refs[pfx]--; r.refs[pfx] > 0 {
		if rt := r.route(pfx); rt.MTU != installed.MTU {
			if err := r.h.RouteReplace(rt); err != nil {
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

// close removes the rules. The routes go with the TUN device.
func (r *nsRoutes) close() error {
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
	if r.acceptLocal != nil {
		if err := r.acceptLocal.restore(); err != nil {
			errs = append(errs, fmt.Errorf("restore accept_local: %w", err))
		}
		r.acceptLocal = nil
	}
	r.h.Close()
	return errors.Join(errs...)
}

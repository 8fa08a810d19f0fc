package esp

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"net/netip"
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
	mtu  int                  // of a route whose policy has no SA yet
	mtus map[netip.Prefix]int // set by the current outbound SAs
}

const rulePriority = 200

// BypassMark is the socket mark (SO_MARK) of the data plane's sockets; packets
// carrying it never enter the TUN. An IKE socket may set it too.
const BypassMark = 0x1e5c

func newNSRoutes(h *netlink.Handle, link netlink.Link, table, mtu int) (*nsRoutes, error) {
	r := &nsRoutes{h: h, link: link, table: table, refs: map[netip.Prefix]int{}, mtu: mtu, mtus: map[netip.Prefix]int{}}
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

func (r *nsRoutes) route(p Policy) *netlink.Route {
	pfx := p.RemoteTS.Prefix
	return &netlink.Route{
		LinkIndex: r.link.Attrs().Index,
		Dst:       &net.IPNet{IP: pfx.Addr().AsSlice(), Mask: net.CIDRMask(pfx.Bits(), 32)},
		Table:     r.table,
		Scope:     netlink.SCOPE_LINK,
		MTU:       cmp.Or(r.mtus[pfx], r.mtu),
	}
}

func (r *nsRoutes) addRoute(p Policy) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	rt := r.route(p)
	rt.Src = r.localAddressIn(p.LocalTS)
	if err := r.h.RouteReplace(rt); err != nil {
		return fmt.Errorf("route %s into the TUN: %w", p.RemoteTS.Prefix, err)
	}
	r.refs[p.RemoteTS.Prefix]++
	return nil
}

// setMTU gives the policy's route the inner MTU of its new outbound SA. A
// remote prefix shared by several policies gets the last one set.
func (r *nsRoutes) setMTU(p Policy, mtu int) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	pfx := p.RemoteTS.Prefix
	if r.refs[pfx] == 0 || r.mtus[pfx] == mtu {
		return nil
	}
	r.mtus[pfx] = mtu
	rt := r.route(p)
	rt.Src = r.localAddressIn(p.LocalTS)
	if err := r.h.RouteReplace(rt); err != nil {
		return fmt.Errorf("route %s into the TUN, MTU %d: %w", pfx, mtu, err)
	}
	return nil
}

func (r *nsRoutes) deleteRoute(p Policy) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	pfx := p.RemoteTS.Prefix
	if r.refs[pfx]--; r.refs[pfx] > 0 {
		return nil
	}
	delete(r.refs, pfx)
	defer delete(r.mtus, pfx)
	if err := r.h.RouteDel(r.route(p)); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("delete route %s: %w", pfx, err)
	}
	return nil
}

// close removes the rules. The routes go with the TUN device.
func (r *nsRoutes) close() error {
	var errs []error
	for _, rule := range r.rules {
		if err := r.h.RuleDel(rule); err != nil && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, err)
		}
	}
	r.rules = nil
	r.h.Close()
	return errors.Join(errs...)
}

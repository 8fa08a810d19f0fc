package nat

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/ti-mo/conntrack"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/ipseclab/ipseclab/events"
	"github.com/ipseclab/ipseclab/nat/natconf"
)

// Box is a running NAT node: its rules are in place and its mappings are
// watched. The lab process owns one per NAT node.
type Box struct {
	ns       netns.NsHandle // our own duplicate of the caller's handle
	pub      events.Publisher
	defaults udpTimeouts // the namespace's UDP timeouts before Start
	w        *watcher

	mu      sync.Mutex // serialises Update, Flush and Close
	outside string
	closed  bool
}

// Start makes the namespace a NAT box as c says, and starts publishing its
// mappings' creation and expiry through pub (whose Node names the NAT node).
// The namespace's interfaces, addresses and routes must exist already: an
// empty c.Outside is resolved to the interface of the default route.
//
// Start validates c, subscribes to conntrack events, replaces the namespace's
// ipseclab nftables table, and sets forwarding, conntrack timestamps and the
// UDP timeouts there. The caller may close ns afterwards.
func Start(ns netns.NsHandle, c natconf.Config, pub events.Publisher) (*Box, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	fd, err := unix.FcntlInt(uintptr(ns), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("duplicate namespace handle: %w", err)
	}
	b := &Box{ns: netns.NsHandle(fd), pub: pub}
	if b.w, err = startWatcher(b.ns, pub); err != nil {
		b.ns.Close()
		return nil, err
	}
	if err := b.apply(&c, true); err != nil {
		b.w.close()
		b.ns.Close()
		return nil, err
	}
	return b, nil
}

// apply programs c; first is true on Start, when the namespace's own UDP
// timeouts are recorded (after the rules: see applySysctls).
func (b *Box) apply(c *natconf.Config, first bool) error {
	outside, err := b.resolveOutside(c.Outside)
	if err != nil {
		return err
	}
	var addr netip.Addr
	if c.IKEPort == natconf.IKEPortRemap || c.Ports == natconf.PortsRandom {
		if addr, err = interfaceIPv4(b.ns, outside); err != nil {
			return err
		}
	}
	if err := applyRules(b.ns, c, outside, addr); err != nil {
		return err
	}
	if first {
		if b.defaults, err = readUDPTimeouts(b.ns); err != nil {
			return err
		}
	}
	if err := applySysctls(b.ns, c, b.defaults); err != nil {
		return err
	}
	b.outside = outside
	return nil
}

// resolveOutside checks that the named outside interface exists in the
// namespace, or finds the default route's when none is named.
func (b *Box) resolveOutside(name string) (string, error) {
	if name == "" {
		n, err := DefaultRouteInterface(b.ns)
		if err != nil {
			return "", fmt.Errorf("nat.outside is not set, and %w", err)
		}
		return n, nil
	}
	h, err := netlink.NewHandleAt(b.ns)
	if err != nil {
		return "", fmt.Errorf("netlink in the NAT's namespace: %w", err)
	}
	defer h.Close()
	if _, err := h.LinkByName(name); err != nil {
		return "", fmt.Errorf("nat.outside: no interface %q in the NAT's namespace: %w", name, err)
	}
	return name, nil
}

// Outside is the outside interface in use.
func (b *Box) Outside() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.outside
}

// Update changes the NAT's behaviour while it runs, the way an instructor
// flips a setting mid-lab. The rules change atomically. Existing mappings keep
// the ports they were given; new timeouts apply from each mapping's next packet;
// esp: drop applies from the next ESP packet. A timeout left at zero puts back
// the namespace's own value from before Start.
func (b *Box) Update(c natconf.Config) error {
	if err := c.Validate(); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return errClosed
	}
	return b.apply(&c, false)
}

// Show lists the current mappings (see the package function Show).
func (b *Box) Show() ([]Mapping, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, errClosed
	}
	return show(b.ns)
}

var errClosed = errors.New("nat: box is closed")

// Flush makes the NAT forget every mapping, as a reboot would, and returns the
// mappings it dropped. The next packet of each flow makes a new mapping, with
// a new port in ports: random mode; until the inside host sends again, the
// peer's packets to the old mapping go nowhere.
//
// It publishes NATFlush, then the watcher publishes each dropped mapping as
// NATMappingExpired with reason "flush". Flush deletes the entries that
// existed when it was called, one by one: a flow that starts meanwhile keeps
// its new mapping, as it would if it started just after a reboot.
func (b *Box) Flush() ([]Mapping, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, errClosed
	}
	c, err := dialConntrack(b.ns)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	flows, err := c.Dump(nil)
	if err != nil {
		return nil, fmt.Errorf("conntrack: dump: %w", err)
	}
	dropped := mappingsOf(flows, time.Now())
	ids := make([]uint32, len(dropped))
	for i, m := range dropped {
		ids[i] = m.ID
	}
	b.w.expectFlush(ids)
	b.pub.Publish(events.Event{
		Kind:    events.NATFlush,
		Message: fmt.Sprintf("NAT flushed, as by a reboot: %d mapping(s) dropped", len(dropped)),
		Explain: "A rebooted NAT forgets every mapping. The peer outside keeps sending to the old address and port, and the NAT drops it, until the host inside sends again and gets a new mapping (with ports: random, a new port). " +
			"An IPsec peer follows the new port on the first authenticated packet from it (nat-mapping-changed); a NAT-T keepalive, which is not authenticated, only makes the mapping.",
		Fields: map[string]any{"mappings": len(dropped)},
	})
	// Every entry goes, not only the mappings: a reboot forgets the box's own
	// connections too.
	for _, f := range flows {
		err := c.Delete(conntrack.Flow{TupleOrig: f.TupleOrig})
		switch {
		case err == nil:
		case errors.Is(err, unix.ENOENT):
			b.w.forgetFlush(f.ID) // gone by itself meanwhile
		default:
			return dropped, fmt.Errorf("conntrack: delete %s: %w", f.TupleOrig, err)
		}
	}
	return dropped, nil
}

// Close stops the watcher. The rules stay in the namespace, and go with it when
// it is deleted.
func (b *Box) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	b.closed = true
	b.w.close()
	return b.ns.Close()
}

// DefaultRouteInterface returns the name of the interface that holds the
// namespace's IPv4 default route (the one with the lowest metric, if there are
// several).
func DefaultRouteInterface(ns netns.NsHandle) (string, error) {
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return "", fmt.Errorf("netlink in namespace: %w", err)
	}
	defer h.Close()
	routes, err := h.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		return "", fmt.Errorf("list routes: %w", err)
	}
	best, index := -1, 0
	for _, r := range routes {
		if r.Dst != nil && !isDefault(r.Dst) {
			continue
		}
		li := r.LinkIndex
		if li == 0 && len(r.MultiPath) > 0 {
			li = r.MultiPath[0].LinkIndex
		}
		if li != 0 && (best < 0 || r.Priority < best) {
			best, index = r.Priority, li
		}
	}
	if best < 0 {
		return "", errors.New("the node has no IPv4 default route")
	}
	l, err := h.LinkByIndex(index)
	if err != nil {
		return "", fmt.Errorf("default route's interface %d: %w", index, err)
	}
	return l.Attrs().Name, nil
}

// interfaceIPv4 returns the interface's first IPv4 address, the one
// masquerade would choose for a destination on its subnet.
func interfaceIPv4(ns netns.NsHandle, name string) (netip.Addr, error) {
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("netlink in namespace: %w", err)
	}
	defer h.Close()
	l, err := h.LinkByName(name)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("interface %s: %w", name, err)
	}
	addrs, err := h.AddrList(l, netlink.FAMILY_V4)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("addresses of %s: %w", name, err)
	}
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP.To4()); ok {
			return ip, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("ike-port: remap needs an IPv4 address on the outside interface %s, and it has none", name)
}

func isDefault(n *net.IPNet) bool {
	ones, _ := n.Mask.Size()
	return ones == 0
}

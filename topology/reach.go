package topology

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/ipseclab/ipseclab/nat/natconf"
)

// This file follows packets through a lab as its kernels would forward them,
// from the lab file alone: each node's connected subnets, its static routes and
// its default route (gateway:), hop by hop, with NAT nodes translating as their
// nftables rules do. It runs at validation, so that a connection whose IKE
// packets cannot reach the peer is refused with the place where they stop,
// instead of deploying and watching Main Mode 1/6 being retransmitted.
//
// What changes at run time (links taken down by the script, impairments,
// routes the IPsec stacks install for their tunnels) is left out: it would
// not be the lab file's fault.

// maxHops bounds a trip, as a TTL does.
const maxHops = 64

// route is one entry of a node's routing table as deploy installs it.
type route struct {
	to    netip.Prefix
	via   netip.Addr // invalid for a connected subnet: the destination is on the link
	iface *Interface
}

// routes lists a node's routing table: connected subnets first, so that they
// win over a static route to the same prefix, as the kernel's do.
func (n *Node) routeTable() []route {
	var out []route
	for _, i := range n.Ifaces {
		for _, a := range i.Addrs {
			out = append(out, route{to: a.Masked(), iface: i})
		}
	}
	add := func(to netip.Prefix, via netip.Addr) {
		if i, own := onLink(n, via); i != nil && !own {
			out = append(out, route{to: to, via: via, iface: i})
		}
	}
	if n.Gateway.IsValid() {
		def := netip.MustParsePrefix("0.0.0.0/0")
		if n.Gateway.Is6() {
			def = netip.MustParsePrefix("::/0")
		}
		add(def, n.Gateway.Addr)
	}
	for _, r := range n.Routes {
		if r.To.IsValid() && r.Via.IsValid() {
			add(r.To.Prefix, r.Via.Addr)
		}
	}
	return out
}

// lookup is the longest-prefix match of the node's table.
func (n *Node) lookup(dst netip.Addr) (route, bool) {
	best, found := route{}, false
	for _, r := range n.routeTable() {
		if r.to.Contains(dst) && (!found || r.to.Bits() > best.to.Bits()) {
			best, found = r, true
		}
	}
	return best, found
}

// owns reports whether ip is one of the node's addresses.
func (n *Node) owns(ip netip.Addr) bool {
	_, own := onLink(n, ip)
	return own
}

// natOutside is a NAT node's outside interface: the one nat.outside names, else
// the interface of its default route, as nat.Start resolves it.
func (n *Node) natOutside() *Interface {
	if n.Kind != KindNAT {
		return nil
	}
	if n.NAT != nil && n.NAT.Outside != "" {
		return n.Iface(n.NAT.Outside)
	}
	for _, r := range n.routeTable() {
		if r.to.Bits() == 0 && r.via.IsValid() {
			return r.iface
		}
	}
	return nil
}

// sourceOn is the address a packet leaving on i toward nexthop takes: the one
// in the next hop's subnet, else the interface's first of the same family.
func sourceOn(i *Interface, nexthop netip.Addr) (netip.Addr, bool) {
	for _, a := range i.Addrs {
		if a.Contains(nexthop) {
			return a.Addr(), true
		}
	}
	for _, a := range i.Addrs {
		if a.Addr().Is4() == nexthop.Is4() {
			return a.Addr(), true
		}
	}
	return netip.Addr{}, false
}

// neighbour finds the node on i's link or LAN that holds addr, and the
// interface it holds it on.
func (l *Lab) neighbour(i *Interface, addr netip.Addr) (*Node, *Interface) {
	var peers []*Interface
	switch {
	case i.Peer != nil:
		peers = []*Interface{i.Peer}
	case i.LAN != nil:
		for _, m := range i.LAN.Members {
			if n := l.Topology.Nodes[m.Node]; n != nil && m.Node != i.Node {
				if pi := n.Iface(m.Iface); pi != nil {
					peers = append(peers, pi)
				}
			}
		}
	}
	for _, p := range peers {
		for _, a := range p.Addrs {
			if a.Addr() == addr {
				return l.Topology.Nodes[p.Node], p
			}
		}
	}
	return nil, nil
}

// flow is what the forwarding decisions look at in a packet.
type flow struct {
	src, dst     netip.Addr
	sport, dport uint16
}

func (f flow) reply() flow { return flow{src: f.dst, dst: f.src, sport: f.dport, dport: f.sport} }

// xlat is a translation a NAT node made, as its conntrack entry remembers it:
// replies to after are turned back into replies to before.
type xlat struct {
	node          string
	before, after flow
}

// tracer follows packets; the translations of one trip serve the replies of
// the next, as conntrack does.
type tracer struct {
	lab   *Lab
	xlats []xlat
}

// trip is where a packet went.
type trip struct {
	path []string // node names, the sender first
	at   *Node    // the node that received it (when stop is "")
	f    flow     // the packet as it was received, after any translation
	stop string   // why it went no further, naming the node
	hint string   // what would take it further, if something obvious would
}

// why is the reason it stopped, the path it took and the hint.
func (t trip) why() string {
	s := t.stop
	if path := t.path; len(path) > 1 {
		if len(path) > 8 { // a loop: its first turns show it
			path = append(path[:8:8], "…")
		}
		s += " (path: " + strings.Join(path, " → ") + ")"
	}
	if t.hint != "" {
		s += "; " + t.hint
	}
	return s
}

// send follows a UDP packet from a node until a node takes it as its own, or
// drops it.
func (t *tracer) send(from *Node, f flow) trip {
	cur, in := from, (*Interface)(nil)
	tr := trip{path: []string{from.Name}}
	for range maxHops {
		outside := cur.natOutside()
		// A NAT node's prerouting: a reply to one of its mappings is
		// translated back; a new packet on the outside may match a forward.
		isReply, forwarded := false, false
		if in != nil && cur.Kind == KindNAT {
			if back, ok := t.replyTo(cur.Name, f); ok {
				f, isReply = back, true
			} else if in == outside && cur.owns(f.dst) {
				if to, ok := forwardTarget(cur.NAT, f); ok {
					t.xlats = append(t.xlats, xlat{node: cur.Name, before: f, after: to})
					f, forwarded = to, true
				}
			}
		}
		if cur.owns(f.dst) {
			tr.at, tr.f = cur, f
			return tr
		}
		if in != nil && !cur.Kind.Forwards() {
			tr.stop = fmt.Sprintf("%s is a host: it does not forward packets for %s", cur.Name, f.dst)
			return tr
		}
		r, ok := cur.lookup(f.dst)
		if !ok {
			tr.stop = fmt.Sprintf("%s has no route to %s: no connected subnet, no route, no gateway", cur.Name, f.dst)
			tr.hint = fmt.Sprintf("give %s a gateway:, or a route that covers %s", cur.Name, f.dst)
			return tr
		}
		if in != nil && in == outside && !isReply && !forwarded {
			own, _ := sourceOn(outside, f.src)
			tr.stop = fmt.Sprintf("%s drops it: from its outside interface %s, only replies to its mappings get in, and packets for its own address %s through a forward",
				cur.Name, outside.Name, own)
			return tr
		}
		nexthop := r.via
		if !nexthop.IsValid() {
			nexthop = f.dst
		}
		// A NAT node's postrouting: what leaves by the outside interface
		// is masqueraded, unless it is a reply already translated.
		if outside != nil && r.iface == outside && !isReply && !forwarded {
			if src, ok := sourceOn(outside, nexthop); ok && src != f.src {
				to := f
				to.src = src
				t.xlats = append(t.xlats, xlat{node: cur.Name, before: f, after: to})
				f = to
			}
		}
		next, nextIn := t.lab.neighbour(r.iface, nexthop)
		if next == nil {
			what := "next hop"
			if !r.via.IsValid() {
				what = "destination"
			}
			tr.stop = fmt.Sprintf("%s sends it out of %s to %s, but no node on that %s has that address (the %s)",
				cur.Name, r.iface.Name, nexthop, segmentKind(r.iface), what)
			return tr
		}
		cur, in = next, nextIn
		tr.path = append(tr.path, cur.Name)
	}
	tr.stop = "it loops and never arrives"
	return tr
}

func segmentKind(i *Interface) string {
	if i.LAN != nil {
		return "LAN"
	}
	return "link"
}

// replyTo turns a packet that answers a translation the node made back into
// the answer to the original packet.
func (t *tracer) replyTo(node string, f flow) (flow, bool) {
	for _, x := range t.xlats {
		if x.node == node && f.src == x.after.dst && f.dst == x.after.src {
			return x.before.reply(), true
		}
	}
	return flow{}, false
}

// forwardTarget applies a NAT's port forwards (UDP, as IKE travels) to a
// packet for the NAT's own address.
func forwardTarget(c *natconf.Config, f flow) (flow, bool) {
	if c == nil {
		return flow{}, false
	}
	for _, fw := range c.Forward {
		if fw.Proto == natconf.UDP && fw.Port == f.dport && fw.To.Addr().IsValid() {
			to := f
			to.dst = fw.To.Addr()
			if p := fw.To.Port(); p != 0 {
				to.dport = p
			}
			return to, true
		}
	}
	return flow{}, false
}

// ikePort is where IKE starts, on both sides.
const ikePort = 500

// ikeProblem follows a connection's first IKE packet from an initiator's IKE
// address to the responder's, and the responder's answer back. It returns
// which side the problem belongs to ("initiator" or "responder") and what it
// is, or "" when both directions arrive.
func (l *Lab) ikeProblem(initiator, responder *Peer) (side, problem string) {
	ini, resp := l.Topology.Nodes[initiator.Node], l.Topology.Nodes[responder.Node]
	from, to := initiator.Address.Addr, responder.Address.Addr
	t := &tracer{lab: l}
	out := t.send(ini, flow{src: from, dst: to, sport: ikePort, dport: ikePort})
	switch {
	case out.stop != "":
		return "initiator", fmt.Sprintf("IKE from %s (%s) cannot reach %s (%s): %s", ini.Name, from, resp.Name, to, out.why())
	case out.at != resp:
		return "initiator", fmt.Sprintf("IKE from %s (%s) to %s (%s) arrives at %s instead: %s", ini.Name, from, resp.Name, to, out.at.Name, strings.Join(out.path, " → "))
	}
	back := t.send(resp, out.f.reply())
	switch {
	case back.stop != "":
		return "responder", fmt.Sprintf("%s's IKE replies to %s, where %s's packets come from, cannot get back: %s",
			resp.Name, out.f.src, ini.Name, back.why())
	case back.at != ini || back.f.dst != from:
		return "responder", fmt.Sprintf("%s's IKE replies to %s reach %s at %s, not %s at %s: %s",
			resp.Name, out.f.src, back.at.Name, back.f.dst, ini.Name, from, strings.Join(back.path, " → "))
	}
	return "", ""
}

// ikeSource is the address an initiator's first IKE packet carries when it
// reaches the responder: the initiator's own, or that of the last NAT on
// the way. ok is false when the packet does not arrive.
func (l *Lab) ikeSource(initiator, responder *Peer) (_ netip.Addr, ok bool) {
	ini, resp := l.Topology.Nodes[initiator.Node], l.Topology.Nodes[responder.Node]
	if ini == nil || resp == nil || !initiator.Address.Addr.IsValid() || !responder.Address.Addr.IsValid() {
		return netip.Addr{}, false
	}
	t := &tracer{lab: l}
	out := t.send(ini, flow{src: initiator.Address.Addr, dst: responder.Address.Addr, sport: ikePort, dport: ikePort})
	if out.stop != "" || out.at != resp {
		return netip.Addr{}, false
	}
	return out.f.src, true
}

// ikeReach refuses connections whose IKE packets cannot make the round trip,
// from each initiator, at the side where the trouble lies, and says which IKE
// addresses would work when the lab left the choice to the default.
func (v *labChecker) ikeReach() {
	for _, name := range v.lab.ConnNames() {
		c := v.lab.IPsec[name]
		for i, ini := range c.Clients() {
			side, problem := v.lab.ikeProblem(ini, &c.Responder)
			if problem == "" {
				continue
			}
			// When choosing another address on one side is the cure, the
			// problem is that side's, whichever direction broke.
			fix, fixSide := v.lab.ikeFix(ini, &c.Responder)
			if fixSide != "" {
				side = fixSide
			}
			at := "responder"
			if side == "initiator" {
				at = c.clientKey(i)
			}
			v.errorf("ipsec."+name+"."+at, "connection %s: %s%s", name, problem, fix)
		}
	}
}

// ikeFix looks for IKE addresses that would make the round trip, among the
// addresses of the sides whose address the lab file did not give, and says how
// to choose them. side is the role whose address changes, when only one does.
func (l *Lab) ikeFix(initiator, responder *Peer) (fix, side string) {
	candidates := func(p *Peer) []netip.Addr {
		if p.addrGiven {
			return []netip.Addr{p.Address.Addr}
		}
		out := []netip.Addr{p.Address.Addr}
		for _, i := range l.Topology.Nodes[p.Node].Ifaces {
			for _, a := range i.Addrs {
				if a.Addr().Is4() && a.Addr() != p.Address.Addr {
					out = append(out, a.Addr())
				}
			}
		}
		return out
	}
	for _, ai := range candidates(initiator) {
		for _, ar := range candidates(responder) {
			tryI, tryR := *initiator, *responder
			tryI.Address, tryR.Address = Addr{ai}, Addr{ar}
			if _, p := l.ikeProblem(&tryI, &tryR); p != "" {
				continue
			}
			var fixes, sides []string
			for _, s := range []struct {
				role string
				p    *Peer
				addr netip.Addr
			}{{"initiator", initiator, ai}, {"responder", responder, ar}} {
				if s.addr == s.p.Address.Addr {
					continue
				}
				n := l.Topology.Nodes[s.p.Node]
				i, _ := onLink(n, s.addr)
				fix := fmt.Sprintf("IKE works from %s's %s (%s): set address: %s on the %s", n.Name, s.addr, i.Name, s.addr, s.role)
				if !n.Gateway.IsValid() {
					fix += fmt.Sprintf(", or give %s a gateway: on %s", n.Name, i.Name)
				}
				fixes, sides = append(fixes, fix), append(sides, s.role)
			}
			switch len(fixes) {
			case 0:
				return "", ""
			case 1:
				return "; " + fixes[0], sides[0]
			}
			return "; " + strings.Join(fixes, "; "), ""
		}
	}
	return "", ""
}

// IKEEndpoint is the address one side of a connection uses for IKE, and why
// that one.
type IKEEndpoint struct {
	Conn, Role, Node string
	Addr             netip.Addr
	Iface            string
	Why              string
}

func (e IKEEndpoint) String() string {
	return fmt.Sprintf("%s: %s (%s) uses %s (%s) for IKE, %s", e.Conn, e.Node, e.Role, e.Addr, e.Iface, e.Why)
}

// IKEEndpoints lists, connection by connection, the address each side uses
// for IKE (filled by validation).
func (l *Lab) IKEEndpoints() []IKEEndpoint {
	var out []IKEEndpoint
	for _, name := range l.ConnNames() {
		c := l.IPsec[name]
		for _, s := range c.sides("") {
			role := s.key
			if s.client {
				role = "initiator"
			}
			e := IKEEndpoint{Conn: name, Role: role, Node: s.p.Node, Addr: s.p.Address.Addr, Why: s.p.addrWhy}
			if n := l.Topology.Nodes[s.p.Node]; n != nil {
				if i, _ := onLink(n, e.Addr); i != nil {
					e.Iface = i.Name
				}
			}
			out = append(out, e)
		}
	}
	return out
}

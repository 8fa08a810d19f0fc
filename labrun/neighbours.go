package labrun

import (
	"fmt"
	"net"
	"net/netip"
	"sync"

	"github.com/vishvananda/netlink"

	"github.com/ipseclab/ipseclab/topology"
)

// The kernel's neighbour tables (ARP, and NDP for IPv6) are one per machine,
// shared by every network namespace: a namespace's entries count against
// net.ipv4.neigh.default.gc_thresh3 (1,024 by default), a sysctl of the
// host's namespace alone. A hub with a thousand spokes needs a thousand
// entries by itself, and past the limit the kernel drops the packets that
// need a new one ("neighbor table overflow"). Permanent entries do not count
// against it, and the lab knows every address and MAC, so deploy writes the
// neighbours each node surely talks to as permanent entries, inside the
// lab's namespaces: the other end of each point-to-point link, each next hop
// (gateway:, routes), and each IPsec peer on the same LAN. Traffic between
// other members of a LAN resolves as usual; captures no longer show the ARP
// exchanges these entries make unnecessary, as they show no IPv6 chatter.

// neighbourPin is one permanent entry: addr, held by peer, reached through
// the node's interface iface.
type neighbourPin struct {
	iface string
	addr  netip.Addr
	peer  topology.Endpoint
}

// neighbourPins lists each node's permanent neighbour entries.
func neighbourPins(lab *topology.Lab) map[string][]neighbourPin {
	// Who holds each address of each LAN.
	lanHolders := map[string]map[netip.Addr]topology.Endpoint{}
	for _, lan := range lab.Topology.LANs {
		m := map[netip.Addr]topology.Endpoint{}
		for _, e := range lan.Members {
			if n := lab.Topology.Nodes[e.Node]; n != nil {
				if i := n.Iface(e.Iface); i != nil {
					for _, a := range i.Addrs {
						m[a.Addr()] = e
					}
				}
			}
		}
		lanHolders[lan.Name] = m
	}
	out := map[string][]neighbourPin{}
	seen := map[string]map[neighbourPin]bool{}
	add := func(node string, p neighbourPin) {
		if seen[node] == nil {
			seen[node] = map[neighbourPin]bool{}
		}
		if !seen[node][p] {
			seen[node][p] = true
			out[node] = append(out[node], p)
		}
	}
	// onLAN pins addr on node when a LAN of node's has another member holding it.
	onLAN := func(node string, addr netip.Addr) {
		n := lab.Topology.Nodes[node]
		if n == nil || !addr.IsValid() {
			return
		}
		for _, i := range n.Ifaces {
			if i.LAN == nil {
				continue
			}
			if e, ok := lanHolders[i.LAN.Name][addr]; ok && e.Node != node {
				add(node, neighbourPin{iface: i.Name, addr: addr, peer: e})
			}
		}
	}
	for _, name := range lab.NodeNames() {
		n := lab.Topology.Nodes[name]
		for _, i := range n.Ifaces {
			if i.Peer == nil {
				continue
			}
			for _, a := range i.Peer.Addrs {
				add(name, neighbourPin{iface: i.Name, addr: a.Addr(), peer: topology.Endpoint{Node: i.Peer.Node, Iface: i.Peer.Name}})
			}
		}
		if n.Gateway.IsValid() {
			onLAN(name, n.Gateway.Addr)
		}
		for _, r := range n.Routes {
			onLAN(name, r.Via.Addr)
		}
	}
	for _, cname := range lab.ConnNames() {
		c := lab.IPsec[cname]
		for _, ini := range c.Clients() {
			onLAN(ini.Node, c.Responder.Address.Addr)
			onLAN(c.Responder.Node, ini.Address.Addr)
		}
	}
	return out
}

// macCache reads each interface's MAC address once, from inside its node's
// namespace, for the neighbours that pin it.
type macCache struct {
	d  *Deployment
	mu sync.Mutex
	m  map[topology.Endpoint]net.HardwareAddr
}

func (c *macCache) get(e topology.Endpoint) (net.HardwareAddr, error) {
	c.mu.Lock()
	mac, ok := c.m[e]
	c.mu.Unlock()
	if ok {
		return mac, nil
	}
	ns := c.d.Nodes[e.Node]
	if ns == nil {
		return nil, fmt.Errorf("no namespace for %s", e.Node)
	}
	l, err := ns.NL.LinkByName(e.Iface)
	if err != nil {
		return nil, fmt.Errorf("interface %s: %w", e, err)
	}
	mac = l.Attrs().HardwareAddr
	c.mu.Lock()
	c.m[e] = mac
	c.mu.Unlock()
	return mac, nil
}

// pinNeighbours writes a node's permanent neighbour entries; index maps its
// interfaces' names to their indexes.
func (d *Deployment) pinNeighbours(ns *Namespace, pins []neighbourPin, index map[string]int, macs *macCache) error {
	for _, p := range pins {
		mac, err := macs.get(p.peer)
		if err != nil {
			return fmt.Errorf("neighbour %s on %s: %w", p.addr, p.iface, err)
		}
		family := netlink.FAMILY_V4
		if p.addr.Is6() {
			family = netlink.FAMILY_V6
		}
		n := &netlink.Neigh{LinkIndex: index[p.iface], Family: family, State: netlink.NUD_PERMANENT, IP: p.addr.AsSlice(), HardwareAddr: mac}
		if err := ns.NL.NeighSet(n); err != nil {
			return fmt.Errorf("neighbour %s (%s) on %s: %w", p.addr, p.peer, p.iface, err)
		}
	}
	return nil
}

// Package topology is the lab file format: decoding YAML strictly, keeping the
// position of every value, validating the whole lab and reporting every problem
// at once as `lab.yaml:LINE:COL: what is wrong (and how to fix it)`.
//
// The shape follows containerlab's (name, topology.nodes.<name>.kind,
// topology.links[].endpoints: [node:iface, node:iface]) so that people from that
// world feel at home; ipseclab adds LAN segments, NAT boxes, link impairments,
// IPsec connections and a script.
package topology

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/ipseclab/ipseclab/impair/netem"
	"github.com/ipseclab/ipseclab/nat/natconf"
)

// Lab is a decoded and validated lab file.
type Lab struct {
	Name        string                `yaml:"name" lab:"required"`
	Description string                `yaml:"description"`
	Seed        *uint64               `yaml:"seed"` // impairments replay identically under the same seed
	Topology    Topology              `yaml:"topology" lab:"required"`
	IPsec       map[string]*IPsecConn `yaml:"ipsec"`
	Script      []*Step               `yaml:"script"`

	// File is the path the lab was read from, as given (used in messages).
	File     string `yaml:"-"`
	Source   []byte `yaml:"-"` // the file's bytes, kept with a deployed lab's state
	pos      map[string]Pos
	ifaceUse map[string]string
	files    FileReader     // reads the certificate files the lab names
	labCerts []*labCertSpec // what the lab PKI issues, by name
}

// Topology holds the nodes and what joins them.
type Topology struct {
	Nodes map[string]*Node `yaml:"nodes" lab:"required"`
	Links []*Link          `yaml:"links"`
	LANs  []*LAN           `yaml:"lans"`
}

// Kind is what a node is.
type Kind string

const (
	KindHost       Kind = "host"       // an end system: no forwarding
	KindRouter     Kind = "router"     // forwards IPv4
	KindGateway    Kind = "gateway"    // a router running ipseclab's own IKEv1/ESP stack
	KindNAT        Kind = "nat"        // a router that masquerades (netfilter NAT)
	KindStrongSwan Kind = "strongswan" // a router running strongSwan's charon, for interop
	KindVPNC       Kind = "vpnc"       // a host running vpnc, a Cisco-style remote-access client
)

// Kinds lists the node kinds with what each is for.
var Kinds = []struct {
	Kind Kind
	Doc  string
}{
	{KindHost, "an end system; no IP forwarding"},
	{KindRouter, "forwards IPv4 between its interfaces"},
	{KindGateway, "a router running ipseclab's own IKEv1 + ESP/AH stack"},
	{KindNAT, "a router that masquerades traffic from inside to its outside interface"},
	{KindStrongSwan, "a router running strongSwan's charon (kernel-libipsec) as an independent IPsec peer"},
	{KindVPNC, "a host running vpnc, a Cisco-style IKEv1 remote-access client with its own ESP on a TUN device; initiator only"},
}

// Forwards reports whether nodes of this kind forward packets.
func (k Kind) Forwards() bool { return k != KindHost && k != KindVPNC }

// IPsec reports whether nodes of this kind run an IPsec implementation.
func (k Kind) IPsec() bool { return k == KindGateway || k == KindStrongSwan || k == KindVPNC }

// Node is one network namespace.
type Node struct {
	Kind    Kind              `yaml:"kind" lab:"required"`
	Gateway Addr              `yaml:"gateway"` // default route via this next hop
	Routes  []Route           `yaml:"routes"`
	NAT     *natconf.Config   `yaml:"nat"` // a NAT box's behaviour (kind nat only)
	Labels  map[string]string `yaml:"labels"`

	// Filled by validation.
	Name   string       `yaml:"-"`
	Ifaces []*Interface `yaml:"-"` // in declaration order
}

// Route is a static route.
type Route struct {
	To  Prefix `yaml:"to" lab:"required"` // "default" or a prefix
	Via Addr   `yaml:"via" lab:"required"`
}

// Link joins two nodes point to point.
type Link struct {
	Endpoints []Endpoint        `yaml:"endpoints" lab:"required"`
	Addresses []AddrList        `yaml:"addresses"`
	MTU       int               `yaml:"mtu"`
	Impair    *netem.Params     `yaml:"impair"` // netem-style impairments: both directions, or a-to-b/b-to-a blocks
	Labels    map[string]string `yaml:"labels"`

	// Name is "a:eth0--b:eth0", the link's identity (seeds, captures).
	Name  string `yaml:"-"`
	Index int    `yaml:"-"`
}

// LAN is a broadcast segment with any number of members, built as a bridge.
type LAN struct {
	Name      string     `yaml:"name" lab:"required"`
	Members   []Endpoint `yaml:"members" lab:"required"`
	Addresses []AddrList `yaml:"addresses"`
	MTU       int        `yaml:"mtu"`

	Index int `yaml:"-"`
}

// Interface is one network interface of a node, from a link or a LAN.
type Interface struct {
	Node  string
	Name  string
	Addrs []netip.Prefix
	MTU   int
	Link  *Link // one of Link and LAN is set
	LAN   *LAN
	Peer  *Interface // the other end of a link
}

// Endpoint is "node:interface".
type Endpoint struct {
	Node  string
	Iface string
}

func (e Endpoint) String() string { return e.Node + ":" + e.Iface }

// UnmarshalYAML parses "node:iface".
func (e *Endpoint) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("an endpoint is written node:interface, like gw1:eth0")
	}
	node, iface, ok := strings.Cut(n.Value, ":")
	if !ok || node == "" || iface == "" {
		return fmt.Errorf("endpoint %q must be written node:interface, like gw1:eth0", n.Value)
	}
	e.Node, e.Iface = node, iface
	return nil
}

// Addr is an IP address; the zero value means none.
type Addr struct{ netip.Addr }

// UnmarshalYAML parses an IP address.
func (a *Addr) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("expected an IP address like 10.0.0.1")
	}
	ip, err := netip.ParseAddr(n.Value)
	if err != nil {
		if _, perr := netip.ParsePrefix(n.Value); perr == nil {
			return fmt.Errorf("%q is a prefix; write the address alone, without /length", n.Value)
		}
		return fmt.Errorf("%q is not a valid IP address", n.Value)
	}
	a.Addr = ip.Unmap()
	return nil
}

// Prefix is an IP prefix; "default" means 0.0.0.0/0.
type Prefix struct{ netip.Prefix }

// UnmarshalYAML parses a prefix or "default".
func (p *Prefix) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("expected a prefix like 10.1.0.0/24, or default")
	}
	if n.Value == "default" {
		p.Prefix = netip.MustParsePrefix("0.0.0.0/0")
		return nil
	}
	pf, err := netip.ParsePrefix(n.Value)
	if err != nil {
		if ip, aerr := netip.ParseAddr(n.Value); aerr == nil {
			pf = netip.PrefixFrom(ip, ip.BitLen())
		} else {
			return fmt.Errorf("%q is not a valid prefix (write it like 10.1.0.0/24)", n.Value)
		}
	}
	if pf.Masked() != pf {
		return fmt.Errorf("%q has host bits set; the network is %s", n.Value, pf.Masked())
	}
	p.Prefix = pf
	return nil
}

// AddrList is the addresses of one endpoint: one "10.0.0.1/24", a list of them,
// or null for none.
type AddrList []netip.Prefix

// UnmarshalYAML parses one interface address with its prefix length, a list of
// them, or null.
func (l *AddrList) UnmarshalYAML(n *yaml.Node) error {
	var items []*yaml.Node
	switch {
	case n.ShortTag() == "!!null":
		return nil
	case n.Kind == yaml.ScalarNode:
		if n.Value == "" {
			return nil
		}
		items = []*yaml.Node{n}
	case n.Kind == yaml.SequenceNode:
		items = n.Content
	default:
		return fmt.Errorf("an endpoint's address is written like 10.0.0.1/24 (or a list of them, or null for none)")
	}
	for _, it := range items {
		if it.Kind != yaml.ScalarNode {
			return fmt.Errorf("an endpoint's address is written like 10.0.0.1/24")
		}
		pf, err := netip.ParsePrefix(it.Value)
		if err != nil {
			if _, aerr := netip.ParseAddr(it.Value); aerr == nil {
				return fmt.Errorf("address %q needs a prefix length, like %s/24", it.Value, it.Value)
			}
			return fmt.Errorf("%q is not a valid interface address (write it like 10.0.0.1/24)", it.Value)
		}
		*l = append(*l, netip.PrefixFrom(pf.Addr().Unmap(), pf.Bits()))
	}
	return nil
}

// NodeNames returns the node names in sorted order.
func (l *Lab) NodeNames() []string {
	return sortedKeys(l.Topology.Nodes)
}

// ConnNames returns the IPsec connection names in sorted order.
func (l *Lab) ConnNames() []string { return sortedKeys(l.IPsec) }

func sortedKeys[V any](m map[string]V) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Pos returns the position of the value at path (see decoder), falling back to
// the nearest enclosing value that has one.
func (l *Lab) Pos(path string) Pos {
	for path != "" {
		if p, ok := l.pos[path]; ok {
			return p
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			break
		}
		path = path[:i]
	}
	return Pos{File: l.File, Line: 1, Col: 1}
}

// KeyPos returns the position of the key of the value at path (for "defined
// here" messages), or the value's position.
func (l *Lab) KeyPos(path string) Pos {
	if p, ok := l.pos[path+"#key"]; ok {
		return p
	}
	return l.Pos(path)
}

// Iface returns a node's interface by name.
func (n *Node) Iface(name string) *Interface {
	for _, i := range n.Ifaces {
		if i.Name == name {
			return i
		}
	}
	return nil
}

func sortStrings(s []string) { sort.Strings(s) }

// Owner returns the node and interface that hold an address.
func (l *Lab) Owner(ip netip.Addr) (node, iface string, ok bool) {
	for _, name := range l.NodeNames() {
		for _, i := range l.Topology.Nodes[name].Ifaces {
			for _, a := range i.Addrs {
				if a.Addr() == ip {
					return name, i.Name, true
				}
			}
		}
	}
	return "", "", false
}

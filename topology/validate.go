package topology

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"unicode"

	"github.com/ipseclab/ipseclab/events"
	"github.com/ipseclab/ipseclab/impair/netem"
	"github.com/ipseclab/ipseclab/ipsec/fault"
	"github.com/ipseclab/ipseclab/ipsec/pki"
	"github.com/ipseclab/ipseclab/ipsec/proposal"
	"github.com/ipseclab/ipseclab/nat/natconf"
)

var (
	labNameRE  = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,39}$`)
	nodeNameRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]{0,39}$`)
)

// The words a lab file may write for these settings, the default first; the
// schema offers the same lists.
var (
	authMethods  = []AuthMethod{AuthPSK, AuthPubkey, AuthRSAEncryption, AuthRSARevised, AuthXAuthPSK, AuthXAuthPubkey, AuthHybrid}
	keyTypes     = pki.KeyTypes
	ikeModes     = []IKEMode{MainMode, AggressiveMode}
	nattModes    = []NATT{NATTOn, NATTOff}
	reauthModes  = []Reauth{ReauthOn, ReauthOff}
	dpdActions   = []DPDAction{DPDClear, DPDRestart, DPDHold}
	dpdModes     = []DPDMode{DPDPeriodic, DPDOnDemand}
	childModes   = []ChildMode{TunnelMode, TransportMode}
	startActions = []StartAction{StartTrap, StartAtDeploy, StartNone}
	protos       = []string{"udp", "tcp"}
)

// wordStrings is a list of words as strings, for suggest.
func wordStrings[W ~string](list []W) []string {
	out := make([]string, len(list))
	for i, w := range list {
		out[i] = string(w)
	}
	return out
}

// CheckLabName says what is wrong with a lab's name, if anything: the name
// prefixes the lab's namespaces, so it keeps to a few characters.
func CheckLabName(name string) error {
	if !labNameRE.MatchString(name) {
		return fmt.Errorf("lab name %q must be 1-40 characters of a-z, 0-9 and '-', starting with a letter or digit (it prefixes the lab's namespaces)", name)
	}
	return nil
}

// defaultWord fills an empty setting with the first of its words, and reports
// whether the setting is one of them.
func defaultWord[W ~string](v *W, words []W) bool {
	if *v == "" {
		*v = words[0]
	}
	return slices.Contains(words, *v)
}

// validIfaceName applies the kernel's rules (dev_valid_name) plus ipseclab's
// own: the name of a lab's interface is written node:iface, so no ':'.
func validIfaceName(s string) string {
	switch {
	case s == "":
		return "is empty"
	case len(s) > 15:
		return fmt.Sprintf("is %d bytes long; Linux allows at most 15 (IFNAMSIZ-1): shorten it", len(s))
	case s == "." || s == "..":
		return "is not allowed"
	case s == "lo":
		return "is the loopback interface, which every node already has; pick another name"
	case strings.ContainsAny(s, "/:%"):
		return "contains a character Linux or ipseclab does not allow in an interface name (/, :, %)"
	}
	// The kernel refuses whitespace of every kind (isspace: \v, \f, \r too)
	// and takes any other byte; ipseclab takes printable ASCII alone, so that
	// a name never moves a terminal's cursor or breaks a graph's syntax.
	for _, r := range s {
		if r <= ' ' || r >= 0x7f {
			return fmt.Sprintf("contains %q: an interface name is printable ASCII without spaces", r)
		}
	}
	return ""
}

// controlChar finds a control character in free text (a description), which
// would reach a terminal as a command rather than as text.
func controlChar(s string) (rune, bool) {
	for _, r := range s {
		if unicode.IsControl(r) && r != '\n' && r != '\t' {
			return r, true
		}
	}
	return 0, false
}

type labChecker struct {
	lab  *Lab
	errs *Errors
}

func (v *labChecker) errorf(path string, format string, args ...any) {
	v.errs.add(v.lab.Pos(path), format, args...)
}

// sectionError places errors of a section package at their own positions.
func (v *labChecker) sectionError(path string, err error) {
	for _, e := range flattenErrors(err) {
		p := v.lab.Pos(path)
		if pe, ok := e.(positioned); ok {
			if line, col := pe.Position(); line > 0 {
				p = Pos{File: v.lab.File, Line: line, Col: col}
			}
		}
		v.errs.add(p, "%s", e)
	}
}

// validate checks the decoded lab as a whole and fills the derived fields.
func (l *Lab) validate(errs *Errors) {
	v := &labChecker{lab: l, errs: errs}
	if l.Name != "" {
		if err := CheckLabName(l.Name); err != nil {
			v.errorf("name", "%v", err)
		}
	}
	if r, ok := controlChar(l.Description); ok {
		v.errorf("description", "the description contains the control character %q; write it as plain text", r)
	}
	if len(l.Topology.Nodes) == 0 {
		v.errorf("topology", "the lab has no nodes; add some under topology.nodes")
	}
	for _, name := range l.NodeNames() {
		n := l.Topology.Nodes[name]
		n.Name = name
		path := "topology.nodes." + name
		if !nodeNameRE.MatchString(name) {
			v.errs.add(l.KeyPos(path), "node name %q must start with a letter and use only letters, digits, '-' and '_' (at most 40)", name)
		}
		if !kindKnown(n.Kind) && n.Kind != "" {
			v.errorf(path+".kind", "unknown node kind %q%s", n.Kind, suggest(string(n.Kind), kindList()))
		}
		if n.NAT != nil && n.Kind != KindNAT && kindKnown(n.Kind) {
			v.errorf(path+".nat", "only nodes of kind nat take a nat block; %s is a %s", name, n.Kind)
		}
	}
	v.links()
	v.lans()
	v.addresses()
	v.routes()
	v.natBoxes()
	v.ipsec()
	v.script()
	// Reachability is judged only on an otherwise sound lab: on a broken one
	// (an unknown node, a bad address) it would only repeat those problems.
	if len(*errs) == 0 {
		v.ikeReach()
	}
}

func kindKnown(k Kind) bool {
	for _, x := range Kinds {
		if x.Kind == k {
			return true
		}
	}
	return false
}

func kindList() []string {
	var out []string
	for _, k := range Kinds {
		out = append(out, string(k.Kind))
	}
	return out
}

// endpoint resolves one node:iface of a link or LAN and records the interface.
func (v *labChecker) endpoint(path string, ep Endpoint, addrs AddrList, mtu int, link *Link, lan *LAN, used map[string]string) *Interface {
	n := v.lab.Topology.Nodes[ep.Node]
	if n == nil {
		v.errorf(path, "endpoint %s names unknown node %q (nodes: %s)", ep, ep.Node, strings.Join(v.lab.NodeNames(), ", "))
		return nil
	}
	if why := validIfaceName(ep.Iface); why != "" {
		v.errorf(path, "interface name %q %s", ep.Iface, why)
		return nil
	}
	if first, dup := used[ep.String()]; dup {
		v.errorf(path, "interface %s is used twice (first at %s); give each link its own interface", ep, first)
		return nil
	}
	used[ep.String()] = fmt.Sprintf("line %d", v.lab.Pos(path).Line)
	if mtu == 0 {
		mtu = 1500
	}
	i := &Interface{Node: ep.Node, Name: ep.Iface, Addrs: addrs, MTU: mtu, Link: link, LAN: lan}
	n.Ifaces = append(n.Ifaces, i)
	return i
}

func (v *labChecker) links() {
	used := map[string]string{}
	v.lab.ifaceUse = used
	for li, link := range v.lab.Topology.Links {
		path := fmt.Sprintf("topology.links[%d]", li)
		link.Index = li
		if len(link.Endpoints) != 2 {
			v.errorf(path+".endpoints", "a link has exactly two endpoints, not %d (use lans: for a segment with more members)", len(link.Endpoints))
			continue
		}
		if len(link.Addresses) != 0 && len(link.Addresses) != 2 {
			v.errorf(path+".addresses", "give one address per endpoint (2), not %d; use null for an endpoint without one", len(link.Addresses))
		}
		if link.MTU != 0 && (link.MTU < 576 || link.MTU > 9000) {
			v.errorf(path+".mtu", "mtu %d is out of range (576 to 9000)", link.MTU)
		}
		if link.Endpoints[0].Node == link.Endpoints[1].Node && link.Endpoints[0].Node != "" {
			v.errorf(path+".endpoints", "both endpoints are on node %s; a link joins two different nodes", link.Endpoints[0].Node)
			continue
		}
		link.Name = link.Endpoints[0].String() + "--" + link.Endpoints[1].String()
		if link.Impair != nil && link.Impair.MTU != 0 && link.MTU != 0 && link.Impair.MTU > link.MTU {
			v.errorf(path+".impair.mtu", "the impairment's mtu %d is above the link's own mtu %d, so it would never drop anything", link.Impair.MTU, link.MTU)
		}
		var ends [2]*Interface
		for e := 0; e < 2; e++ {
			var addrs AddrList
			if len(link.Addresses) == 2 {
				addrs = link.Addresses[e]
			}
			ends[e] = v.endpoint(fmt.Sprintf("%s.endpoints[%d]", path, e), link.Endpoints[e], addrs, link.MTU, link, nil, used)
		}
		if ends[0] != nil && ends[1] != nil {
			ends[0].Peer, ends[1].Peer = ends[1], ends[0]
			v.sameSubnet(path+".addresses", ends[0], ends[1])
		}
	}
}

// sameSubnet reports two ends of a link whose IPv4 (or IPv6) addresses are in
// different subnets: they could not reach each other without extra routes.
func (v *labChecker) sameSubnet(path string, a, b *Interface) {
	for _, pa := range a.Addrs {
		for _, pb := range b.Addrs {
			if pa.Addr().Is4() != pb.Addr().Is4() {
				continue
			}
			if pa.Contains(pb.Addr()) || pb.Contains(pa.Addr()) {
				return
			}
		}
	}
	for _, pa := range a.Addrs {
		for _, pb := range b.Addrs {
			if pa.Addr().Is4() == pb.Addr().Is4() {
				v.errorf(path, "the ends of link %s--%s are in different subnets (%s and %s); put both in one subnet, e.g. %s and %s",
					a.Node+":"+a.Name, b.Node+":"+b.Name, pa, pb, pa, netip.PrefixFrom(nextAddr(pa), pa.Bits()))
				return
			}
		}
	}
}

func nextAddr(p netip.Prefix) netip.Addr {
	n := p.Addr().Next()
	if !p.Contains(n) {
		return p.Addr().Prev()
	}
	return n
}

func (v *labChecker) lans() {
	used := v.lab.ifaceUse
	names := map[string]string{}
	for li, lan := range v.lab.Topology.LANs {
		path := fmt.Sprintf("topology.lans[%d]", li)
		lan.Index = li
		if why := validIfaceName(lan.Name); why != "" && lan.Name != "" {
			v.errorf(path+".name", "LAN name %q %s (it names the LAN's bridge)", lan.Name, why)
		}
		if first, dup := names[lan.Name]; dup && lan.Name != "" {
			v.errorf(path+".name", "LAN name %q is used twice (first at %s)", lan.Name, first)
		}
		names[lan.Name] = fmt.Sprintf("line %d", v.lab.Pos(path+".name").Line)
		if len(lan.Members) < 2 {
			v.errorf(path+".members", "a LAN needs at least two members")
		}
		if len(lan.Members) > MaxLANMembers {
			v.errorf(path+".members", "a LAN has at most %d members (a Linux bridge's ports), not %d: split it into several LANs joined by routers",
				MaxLANMembers, len(lan.Members))
		}
		if len(lan.Addresses) != 0 && len(lan.Addresses) != len(lan.Members) {
			v.errorf(path+".addresses", "give one address per member (%d), not %d; use null for a member without one", len(lan.Members), len(lan.Addresses))
		}
		if lan.MTU != 0 && (lan.MTU < 576 || lan.MTU > 9000) {
			v.errorf(path+".mtu", "mtu %d is out of range (576 to 9000)", lan.MTU)
		}
		seenNode := map[string]bool{}
		for mi, m := range lan.Members {
			mp := fmt.Sprintf("%s.members[%d]", path, mi)
			if seenNode[m.Node] {
				v.errorf(mp, "node %s is on LAN %s twice", m.Node, lan.Name)
				continue
			}
			seenNode[m.Node] = true
			var addrs AddrList
			if len(lan.Addresses) == len(lan.Members) {
				addrs = lan.Addresses[mi]
			}
			v.endpoint(mp, m, addrs, lan.MTU, nil, lan, used)
		}
	}
}

// addrPath finds where an interface's address was written.
func (v *labChecker) addrPath(i *Interface, k int) string {
	if i.Link != nil {
		e := 0
		if i.Link.Endpoints[1].Node == i.Node {
			e = 1
		}
		p := fmt.Sprintf("topology.links[%d].addresses[%d]", i.Link.Index, e)
		if _, ok := v.lab.pos[fmt.Sprintf("%s[%d]", p, k)]; ok {
			return fmt.Sprintf("%s[%d]", p, k)
		}
		return p
	}
	for mi, m := range i.LAN.Members {
		if m.Node == i.Node {
			return fmt.Sprintf("topology.lans[%d].addresses[%d]", i.LAN.Index, mi)
		}
	}
	return "topology.lans"
}

func (v *labChecker) addresses() {
	owner := map[netip.Addr]string{}
	for _, name := range v.lab.NodeNames() {
		for _, i := range v.lab.Topology.Nodes[name].Ifaces {
			for k, a := range i.Addrs {
				path := v.addrPath(i, k)
				ip := a.Addr()
				if ip.IsUnspecified() || ip.IsMulticast() || ip.IsLoopback() {
					v.errorf(path, "%s cannot be an interface address", a)
					continue
				}
				if ip.Is4() && a.Bits() < 31 {
					if ip == a.Masked().Addr() {
						v.errorf(path, "%s is the network address of %s; use a host address such as %s", a, a.Masked(), a.Masked().Addr().Next())
						continue
					}
					if ip == lastAddr(a) {
						v.errorf(path, "%s is the broadcast address of %s; use a host address such as %s", a, a.Masked(), ip.Prev())
						continue
					}
				}
				where := i.Node + ":" + i.Name
				if first, dup := owner[ip]; dup {
					v.errorf(path, "address %s is already assigned to %s; every address in a lab must be unique", ip, first)
					continue
				}
				owner[ip] = where
			}
		}
	}
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	x := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	x |= host
	return netip.AddrFrom4([4]byte{byte(x >> 24), byte(x >> 16), byte(x >> 8), byte(x)})
}

// onLink returns the interface of n whose subnet contains ip.
func onLink(n *Node, ip netip.Addr) (*Interface, bool) {
	for _, i := range n.Ifaces {
		for _, a := range i.Addrs {
			if a.Contains(ip) {
				return i, a.Addr() == ip
			}
		}
	}
	return nil, false
}

func describeAddrs(n *Node) string {
	var parts []string
	for _, i := range n.Ifaces {
		for _, a := range i.Addrs {
			parts = append(parts, a.String()+" on "+i.Name)
		}
	}
	if len(parts) == 0 {
		return "it has no addresses"
	}
	return "it has " + strings.Join(parts, ", ")
}

func (v *labChecker) routes() {
	for _, name := range v.lab.NodeNames() {
		n := v.lab.Topology.Nodes[name]
		path := "topology.nodes." + name
		check := func(p string, via netip.Addr) {
			i, own := onLink(n, via)
			switch {
			case own:
				v.errorf(p, "next hop %s is %s's own address; use the neighbour's address", via, name)
			case i == nil:
				v.errorf(p, "next hop %s is unreachable from %s: it is in none of the node's subnets (%s)", via, name, describeAddrs(n))
			}
		}
		if n.Gateway.IsValid() {
			check(path+".gateway", n.Gateway.Addr)
		}
		dests := map[netip.Prefix]bool{}
		if n.Gateway.IsValid() {
			dests[netip.MustParsePrefix("0.0.0.0/0")] = true
		}
		for ri, r := range n.Routes {
			rp := fmt.Sprintf("%s.routes[%d]", path, ri)
			if !r.Via.IsValid() || !r.To.IsValid() {
				continue
			}
			if r.To.Addr().Is4() != r.Via.Is4() {
				v.errorf(rp+".via", "route to %s cannot go via %s: the address families differ", r.To, r.Via)
				continue
			}
			if dests[r.To.Prefix] {
				v.errorf(rp+".to", "%s already has a route to %s (gateway: counts as a route to default)", name, r.To)
				continue
			}
			dests[r.To.Prefix] = true
			check(rp+".via", r.Via.Addr)
		}
	}
}

// natBoxes checks what a NAT box's own validation cannot see: that its
// outside interface exists on the node.
func (v *labChecker) natBoxes() {
	for _, name := range v.lab.NodeNames() {
		n := v.lab.Topology.Nodes[name]
		if n.Kind != KindNAT {
			continue
		}
		if n.NAT == nil {
			n.NAT = &natconf.Config{}
		}
		var names []string
		for _, i := range n.Ifaces {
			names = append(names, i.Name)
		}
		if err := n.NAT.CheckInterfaces(names); err != nil {
			v.sectionError("topology.nodes."+name+".nat", err)
		}
		if n.NAT.Outside == "" && !n.Gateway.IsValid() {
			hasDefault := false
			for _, r := range n.Routes {
				hasDefault = hasDefault || r.To.Bits() == 0
			}
			if !hasDefault {
				v.errorf("topology.nodes."+name, "NAT box %s needs nat.outside, or a default route (gateway:) whose interface is the outside", name)
			}
		}
	}
}

// connSide is one side of a connection as validation walks it: its path in
// the file ("ipsec.vpn.initiators[1]"), its key for messages and the peer.
type connSide struct {
	path, key string
	p         *Peer
	client    bool
}

// sides lists c's clients and its responder, with their paths.
func (c *IPsecConn) sides(path string) []connSide {
	var out []connSide
	for i, p := range c.Clients() {
		k := c.clientKey(i)
		out = append(out, connSide{path: path + "." + k, key: k, p: p, client: true})
	}
	return append(out, connSide{path: path + ".responder", key: "responder", p: &c.Responder})
}

// Validate-time view of the connection's resolved addresses.
func (v *labChecker) ipsec() {
	for _, name := range v.lab.ConnNames() {
		c := v.lab.IPsec[name]
		c.Name = name
		path := "ipsec." + name
		if !nodeNameRE.MatchString(name) {
			v.errs.add(v.lab.KeyPos(path), "connection name %q must start with a letter and use only letters, digits, '-' and '_'", name)
		}
		v.initiators(path, c)
		for _, side := range c.sides(path) {
			sp := side.path
			n := v.lab.Topology.Nodes[side.p.Node]
			if side.client && side.p.Node == "" && !v.given(sp) {
				continue // no initiator at all: said above
			}
			if n == nil {
				v.errorf(sp, "%s %q is not a node of this lab (nodes: %s)", side.key, side.p.Node, strings.Join(v.lab.NodeNames(), ", "))
				continue
			}
			if !n.Kind.IPsec() && kindKnown(n.Kind) {
				v.errorf(sp, "%s %s is a %s; IPsec connections need a node of kind gateway or strongswan (or vpnc, as the initiator)", side.key, side.p.Node, n.Kind)
			}
			if n.Kind == KindVPNC && side.key == "responder" {
				v.errorf(sp, "responder %s is a vpnc node, and vpnc is a client: it only initiates; make %s the initiator and a gateway or strongswan node the responder", side.p.Node, side.p.Node)
			}
			if side.p.Address.IsValid() {
				if _, own := onLink(n, side.p.Address.Addr); !own {
					v.errorf(sp+".address", "%s is not an address of %s (%s)", side.p.Address, side.p.Node, describeAddrs(n))
				}
				side.p.addrGiven, side.p.addrWhy = true, "as its address: says"
			} else if a, why, ok := defaultAddress(n); ok {
				side.p.Address, side.p.addrWhy = Addr{a}, why
			} else {
				v.errorf(sp, "cannot tell which address %s uses for IPsec: it has no addresses; give address:", side.p.Node)
			}
			if side.p.ID != "" {
				side.p.idGiven = true
				if _, _, err := ParseID(side.p.ID, side.p.Address.Addr); err != nil {
					v.errorf(sp+".id", "%s", err)
				}
			}
		}
		seen := map[string]string{}
		for _, side := range c.sides(path) {
			if !side.client || side.p.Node == "" {
				continue
			}
			if side.p.Node == c.Responder.Node {
				if len(c.Initiators) == 0 {
					v.errorf(path+".responder", "initiator and responder are the same node (%s)", side.p.Node)
				} else {
					v.errorf(side.path, "%s is the responder of %s; a client is another node", side.p.Node, name)
				}
			}
			if first, dup := seen[side.p.Node]; dup {
				v.errorf(side.path, "%s is already a client of %s (%s); each client is a node of its own", side.p.Node, name, first)
			}
			seen[side.p.Node] = side.key
		}
		v.connSettings(path, c)
		v.remoteAccess(path, c)
		for _, side := range c.sides(path) {
			v.sideCerts(c, certSide{path: side.path, p: side.p, peerInLab: true, labPKI: true, hybridClient: side.client && c.Auth.Method == AuthHybrid})
			if n := v.lab.Topology.Nodes[side.p.Node]; n != nil && n.Kind == KindStrongSwan && c.Auth.Method.Encrypts() {
				v.errorf(path+".auth.method", "%s is a strongswan node, and strongSwan does not implement %s (RFC 2409 §5.2/5.3): use pubkey, or a gateway node", side.p.Node, c.Auth.Method)
			}
			if n := v.lab.Topology.Nodes[side.p.Node]; n != nil && n.Kind == KindStrongSwan && c.IKE.DPD != nil && c.IKE.DPD.Mode == DPDOnDemand {
				v.errorf(path+".ike.dpd.mode", "%s is a strongswan node, and charon's IKEv1 DPD is periodic only (dpd_delay): use mode periodic, or a gateway node", side.p.Node)
			}
		}
		v.vpncClients(path, c)
	}
	v.labPKI()
}

// initiators checks that a connection names its initiator, or its
// initiators, once.
func (v *labChecker) initiators(path string, c *IPsecConn) {
	_, one := v.lab.pos[path+".initiator"]
	_, many := v.lab.pos[path+".initiators"]
	switch {
	case one && many:
		v.errorf(path+".initiators", "give initiator: (one) or initiators: (a list), not both")
		c.Initiators = nil
	case many && len(c.Initiators) == 0:
		v.errorf(path+".initiators", "initiators lists no client; give at least one side (a node name, or node: with its settings)")
	case !one && !many:
		if _, ok := v.lab.pos[path]; ok {
			v.errs.add(v.lab.Pos(path), "connection %s needs \"initiator\" (or \"initiators\", a list of clients)", c.Name)
		}
	}
}

// connSettings checks and completes a connection's authentication, phase 1 and
// phase 2 settings (shared by labs and the standalone daemon).
func (v *labChecker) connSettings(path string, c *IPsecConn) {
	keyTypeGiven := c.KeyType != ""
	switch {
	case !defaultWord(&c.Auth.Method, authMethods):
		v.errorf(path+".auth.method", "unknown auth method %q%s", c.Auth.Method, suggest(string(c.Auth.Method), wordStrings(authMethods)))
	case c.Auth.Method.PSK():
		if c.Auth.Secret == "" {
			for _, side := range c.sides(path) {
				if side.p.PSK == "" {
					v.errorf(path+".auth", "auth method %s needs a secret (auth.secret, or psk on every side)", c.Auth.Method)
					break
				}
			}
		}
		if keyTypeGiven {
			v.errorf(path+".key-type", "key-type chooses the lab PKI's keys for certificate authentication; this connection uses %s", c.Auth.Method)
		}
	default:
		if c.Auth.Secret != "" {
			v.errorf(path+".auth.secret", "auth.secret is a pre-shared key; method %s authenticates with certificates", c.Auth.Method)
		}
		for _, side := range c.sides(path) {
			if side.p.PSK != "" {
				v.errorf(side.path+".psk", "psk is a pre-shared key; method %s authenticates with certificates", c.Auth.Method)
			}
		}
	}
	if !defaultWord(&c.KeyType, keyTypes) {
		v.errorf(path+".key-type", "unknown key-type %q%s", c.KeyType, suggest(string(c.KeyType), wordStrings(keyTypes)))
	} else if c.Auth.Method.Encrypts() && !rsaKey(c.KeyType) {
		v.errorf(path+".key-type", "%s encrypts to the peer's RSA key; key-type %s is not RSA (use rsa-2048 or rsa-3072)", c.Auth.Method, c.KeyType)
	}
	ike := &c.IKE
	if !defaultWord(&ike.Mode, ikeModes) {
		v.errorf(path+".ike.mode", "ike mode %q is neither main nor aggressive", ike.Mode)
	}
	if len(ike.Proposals) == 0 {
		ike.Proposals = []string{"aes128-sha256-modp2048"}
	}
	for pi, s := range ike.Proposals {
		p, err := proposal.Parse(proposal.IKE, s)
		if err != nil {
			v.errorf(fmt.Sprintf("%s.ike.proposals[%d]", path, pi), "%s", err)
			continue
		}
		c.IKEProposals = append(c.IKEProposals, p)
	}
	// Aggressive Mode's first message goes before the responder chose a
	// proposal, yet it carries the KE of one group, and with public-key
	// encryption a hash (HASH(1)) and, revised, the cipher of the KE and ID
	// (RFC 2409 §5.2, §5.3): the proposals must share what it uses.
	if ike.Mode == AggressiveMode && len(c.IKEProposals) > 1 {
		first := c.IKEProposals[0]
		for pi, p := range c.IKEProposals[1:] {
			at := fmt.Sprintf("%s.ike.proposals[%d]", path, pi+1)
			switch {
			case p.Group != first.Group:
				v.errorf(at, "Aggressive Mode sends its Diffie-Hellman value in the first message, so all IKE proposals must share one group (%s, %s)", first, p)
			case c.Auth.Method.Encrypts() && p.Integ != first.Integ:
				v.errorf(at, "Aggressive Mode with %s hashes the responder's certificate (HASH(1)) in the first message, so all IKE proposals must share one hash (%s, %s)", c.Auth.Method, first, p)
			case c.Auth.Method == AuthRSARevised && (p.Encr != first.Encr || p.KeyBits != first.KeyBits):
				v.errorf(at, "Aggressive Mode with %s encrypts the first message's KE and ID with the cipher, so all IKE proposals must share one cipher (%s, %s)", c.Auth.Method, first, p)
			}
		}
	}
	if ike.Lifetime.Duration == 0 {
		ike.Lifetime.Duration = defaultIKELifetime
	}
	if !defaultWord(&ike.Reauth, reauthModes) {
		v.errorf(path+".ike.reauth", "reauth %q is neither on nor off", ike.Reauth)
	}
	if !defaultWord(&ike.NATT.Mode, nattModes) {
		v.errorf(path+".ike.nat-t", "nat-t %q is neither on nor off", ike.NATT.Mode)
	} else if ike.NATT.Mode == NATTOff && ike.NATT.Keepalive != (Keepalive{}) {
		v.errorf(path+".ike.nat-t.keepalive", "keepalives are part of NAT traversal, which is off here")
	}
	if ike.DPD != nil {
		if ike.DPD.Delay.Duration <= 0 {
			v.errorf(path+".ike.dpd.delay", "dpd delay must be more than 0")
		}
		if ike.DPD.Timeout.Duration == 0 {
			ike.DPD.Timeout.Duration = 5 * ike.DPD.Delay.Duration
		}
		if !defaultWord(&ike.DPD.Action, dpdActions) {
			v.errorf(path+".ike.dpd.action", "dpd action %q is not clear, restart or hold", ike.DPD.Action)
		}
		if !defaultWord(&ike.DPD.Mode, dpdModes) {
			v.errorf(path+".ike.dpd.mode", "dpd mode %q is neither periodic nor on-demand", ike.DPD.Mode)
		}
		if ike.DPD.Timeout.Duration < 0 {
			v.errorf(path+".ike.dpd.timeout", "dpd timeout cannot be negative")
		}
	}
	if ike.Retransmit.Tries < 0 || ike.Retransmit.Base < 0 {
		v.errorf(path+".ike.retransmit", "retransmit settings cannot be negative")
	}
	v.child(path+".child", c)
	v.sideSettings(path, c)
}

const defaultIKELifetime = 4 * 3600e9

func (v *labChecker) child(path string, c *IPsecConn) {
	ch := &c.Child
	if !defaultWord(&ch.Mode, childModes) {
		v.errorf(path+".mode", "child mode %q is neither tunnel nor transport", ch.Mode)
	}
	if c.ModeConfig() {
		v.modeConfigChild(path, c)
	} else if ch.Mode == "tunnel" {
		if len(ch.LocalTS) == 0 {
			v.errorf(path, "a tunnel-mode child needs local-ts (the initiator's protected subnet, e.g. 10.1.0.0/24)")
		}
		if len(ch.RemoteTS) == 0 {
			v.errorf(path, "a tunnel-mode child needs remote-ts (the responder's protected subnet, e.g. 10.2.0.0/24)")
		}
	}
	if len(ch.LocalTS) > 1 || len(ch.RemoteTS) > 1 {
		v.errorf(path, "IKEv1 Quick Mode carries one subnet per side; use one connection per pair of subnets")
	}
	// A transport-mode child protects the traffic of the two IKE endpoints,
	// as each sees them once IKE has run: through a NAT the responder's
	// selector for the initiator is the NAT's address, not the one the
	// initiator has (RFC 3948 §3.1.2). So its selectors are not filled in
	// here, and any given must name the endpoints.
	if ch.Mode == "transport" && len(c.Clients()) == 1 {
		for _, ts := range []struct {
			key  string
			list PrefixList
			side string
			addr Addr
		}{{"local-ts", ch.LocalTS, "initiator", c.Clients()[0].Address}, {"remote-ts", ch.RemoteTS, "responder", c.Responder.Address}} {
			if len(ts.list) == 1 && ts.addr.IsValid() && ts.list[0].Prefix != netip.PrefixFrom(ts.addr.Addr, 32) {
				v.errorf(path+"."+ts.key, "a transport-mode child protects the IKE endpoints' own traffic: %s must be the %s's address, %s/32, or be left out",
					ts.key, ts.side, ts.addr)
			}
		}
	}
	if len(ch.ESP) > 0 && len(ch.AH) > 0 {
		v.errorf(path+".ah", "give esp or ah, not both")
	}
	proto, list, key := proposal.ESP, ch.ESP, "esp"
	if len(ch.AH) > 0 {
		proto, list, key = proposal.AH, ch.AH, "ah"
	} else if len(list) == 0 {
		list = []string{"aes128-sha256"}
		ch.ESP = list
	}
	c.ChildProposals = v.childProposals(path, proto, key, list, ch.PFS, false)
	if ch.Lifetime.Duration == 0 {
		ch.Lifetime.Duration = 3600e9
	}
	if r := ch.RandTime; r != nil && r.Duration >= ch.Lifetime.Duration*9/10 {
		v.errorf(path+".rand-time", "rand-time %v must be less than the 90%% of lifetime %v at which the rekey falls", r.Duration, ch.Lifetime.Duration)
	}
	if r := ch.RandBytes; r != nil && (ch.LifeBytes == 0 || int64(*r) >= int64(ch.LifeBytes)*9/10) {
		v.errorf(path+".rand-bytes", "rand-bytes needs life-bytes, and must be less than 90%% of it")
	}
	if _, given := v.lab.pos[path+".start"]; !given && ch.Start == "" && c.ModeConfig() {
		// A client without an address has nothing to trap: it connects.
		ch.Start = StartAtDeploy
	}
	if !defaultWord(&ch.Start, startActions) {
		v.errorf(path+".start", "start %q is not trap, start or none", ch.Start)
	}
	if ch.ReplayWin < 0 || ch.ReplayWin > 4096 {
		v.errorf(path+".replay-window", "replay-window must be between 0 and 4096")
	}
}

// childProposals parses a child's proposals (list, written under
// path.key) with the PFS group pfs added to each. none, given on a side
// that has its own pfs (strip), removes the groups the list names.
func (v *labChecker) childProposals(path string, proto proposal.Protocol, key string, list []string, pfs string, strip bool) []proposal.Proposal {
	var group proposal.Group
	if pfs != "" && pfs != "none" {
		g, ok := proposal.GroupByName(pfs)
		if !ok {
			v.errorf(path+".pfs", "unknown PFS group %q (use a DH group such as modp2048, ecp256 or curve25519, or none)", pfs)
		}
		group = g
	}
	var out []proposal.Proposal
	for pi, s := range list {
		p, err := proposal.Parse(proto, s)
		if err != nil {
			v.errorf(fmt.Sprintf("%s.%s[%d]", path, key, pi), "%s", err)
			continue
		}
		switch {
		case group != 0:
			if p.Group != 0 && p.Group != group {
				v.errorf(fmt.Sprintf("%s.%s[%d]", path, key, pi), "proposal names group %s but pfs is %s", p.Group, group)
			}
			p = p.WithGroup(group)
		case strip && pfs == "none":
			p = p.WithGroup(0)
		}
		out = append(out, p)
	}
	return out
}

// defaultAddress is the address a node uses for IKE unless told otherwise: the
// address on the interface of its default route, else its first IPv4 address
// in the order its links and LANs are written. It says which, for `validate`.
func defaultAddress(n *Node) (netip.Addr, string, bool) {
	if n.Gateway.IsValid() {
		if i, _ := onLink(n, n.Gateway.Addr); i != nil {
			for _, a := range i.Addrs {
				if a.Contains(n.Gateway.Addr) {
					return a.Addr(), fmt.Sprintf("the address on the interface of its gateway %s", n.Gateway), true
				}
			}
		}
	}
	for _, i := range n.Ifaces {
		for _, a := range i.Addrs {
			if a.Addr().Is4() {
				return a.Addr(), "its first address, as it has no gateway: (give it one, or address: on this side, to choose)", true
			}
		}
	}
	return netip.Addr{}, "", false
}

// FindLink resolves a link named by one of its endpoints ("node:iface") or by
// its full name ("a:eth0--b:eth0").
func (l *Lab) FindLink(name string) *Link {
	for _, link := range l.Topology.Links {
		if link.Name == name {
			return link
		}
		for _, e := range link.Endpoints {
			if e.String() == name {
				return link
			}
		}
	}
	return nil
}

func (v *labChecker) linkNames() string {
	var out []string
	for _, link := range v.lab.Topology.Links {
		if len(link.Endpoints) > 0 {
			out = append(out, link.Endpoints[0].String())
		}
	}
	if len(out) > 6 {
		out = append(out[:6], "...")
	}
	return strings.Join(out, ", ")
}

func (v *labChecker) script() {
	for si, s := range v.lab.Script {
		path := fmt.Sprintf("script[%d]", si)
		s.Index = si
		s.Pos = v.lab.Pos(path)
		name, val, count := s.Action()
		if count != 1 {
			if count == 0 {
				v.errorf(path, "a script step needs one action (%s)", strings.Join(ActionNames(), ", "))
			} else {
				v.errorf(path, "a script step has exactly one action; split this one into %d steps", count)
			}
			continue
		}
		ap := path + "." + name
		needNode := func(field, node string, kinds ...Kind) {
			n := v.lab.Topology.Nodes[node]
			if n == nil {
				v.errorf(ap+"."+field, "%q is not a node of this lab (nodes: %s)", node, strings.Join(v.lab.NodeNames(), ", "))
				return
			}
			if len(kinds) > 0 && !containsKind(kinds, n.Kind) {
				v.errorf(ap+"."+field, "%s is a %s; %s needs a node of kind %s", node, n.Kind, name, joinKinds(kinds))
			}
		}
		needConn := func(field, conn string) *IPsecConn {
			c := v.lab.IPsec[conn]
			if c == nil {
				v.errorf(ap+"."+field, "%q is not a connection of this lab's ipsec block", conn)
			}
			return c
		}
		needLink := func(field, link string) {
			if v.lab.FindLink(link) == nil {
				v.errorf(ap+"."+field, "no link has endpoint %q (links: %s)", link, v.linkNames())
			}
		}
		switch a := val.(type) {
		case *PingStep:
			needNode("from", a.From)
		case *TrafficStep:
			needNode("from", a.From)
			v.traffic(ap, a)
		case *TunnelStep:
			if c := needConn("connection", a.Connection); c != nil && a.Node != "" && c.ClientOf(a.Node) == nil && a.Node != c.Responder.Node {
				v.errorf(ap+".node", "%s is not a side of connection %s", a.Node, a.Connection)
			}
		case *ImpairStep:
			needLink("link", a.Link)
			if a.Set == nil && !a.Reset {
				v.errorf(ap, "impair needs set: {...} or reset: true")
			}
		case *LinkStep:
			needLink("name", a.Name)
			if a.Down == a.Up {
				v.errorf(ap, "link needs exactly one of down: true or up: true")
			}
		case *NodeStep:
			switch name {
			case "nat-flush":
				needNode("node", a.Node, KindNAT)
			default:
				needNode("node", a.Node, KindGateway, KindStrongSwan, KindVPNC)
			}
		case *FaultStep:
			v.fault(ap, a)
		case *WaitStep:
			if a.Event == "" && a.For.Duration == 0 {
				v.errorf(ap, "wait needs a duration (wait: 5s) or an event (wait: {event: phase2-up})")
			}
			v.eventMatch(ap, a.EventMatch)
		case *ExpectStep:
			v.expect(ap, a, needNode, needConn)
		}
	}
}

// fault checks a fault step: a gateway (only ipseclab's own stack has the
// hooks; strongSwan's and vpnc's do not, and hosts run none), a connection
// of the lab, and a fault that makes sense, each problem at its key.
func (v *labChecker) fault(path string, a *FaultStep) {
	if n := v.lab.Topology.Nodes[a.Node]; n == nil {
		v.errorf(path+".node", "%q is not a node of this lab (nodes: %s)", a.Node, strings.Join(v.lab.NodeNames(), ", "))
	} else if n.Kind != KindGateway {
		v.errorf(path+".node", "%s is a %s node, which has no ipseclab IKE engine or data plane to inject faults into: faults act on gateway nodes", a.Node, n.Kind)
	}
	if a.Connection != "" && v.lab.IPsec[a.Connection] == nil {
		v.errorf(path+".connection", "%q is not a connection of this lab's ipsec block", a.Connection)
	}
	_, _, err := a.Fault()
	for _, e := range flattenErrors(err) {
		if e == nil {
			continue
		}
		at := path // Pos falls back to the step when the key is not written
		var fe *fault.FieldError
		if errors.As(e, &fe) && fe.Name != "" {
			at = path + "." + fe.Name
		}
		v.errorf(at, "fault: %s", e)
	}
}

// traffic checks a traffic step's words and its rate, which the step keeps as
// written for the runner to parse.
func (v *labChecker) traffic(path string, a *TrafficStep) {
	if a.Proto != "" && !slices.Contains(protos, a.Proto) {
		v.errorf(path+".proto", "proto %q is neither udp nor tcp", a.Proto)
	}
	if a.Rate != "" {
		if _, err := netem.ParseRate(a.Rate); err != nil {
			v.errorf(path+".rate", "rate: %s", err)
		}
	}
}

func knownEvent(k string) bool {
	for _, x := range events.KnownKinds() {
		if string(x) == k {
			return true
		}
	}
	return false
}

func eventKinds() []string {
	var out []string
	for _, k := range events.KnownKinds() {
		out = append(out, string(k))
	}
	return out
}

func (v *labChecker) eventMatch(path string, m EventMatch) {
	if m.Node != "" && v.lab.Topology.Nodes[m.Node] == nil {
		v.errorf(path+".node", "%q is not a node of this lab", m.Node)
	}
	if m.Connection != "" && v.lab.IPsec[m.Connection] == nil {
		v.errorf(path+".connection", "%q is not a connection of this lab", m.Connection)
	}
	if m.Link != "" && v.lab.FindLink(m.Link) == nil {
		v.errorf(path+".link", "no link has endpoint %q", m.Link)
	}
	if m.Event != "" && !knownEvent(m.Event) {
		v.errorf(path+".event", "unknown event %q%s", m.Event, suggest(m.Event, eventKinds()))
	}
}

func (v *labChecker) expect(path string, e *ExpectStep, needNode func(string, string, ...Kind), needConn func(string, string) *IPsecConn) {
	forms := 0
	if e.Event != "" {
		forms++
		v.eventMatch(path, e.EventMatch)
	}
	if e.Ping != nil {
		forms++
		needNode("ping.from", e.Ping.From)
		if !e.Ping.To.IsValid() {
			v.errorf(path+".ping", "ping needs to:")
		}
	}
	if e.Traffic != nil {
		forms++
		needNode("traffic.from", e.Traffic.From)
		v.traffic(path+".traffic", e.Traffic)
	}
	if e.MaxLoss != nil && e.Traffic == nil {
		v.errorf(path+".max-loss", "max-loss applies to a traffic expectation")
	}
	if e.SA != nil {
		forms++
		needNode("sa.node", e.SA.Node, KindGateway)
		needConn("sa.connection", e.SA.Connection)
		if !knownCounter(e.Counter) {
			v.errorf(path+".counter", "unknown SA counter %q%s", e.Counter, suggest(e.Counter, saCounters))
		}
		if e.Min == nil && e.Max == nil {
			v.errorf(path, "an SA expectation needs min: or max:")
		}
	}
	if forms != 1 {
		v.errorf(path, "an expectation checks one thing: an event (event:), a ping (ping:), traffic (traffic:) or an SA counter (sa:)")
	}
	if (e.Success != nil || e.MaxSuccess != nil) && e.Ping == nil {
		v.errorf(path, "success: and max-success: apply to a ping expectation")
	}
	if e.Success != nil && e.MaxSuccess != nil && *e.Success > *e.MaxSuccess {
		v.errorf(path+".success", "success %g%% is above max-success %g%%", *e.Success, *e.MaxSuccess)
	}
	if e.Absent && e.Event == "" {
		v.errorf(path+".absent", "absent: applies to an event expectation")
	}
}

var saCounters = []string{"packets-in", "packets-out", "bytes-in", "bytes-out", "replay-drops", "integrity-failures", "policy-drops", "other-drops", "mtu"}

func knownCounter(c string) bool {
	for _, x := range saCounters {
		if x == c {
			return true
		}
	}
	return false
}

func containsKind(ks []Kind, k Kind) bool {
	for _, x := range ks {
		if x == k {
			return true
		}
	}
	return false
}

func joinKinds(ks []Kind) string {
	var s []string
	for _, k := range ks {
		s = append(s, string(k))
	}
	return strings.Join(s, " or ")
}

// MaxLANMembers is the most members a LAN has: its bridge numbers ports in
// 10 bits (BR_MAX_PORTS), and the 1,025th is refused with "exchange full".
const MaxLANMembers = 1024

package web

import (
	"encoding/json"
	"regexp"
	"sort"
	"strings"

	gojson "github.com/goccy/go-json"

	"github.com/ipseclab/ipseclab/events"
	"github.com/ipseclab/ipseclab/topology"
)

// LabView is the lab as /api/lab describes it to the page: its nodes with
// their interfaces, its links and LANs with their impairments as the lab
// file declares them (changes arrive as link-impair events), and its IPsec
// connections.
type LabView struct {
	Name        string     `json:"name"`
	Mode        Mode       `json:"mode"`
	Seed        *uint64    `json:"seed"`
	Nodes       []NodeView `json:"nodes"`
	Links       []LinkView `json:"links"`
	LANs        []LANView  `json:"lans"`
	Connections []ConnView `json:"connections"`
	// Inferred is set when no lab file was found and the nodes and links
	// are those the events name.
	Inferred bool `json:"inferred,omitempty"`
}

// NodeView is one node.
type NodeView struct {
	Name       string      `json:"name"`
	Kind       string      `json:"kind"`
	Interfaces []IfaceView `json:"interfaces"`
}

// IfaceView is one interface of a node; Link is the id of its link or LAN.
type IfaceView struct {
	Name      string   `json:"name"`
	Addresses []string `json:"addresses"`
	Link      string   `json:"link"`
}

// EndpointView is node:interface.
type EndpointView struct {
	Node  string `json:"node"`
	Iface string `json:"iface"`
}

// LinkView is a point-to-point link; Impair is its impairment in the lab
// file's words ({} when it has none).
type LinkView struct {
	ID     string          `json:"id"`
	A      EndpointView    `json:"a"`
	B      EndpointView    `json:"b"`
	Impair json.RawMessage `json:"impair"`
}

// LANView is a broadcast segment.
type LANView struct {
	ID      string          `json:"id"`
	Name    string          `json:"name"`
	Members []EndpointView  `json:"members"`
	Impair  json.RawMessage `json:"impair"`
}

// ConnView is an IPsec connection: its initiators, then its responder.
type ConnView struct {
	Name  string   `json:"name"`
	Nodes []string `json:"nodes"`
}

var emptyObject = json.RawMessage("{}")

// LabView returns the lab as the page sees it.
func (s *Server) LabView() *LabView {
	var v *LabView
	if s.cfg.Lab != nil {
		v = viewOfLab(s.cfg.Lab)
	} else {
		v = s.inferLab()
	}
	v.Mode = s.cfg.Mode
	if s.cfg.Name != "" {
		v.Name = s.cfg.Name
	}
	if seed, ok := s.seed(); ok {
		v.Seed = &seed
	}
	return v
}

// viewOfLab describes a lab file.
func viewOfLab(lab *topology.Lab) *LabView {
	v := &LabView{Name: lab.Name, Seed: lab.Seed, Nodes: []NodeView{}, Links: []LinkView{}, LANs: []LANView{}, Connections: []ConnView{}}
	for _, name := range lab.NodeNames() {
		n := lab.Topology.Nodes[name]
		nv := NodeView{Name: name, Kind: string(n.Kind), Interfaces: []IfaceView{}}
		for _, i := range n.Ifaces {
			iv := IfaceView{Name: i.Name, Addresses: []string{}}
			for _, a := range i.Addrs {
				iv.Addresses = append(iv.Addresses, a.String())
			}
			switch {
			case i.Link != nil:
				iv.Link = i.Link.Name
			case i.LAN != nil:
				iv.Link = i.LAN.Name
			}
			nv.Interfaces = append(nv.Interfaces, iv)
		}
		v.Nodes = append(v.Nodes, nv)
	}
	for _, l := range lab.Topology.Links {
		if len(l.Endpoints) != 2 {
			continue
		}
		lv := LinkView{ID: l.Name, A: EndpointView(l.Endpoints[0]), B: EndpointView(l.Endpoints[1]), Impair: emptyObject}
		if l.Impair != nil {
			if b, err := json.Marshal(l.Impair); err == nil {
				lv.Impair = b
			}
		}
		v.Links = append(v.Links, lv)
	}
	for _, lan := range lab.Topology.LANs {
		lv := LANView{ID: lan.Name, Name: lan.Name, Members: []EndpointView{}, Impair: emptyObject}
		for _, m := range lan.Members {
			lv.Members = append(lv.Members, EndpointView(m))
		}
		v.LANs = append(v.LANs, lv)
	}
	for _, name := range lab.ConnNames() {
		c := lab.IPsec[name]
		cv := ConnView{Name: name}
		for _, p := range c.Clients() {
			cv.Nodes = append(cv.Nodes, p.Node)
		}
		cv.Nodes = append(cv.Nodes, c.Responder.Node)
		v.Connections = append(v.Connections, cv)
	}
	return v
}

// seed is the seed the run used, from its lab-seed event.
func (s *Server) seed() (uint64, bool) {
	var seed uint64
	found := false
	s.hub.each(func(e entry) bool {
		if !hasKind(e.line, events.LabSeed) {
			return true
		}
		var ev struct {
			Fields struct {
				Seed *uint64 `json:"seed"`
			} `json:"fields"`
		}
		if gojson.Unmarshal(e.line, &ev) == nil && ev.Fields.Seed != nil {
			seed, found = *ev.Fields.Seed, true
			return false
		}
		return true
	})
	return seed, found
}

// hasKind is a quick test of an event's kind on its JSON line, before
// decoding it.
func hasKind(line []byte, k events.Kind) bool {
	return strings.Contains(string(line), `"kind":"`+string(k)+`"`)
}

// createdKind reads a node's kind from its node-created message, "gw-a
// (gateway) in namespace ...".
var createdKind = regexp.MustCompile(`^\S+ \(([a-z]+)\)`)

// inferLab describes the lab from its events when no lab file is known:
// the nodes they name (with the kinds node-created events give, or
// "gateway" for a node that speaks IKE), the links link-created events
// name (a:eth0--b:eth0), and the connections by the nodes that speak for
// them.
func (s *Server) inferLab() *LabView {
	v := &LabView{Inferred: true, Nodes: []NodeView{}, Links: []LinkView{}, LANs: []LANView{}, Connections: []ConnView{}}
	kinds := map[string]string{}
	ifaces := map[string]map[string]string{} // node → iface → link
	conns := map[string]map[string]bool{}
	links := map[string]bool{}
	var linkOrder []string
	s.hub.each(func(en entry) bool {
		var e struct {
			Lab     string      `json:"lab"`
			Node    string      `json:"node"`
			Conn    string      `json:"connection"`
			Link    string      `json:"link"`
			Kind    events.Kind `json:"kind"`
			Message string      `json:"message"`
		}
		if gojson.Unmarshal(en.line, &e) != nil {
			return true
		}
		if v.Name == "" {
			v.Name = e.Lab
		}
		if e.Node != "" {
			if _, ok := kinds[e.Node]; !ok {
				kinds[e.Node] = ""
			}
			switch {
			case e.Kind == events.NodeCreated:
				if m := createdKind.FindStringSubmatch(e.Message); m != nil {
					kinds[e.Node] = m[1]
				}
			case kinds[e.Node] == "" && (e.Kind == events.IKEMessage || e.Kind == events.Phase1Up):
				kinds[e.Node] = string(topology.KindGateway)
			}
			if e.Conn != "" {
				if conns[e.Conn] == nil {
					conns[e.Conn] = map[string]bool{}
				}
				conns[e.Conn][e.Node] = true
			}
		}
		if e.Kind == events.LinkCreated && e.Link != "" && !links[e.Link] {
			links[e.Link] = true
			linkOrder = append(linkOrder, e.Link)
		}
		return true
	})
	for _, id := range linkOrder {
		a, b, ok := strings.Cut(id, "--")
		if !ok {
			continue
		}
		an, ai, ok1 := strings.Cut(a, ":")
		bn, bi, ok2 := strings.Cut(b, ":")
		if !ok1 || !ok2 {
			continue
		}
		v.Links = append(v.Links, LinkView{ID: id, A: EndpointView{an, ai}, B: EndpointView{bn, bi}, Impair: emptyObject})
		for _, ep := range [][2]string{{an, ai}, {bn, bi}} {
			if _, ok := kinds[ep[0]]; !ok {
				kinds[ep[0]] = ""
			}
			if ifaces[ep[0]] == nil {
				ifaces[ep[0]] = map[string]string{}
			}
			ifaces[ep[0]][ep[1]] = id
		}
	}
	for _, name := range sortedKeys(kinds) {
		kind := kinds[name]
		if kind == "" {
			kind = string(topology.KindHost)
		}
		nv := NodeView{Name: name, Kind: kind, Interfaces: []IfaceView{}}
		for _, i := range sortedKeys(ifaces[name]) {
			nv.Interfaces = append(nv.Interfaces, IfaceView{Name: i, Addresses: []string{}, Link: ifaces[name][i]})
		}
		v.Nodes = append(v.Nodes, nv)
	}
	for _, c := range sortedKeys(conns) {
		v.Connections = append(v.Connections, ConnView{Name: c, Nodes: sortedKeys(conns[c])})
	}
	return v
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

package topology

import (
	"fmt"
	"strings"
	"unicode"
)

// GraphFormats are the formats Graph draws.
var GraphFormats = []string{"dot", "mermaid", "ascii"}

func (l *Lab) addrsOf(node, iface string) string {
	n := l.Topology.Nodes[node]
	if n == nil {
		return ""
	}
	if i := n.Iface(iface); i != nil {
		var s []string
		for _, a := range i.Addrs {
			s = append(s, a.String())
		}
		return strings.Join(s, ",")
	}
	return ""
}

// dotString is a Graphviz quoted string of the lines. Graphviz, not Go, reads
// it: quotes and backslashes are escaped, and \n between the lines is
// Graphviz's own line break.
func dotString(lines ...string) string {
	esc := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", " ")
	quoted := make([]string, len(lines))
	for i, l := range lines {
		quoted[i] = esc.Replace(l)
	}
	return `"` + strings.Join(quoted, `\n`) + `"`
}

var mermaidShapes = map[Kind][2]string{
	KindHost: {"[", "]"}, KindRouter: {"((", "))"}, KindGateway: {"{{", "}}"}, KindNAT: {"[/", "/]"}, KindStrongSwan: {"{{", "}}"}, KindVPNC: {"[", "]"},
}

// Graph draws the lab: Graphviz dot, a Mermaid flowchart, or plain text.
func (l *Lab) Graph(format string) (string, error) {
	var b strings.Builder
	switch format {
	case "dot":
		fmt.Fprintf(&b, "graph %s {\n  label=%s;\n  node [shape=box, style=rounded];\n", dotString(l.Name), dotString(l.Name+": "+l.Description))
		for _, name := range l.NodeNames() {
			shape := map[Kind]string{KindHost: "box", KindRouter: "circle", KindGateway: "doubleoctagon", KindNAT: "hexagon", KindStrongSwan: "doubleoctagon", KindVPNC: "box"}[l.Topology.Nodes[name].Kind]
			fmt.Fprintf(&b, "  %s [label=%s, shape=%s];\n", dotString(name), dotString(name, string(l.Topology.Nodes[name].Kind)), shape)
		}
		for _, link := range l.Topology.Links {
			a, z := link.Endpoints[0], link.Endpoints[1]
			fmt.Fprintf(&b, "  %s -- %s [taillabel=%s, headlabel=%s];\n", dotString(a.Node), dotString(z.Node),
				dotString(a.Iface+" "+l.addrsOf(a.Node, a.Iface)), dotString(z.Iface+" "+l.addrsOf(z.Node, z.Iface)))
		}
		for _, lan := range l.Topology.LANs {
			fmt.Fprintf(&b, "  %s [label=%s, shape=ellipse];\n", dotString("lan:"+lan.Name), dotString("LAN "+lan.Name))
			for _, m := range lan.Members {
				fmt.Fprintf(&b, "  %s -- %s [taillabel=%s];\n", dotString(m.Node), dotString("lan:"+lan.Name), dotString(m.Iface+" "+l.addrsOf(m.Node, m.Iface)))
			}
		}
		for _, name := range l.ConnNames() {
			c := l.IPsec[name]
			for _, ini := range c.Clients() {
				fmt.Fprintf(&b, "  %s -- %s [style=dashed, color=blue, label=%s];\n", dotString(ini.Node), dotString(c.Responder.Node), dotString("IPsec "+name))
			}
		}
		b.WriteString("}\n")
	case "mermaid":
		b.WriteString("flowchart LR\n")
		// A quote would end a Mermaid label early: Mermaid spells it #quot;.
		q := strings.NewReplacer(`"`, "#quot;").Replace
		// A Mermaid ID is letters, digits and _: anything else is spelled _.
		id := func(s string) string {
			return strings.Map(func(r rune) rune {
				if r < 0x80 && (unicode.IsLetter(r) || unicode.IsDigit(r)) {
					return r
				}
				return '_'
			}, s)
		}
		for _, name := range l.NodeNames() {
			shape := mermaidShapes[l.Topology.Nodes[name].Kind]
			fmt.Fprintf(&b, "  %s%s\"%s<br/>%s\"%s\n", id(name), shape[0], q(name), l.Topology.Nodes[name].Kind, shape[1])
		}
		for _, link := range l.Topology.Links {
			a, z := link.Endpoints[0], link.Endpoints[1]
			fmt.Fprintf(&b, "  %s ---|\"%s %s — %s %s\"| %s\n", id(a.Node), q(a.Iface), l.addrsOf(a.Node, a.Iface), q(z.Iface), l.addrsOf(z.Node, z.Iface), id(z.Node))
		}
		for _, lan := range l.Topology.LANs {
			fmt.Fprintf(&b, "  lan_%s([\"LAN %s\"])\n", id(lan.Name), q(lan.Name))
			for _, m := range lan.Members {
				fmt.Fprintf(&b, "  %s ---|\"%s %s\"| lan_%s\n", id(m.Node), q(m.Iface), l.addrsOf(m.Node, m.Iface), id(lan.Name))
			}
		}
		for _, name := range l.ConnNames() {
			c := l.IPsec[name]
			for _, ini := range c.Clients() {
				fmt.Fprintf(&b, "  %s -.IPsec %s.- %s\n", id(ini.Node), name, id(c.Responder.Node))
			}
		}
	case "ascii":
		fmt.Fprintf(&b, "lab %s", l.Name)
		if l.Description != "" {
			fmt.Fprintf(&b, ": %s", l.Description)
		}
		b.WriteString("\n\nnodes\n")
		for _, name := range l.NodeNames() {
			n := l.Topology.Nodes[name]
			fmt.Fprintf(&b, "  %-14s %-10s", name, n.Kind)
			if n.Gateway.IsValid() {
				fmt.Fprintf(&b, " default via %s", n.Gateway)
			}
			b.WriteString("\n")
		}
		if len(l.Topology.Links) > 0 {
			b.WriteString("\nlinks\n")
		}
		for _, link := range l.Topology.Links {
			a, z := link.Endpoints[0], link.Endpoints[1]
			left := fmt.Sprintf("%s:%s %s", a.Node, a.Iface, l.addrsOf(a.Node, a.Iface))
			fmt.Fprintf(&b, "  %-36s ──── %s:%s %s\n", left, z.Node, z.Iface, l.addrsOf(z.Node, z.Iface))
		}
		for _, lan := range l.Topology.LANs {
			fmt.Fprintf(&b, "\nLAN %s\n", lan.Name)
			for i, m := range lan.Members {
				branch := "├─"
				if i == len(lan.Members)-1 {
					branch = "└─"
				}
				fmt.Fprintf(&b, "  %s %s:%s %s\n", branch, m.Node, m.Iface, l.addrsOf(m.Node, m.Iface))
			}
		}
		if len(l.IPsec) > 0 {
			b.WriteString("\nIPsec\n")
		}
		for _, name := range l.ConnNames() {
			c := l.IPsec[name]
			ts := fmt.Sprintf("%v ⇄ %v", c.Child.LocalTS, c.Child.RemoteTS)
			if len(c.Child.LocalTS) == 0 {
				ts = "between the IKE endpoints"
			}
			if c.ModeConfig() {
				split := "everything"
				if len(c.Responder.SplitInclude) > 0 {
					split = fmt.Sprint(c.Responder.SplitInclude)
				}
				ts = fmt.Sprintf("Mode Config address from %s ⇄ %s", c.Responder.Pool, split)
			}
			var clients []string
			for _, ini := range c.Clients() {
				clients = append(clients, fmt.Sprintf("%s (%s)", ini.Node, ini.Address))
			}
			fmt.Fprintf(&b, "  %-10s %s ⇄ %s (%s)  %s mode, %s, child %s %s\n", name, strings.Join(clients, ", "),
				c.Responder.Node, c.Responder.Address, c.IKE.Mode, strings.Join(c.IKE.Proposals, ","), c.Child.Mode, ts)
		}
	default:
		return "", fmt.Errorf("unknown graph format %q (formats: %s)", format, strings.Join(GraphFormats, ", "))
	}
	return b.String(), nil
}

package topology

import (
	"bytes"
	"encoding/xml"
	"os/exec"
	"strings"
	"testing"

	"github.com/ipseclab/ipseclab/internal/testenv"
)

// svgNode is what Graphviz drew for a node: its name and its lines of text.
type svgNode struct {
	Class string   `xml:"class,attr"`
	Title string   `xml:"title"`
	Texts []string `xml:"text"`
}

// renderDot runs Graphviz on a dot graph and returns the nodes it drew.
func renderDot(t *testing.T, graph string) map[string][]string {
	t.Helper()
	dot := testenv.NeedCommand(t, "dot")
	cmd := exec.Command(dot, "-Tsvg")
	cmd.Stdin = strings.NewReader(graph)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("dot refuses the graph: %v\n%s\n%s", err, stderr.String(), graph)
	}
	var svg struct {
		Groups []struct {
			Nodes []svgNode `xml:"g"`
		} `xml:"g"`
	}
	if err := xml.Unmarshal(out.Bytes(), &svg); err != nil {
		t.Fatalf("dot's SVG: %v", err)
	}
	nodes := map[string][]string{}
	for _, g := range svg.Groups {
		for _, n := range g.Nodes {
			if n.Class == "node" {
				nodes[n.Title] = n.Texts
			}
		}
	}
	return nodes
}

// The dot format puts a node's kind on a second line, as Graphviz draws it.
func TestGraphDotDrawsTheKindOnASecondLine(t *testing.T) {
	src := replace(t, "description: two sites", `description: two "sites" \ one lab`)
	lab, err := Parse("lab.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	graph, err := lab.Graph("dot")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(graph, `\\n`) {
		t.Errorf("the graph writes an escaped backslash before n, which Graphviz shows as \\n:\n%s", graph)
	}
	nodes := renderDot(t, graph)
	for name, kind := range map[string]string{"a": "host", "gw1": "gateway", "r": "router", "lan:lan2": ""} {
		want := []string{name, kind}
		if kind == "" {
			want = []string{"LAN lan2"}
		}
		if got := nodes[name]; strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("node %s is drawn with the lines %q, want %q", name, got, want)
		}
	}
}

package timeline

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ipseclab/ipseclab/events"
	"github.com/ipseclab/ipseclab/labs"
	"github.com/ipseclab/ipseclab/topology"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

// The recordings in testdata are `ipseclab run LAB --json --keys` of shipped
// labs, as the engine published them (its order included).
func replay(t *testing.T, lab string, opt Options) string {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", lab+".jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	l, _, err := labs.Load(lab)
	if err != nil {
		t.Fatal(err)
	}
	opt.Names, opt.Silent = map[string]string{}, map[string]bool{}
	for _, n := range l.NodeNames() {
		node := l.Topology.Nodes[n]
		for _, i := range node.Ifaces {
			for _, a := range i.Addrs {
				opt.Names[a.Addr().String()] = n
			}
		}
		opt.Silent[n] = node.Kind == topology.KindStrongSwan
	}
	var b bytes.Buffer
	tl := New(&b, opt)
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var e events.Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatal(err)
		}
		tl.Write(e)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	tl.Flush()
	return b.String()
}

// checkWidth fails for every line wider than width columns, colours aside.
func checkWidth(t *testing.T, out string, width int) {
	t.Helper()
	for i, l := range strings.Split(out, "\n") {
		if w := DisplayWidth(l); w > width {
			t.Errorf("line %d is %d columns wide, more than %d:\n%s", i+1, w, width, StripANSI(l))
		}
	}
}

func TestGolden(t *testing.T) {
	for _, c := range []struct {
		name string
		lab  string
		opt  Options
	}{
		{"site-to-site-80", "site-to-site", Options{Explain: true, Keys: true, Width: 80}},
		{"site-to-site-140", "site-to-site", Options{Explain: true, Keys: true, Width: 140}},
		{"site-to-site-log", "site-to-site", Options{Explain: true}},
		{"site-to-site-verbose-80", "site-to-site", Options{Verbose: true, Width: 80}},
		{"pfs-rekey-80", "pfs-rekey", Options{Explain: true, Width: 80}},
		{"pfs-rekey-140", "pfs-rekey", Options{Explain: true, Width: 140}},
		{"dpd-80", "dpd", Options{Explain: true, Width: 80}},
		{"dpd-140", "dpd", Options{Explain: true, Width: 140}},
		{"nat-traversal-80", "nat-traversal", Options{Explain: true, Keys: true, Width: 80}},
		{"nat-traversal-140", "nat-traversal", Options{Explain: true, Keys: true, Width: 140}},
		{"lossy-link-80", "lossy-link", Options{Explain: true, Width: 80}},
	} {
		t.Run(c.name, func(t *testing.T) {
			out := replay(t, c.lab, c.opt)
			if c.opt.Width > 0 {
				checkWidth(t, out, c.opt.Width)
			}
			golden := filepath.Join("testdata", "golden", c.name+".txt")
			if *update {
				if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, []byte(out), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if out != string(want) {
				t.Errorf("output differs from %s (run with -update to accept it):\n%s", golden, diff(string(want), out))
			}
		})
	}
}

// The width is counted on the screen: colour codes take no column, and the
// 80-column output stays within 80 with them.
func TestColourFitsWidth(t *testing.T) {
	out := replay(t, "site-to-site", Options{Explain: true, Keys: true, Color: true, Width: 80})
	if !strings.Contains(out, "\033[") {
		t.Fatal("no colour with Options.Color")
	}
	checkWidth(t, out, 80)
}

// diff shows the first lines that differ, enough to see what changed.
func diff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	shown := 0
	for i := 0; i < max(len(w), len(g)) && shown < 10; i++ {
		var a, c string
		if i < len(w) {
			a = w[i]
		}
		if i < len(g) {
			c = g[i]
		}
		if a != c {
			b.WriteString("line " + strconv.Itoa(i+1) + "\n  want: " + a + "\n  got:  " + c + "\n")
			shown++
		}
	}
	return b.String()
}

package topology_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/ipseclab/ipseclab/internal/testenv"
)

// The module's import rules are checked here, beside the package they exist
// for most, because this package's tests need no root and run in a moment.

const module = "github.com/ipseclab/ipseclab"

// A teacher writes and checks a lab on a laptop and runs it on Linux:
// `go test ./...` catches a change that would stop that, before a release
// does. .ci/run builds the same.
func TestPortableBuildsForDarwinAndWindows(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-compiling for darwin and windows takes a while the first time")
	}
	gocmd := testenv.NeedCommand(t, "go")
	for _, goos := range []string{"darwin", "windows"} {
		// Several packages at once: go build checks them and writes nothing.
		cmd := exec.Command(gocmd, "build", module+"/topology/...", module+"/labs/...", module+"/cmd/ipseclab")
		cmd.Env = append(os.Environ(), "GOOS="+goos, "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("GOOS=%s go build ./topology/... ./labs/... ./cmd/ipseclab: %v\n%s", goos, err, out)
		}
	}
}

// importRule says which packages of the module must never depend on which
// others, directly or not, tests included.
type importRule struct {
	rule  string
	from  func(pkg string) bool
	never []string // "x" is package x alone, "x/..." is x and every package under it
}

var importRules = []importRule{
	{
		rule: "what reads a lab file builds on any OS",
		from: in(module+"/topology/...", module+"/impair/netem", module+"/nat/natconf", module+"/labs"),
		never: []string{
			module + "/labrun/...", module + "/strongswan/...", module + "/impair", module + "/nat", module + "/internal/namespace",
			module + "/internal/testenv/netenv", module + "/ipsec/esp/...", module + "/ipsec/stack/...",
			"golang.org/x/sys/unix", "github.com/vishvananda/...", "github.com/google/nftables/...",
		},
	},
	{
		// strongswan, charon's driver, is not the lab runtime: the interop
		// tests of ipsec use it.
		rule:  "ipsec, impair and nat never import the lab runtime",
		from:  in(module+"/ipsec/...", module+"/impair/...", module+"/nat/..."),
		never: []string{module + "/labrun/..."},
	},
	{
		rule:  "nothing below cmd imports it",
		from:  func(pkg string) bool { return !in(module + "/cmd/...")(pkg) },
		never: []string{module + "/cmd/..."},
	},
}

// in matches an import path against patterns as go list reads them.
func in(patterns ...string) func(string) bool {
	return func(pkg string) bool {
		return slices.ContainsFunc(patterns, func(p string) bool {
			if dir, ok := strings.CutSuffix(p, "/..."); ok {
				return pkg == dir || strings.HasPrefix(pkg, dir+"/")
			}
			return pkg == p
		})
	}
}

// listed is one package as go list -test -deps describes it. A package's
// tests show as variants: "p [p.test]" (with its internal tests) and "p_test
// [p.test]", which import the variants of what they test.
type listed struct {
	ImportPath string
	Imports    []string
}

// plain strips the test variant from an import path: "p [p.test]" → "p".
func plain(path string) string {
	p, _, _ := strings.Cut(path, " ")
	return p
}

// TestImportRules checks importRules against what go list says every package
// of the module, and each of its tests, imports.
func TestImportRules(t *testing.T) {
	gocmd := testenv.NeedCommand(t, "go")
	out, err := exec.Command(gocmd, "list", "-test", "-deps", "-json=ImportPath,Imports", module+"/...").Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("go list: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("go list: %v", err)
	}
	pkgs := map[string]listed{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p listed
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("go list output: %v", err)
		}
		pkgs[p.ImportPath] = p
	}

	checked := map[string]int{}
	reported := map[string]bool{}
	for _, path := range slices.Sorted(maps.Keys(pkgs)) {
		// A test's main package only imports the variants, checked themselves.
		if strings.HasSuffix(path, ".test") {
			continue
		}
		pkg := strings.TrimSuffix(plain(path), "_test")
		if !strings.HasPrefix(pkg, module+"/") {
			continue
		}
		for _, r := range importRules {
			if !r.from(pkg) {
				continue
			}
			checked[r.rule]++
			for _, chain := range importChains(pkgs, path, in(r.never...)) {
				bad := chain[len(chain)-1]
				if !reported[pkg+" "+bad] {
					reported[pkg+" "+bad] = true
					t.Errorf("%s, but %s depends on %s: %s", r.rule, pkg, bad, strings.Join(chain, " → "))
				}
			}
		}
	}
	for _, r := range importRules {
		if checked[r.rule] == 0 {
			t.Errorf("rule %q applies to no package: go list gave %d", r.rule, len(pkgs))
		}
	}
}

// importChains follows the imports from one package, breadth first, and
// returns the shortest chain to each forbidden package it meets, without
// following those further: a broken rule says where to cut, once.
func importChains(pkgs map[string]listed, from string, forbidden func(string) bool) [][]string {
	prev := map[string]string{from: ""}
	queue := []string{from}
	var chains [][]string
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		if cur != from && forbidden(plain(cur)) {
			var chain []string
			for p := cur; p != ""; p = prev[p] {
				chain = append(chain, plain(p))
			}
			slices.Reverse(chain)
			chains = append(chains, chain)
			continue
		}
		for _, next := range pkgs[cur].Imports {
			if _, seen := prev[next]; !seen {
				prev[next] = cur
				queue = append(queue, next)
			}
		}
	}
	return chains
}

package topology_test

import (
	"io/fs"
	"os"
	"path"
	"strings"
	"testing"

	"github.com/ipseclab/ipseclab/labs"
	"github.com/ipseclab/ipseclab/topology"
)

// shippedLabs returns every embedded lab file by directory, and the README's
// example lab as "README.md".
func shippedLabs(t *testing.T) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	dirs, err := fs.ReadDir(labs.FS(), ".")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range dirs {
		if !d.IsDir() {
			continue
		}
		b, err := fs.ReadFile(labs.FS(), d.Name()+"/"+topology.LabFileName)
		if err != nil {
			t.Fatal(err)
		}
		out[d.Name()+"/"+topology.LabFileName] = b
	}
	if len(out) < 10 {
		t.Fatalf("only %d shipped labs found", len(out))
	}
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	// The example is the YAML block under "## The lab file".
	s := string(readme)
	i := strings.Index(s, "## The lab file")
	j := strings.Index(s[i:], "```yaml\n")
	if i < 0 || j < 0 {
		t.Fatal("README.md has no YAML example under \"## The lab file\"")
	}
	s = s[i+j+len("```yaml\n"):]
	out["README.md"] = []byte(s[:strings.Index(s, "```")])
	return out
}

// Every shipped lab and the README's example validate, static reachability
// included, and each says which address its sides use for IKE.
func TestShippedLabsAndTheReadmeExampleValidate(t *testing.T) {
	for name, src := range shippedLabs(t) {
		// A lab's files (certificates) are read beside it, from the embedded FS.
		lab, err := topology.ParseFiles(name, src, topology.FSReader(labs.FS(), path.Dir(name)))
		if err != nil {
			t.Errorf("%s is refused:\n%v", name, err)
			continue
		}
		// One endpoint per side: the responder and each initiator.
		sides := 0
		for _, c := range lab.IPsec {
			sides += 1 + len(c.Clients())
		}
		if got := len(lab.IKEEndpoints()); got != sides {
			t.Errorf("%s: %d IKE endpoints for %d sides", name, got, sides)
		}
	}
}

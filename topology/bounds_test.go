package topology

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const boundsLab = `name: bounds
topology:
  nodes:
    a: {kind: host}
script:
`

// A runaway lab file is refused at once, at its place: too many bytes at
// line 1, too many steps at the first step over the bound.
func TestLabFileBounds(t *testing.T) {
	steps := func(n int) string {
		return boundsLab + strings.Repeat("  - wait: 1s\n", n)
	}
	if _, err := Parse("ok.yaml", []byte(steps(MaxScriptSteps))); err != nil {
		t.Fatalf("a script of %d steps was refused: %v", MaxScriptSteps, err)
	}
	_, err := Parse("long.yaml", []byte(steps(MaxScriptSteps+1)))
	firstOver := strings.Count(boundsLab, "\n") + MaxScriptSteps + 1
	if err == nil || !strings.Contains(err.Error(), "long.yaml:"+strconv.Itoa(firstOver)+":") || !strings.Contains(err.Error(), "at most 10000") {
		t.Errorf("a script of %d steps: %v, want a refusal at line %d", MaxScriptSteps+1, err, firstOver)
	}

	big := filepath.Join(t.TempDir(), "big.yaml")
	pad := "# " + strings.Repeat("x", 98) + "\n"
	if err := os.WriteFile(big, []byte(boundsLab+strings.Repeat(pad, MaxLabFileSize/len(pad)+1)), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Load(big)
	if err == nil || !strings.Contains(err.Error(), "big.yaml:1:1") || !strings.Contains(err.Error(), "1 MiB") {
		t.Errorf("a lab file over 1 MiB: %v", err)
	}
	if _, err := ParseDaemon("d.yaml", make([]byte, MaxLabFileSize+1)); err == nil || !strings.Contains(err.Error(), "1 MiB") {
		t.Errorf("a daemon config over 1 MiB: %v", err)
	}
}

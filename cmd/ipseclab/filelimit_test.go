package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/ipseclab/ipseclab/internal/testenv"
	"github.com/ipseclab/ipseclab/internal/testenv/netenv"
	"github.com/ipseclab/ipseclab/labrun"
)

// A lab that needs more open files than the lab process may have, and
// cannot get (no CAP_SYS_RESOURCE, as in a container), is refused before
// anything is created, in one sentence that names the numbers.
func TestDeployRefusesALabBeyondTheFileLimit(t *testing.T) {
	testenv.NeedRoot(t)
	prlimit := testenv.NeedCommand(t, "prlimit")
	setpriv := testenv.NeedCommand(t, "setpriv")
	netenv.SharedLabs(t)
	name := fmt.Sprintf("files%d", os.Getpid()%100000)
	var b strings.Builder
	b.WriteString("topology:\n  nodes:\n")
	for i := range 60 {
		fmt.Fprintf(&b, "    h%d: {kind: host}\n", i)
	}
	b.WriteString("  lans:\n    - name: lan\n      members: [")
	for i := range 60 {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "h%d:eth0", i)
	}
	b.WriteString("]\n")
	p := writeLab(t, name, b.String())
	// 60 nodes need about 9*60+256 = 796 files; the process may open 600.
	cmd := exec.Command(prlimit, "--nofile=600:600", setpriv, "--bounding-set=-sys_resource", binary, "deploy", "-t", p)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	t.Cleanup(func() { _ = labrun.DestroyLab(name, 10*time.Second) })
	if err == nil {
		t.Fatal("a lab beyond the file limit deployed")
	}
	if want := "has 60 nodes and needs about 796 open files, but this process may open 600"; !strings.Contains(stderr.String(), want) {
		t.Errorf("stderr %q does not say %q", stderr.String(), want)
	}
	if left, _ := labrun.ListNetns(labrun.LabPrefix(name)); len(left) > 0 {
		t.Errorf("the refused lab left namespaces: %v", left)
	}
	if _, err := os.Stat(labrun.StateDir(name)); err == nil {
		t.Errorf("the refused lab left its state directory")
	}
}

// Package testenv holds the rules every ipseclab test follows about what it
// needs from the machine: in CI a missing requirement is a failure, on a
// developer's machine it is a skip that says clearly what is missing. It
// builds on any OS; what tests do to Linux's network is package netenv's.
package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
)

// InCI reports whether the tests run in CI (.ci/run sets IPSECLAB_CI=1; most CI
// systems set CI).
func InCI() bool {
	return os.Getenv("IPSECLAB_CI") != "" || os.Getenv("CI") != ""
}

// Require fails the test in CI and skips it elsewhere, with the reason.
func Require(t testing.TB, ok bool, what string) {
	t.Helper()
	if ok {
		return
	}
	if InCI() {
		t.Fatalf("this test needs %s, and in CI a missing requirement is a failure", what)
	}
	t.Skipf("SKIPPED: this test needs %s (not available on this machine; in CI it would fail)", what)
}

// NeedRoot requires root privileges.
func NeedRoot(t testing.TB) {
	t.Helper()
	Require(t, os.Geteuid() == 0, "root (network namespaces); run `sudo go test ./...`")
}

// NeedCommand requires an executable on PATH (or at an absolute path) and
// returns its path.
func NeedCommand(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	Require(t, err == nil, fmt.Sprintf("the %q command (installed by .ci/run)", name))
	return p
}

// Package testenv holds the rules every ipseclab test follows about what it
// needs from the machine: in CI a missing requirement is a failure, on a
// developer's machine it is a skip that says clearly what is missing.
package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/ipseclab/ipseclab/internal/namespace"
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

var (
	nsCounter atomic.Uint64
	sweepOnce sync.Once
)

// sweepStale removes test namespaces left by test processes that were killed
// before their cleanups ran (a timeout, a SIGKILL): their names carry the PID
// of a process that no longer exists.
func sweepStale() {
	names, err := namespace.List("ipltest-")
	if err != nil {
		return
	}
	for _, n := range names {
		pid, _, ok := strings.Cut(strings.TrimPrefix(n, "ipltest-"), "-")
		if !ok {
			continue
		}
		if _, err := os.Stat("/proc/" + pid); os.IsNotExist(err) {
			_ = namespace.Delete(n)
		}
	}
}

// Netns creates a throwaway named network namespace whose name starts with
// "ipltest-" and removes it when the test ends, pass or fail. Lo is brought up.
func Netns(t testing.TB, label string) (name string, h netns.NsHandle) {
	t.Helper()
	NeedRoot(t)
	sweepOnce.Do(sweepStale)
	name = fmt.Sprintf("ipltest-%d-%d-%s", os.Getpid(), nsCounter.Add(1), strings.ReplaceAll(label, "/", "_"))
	h, err := namespace.Create(name)
	if err != nil {
		t.Fatalf("create namespace %s: %v", name, err)
	}
	t.Cleanup(func() {
		h.Close()
		if err := namespace.Delete(name); err != nil {
			t.Errorf("delete namespace %s: %v", name, err)
		}
	})
	if err := namespace.LoopbackUp(h); err != nil {
		t.Fatalf("lo up in %s: %v", name, err)
	}
	return name, h
}

// VethPair joins two namespaces with a veth pair named eth0 on both sides,
// sets the given addresses (prefix notation) and brings both ends up.
func VethPair(t testing.TB, a, b netns.NsHandle, addrA, addrB string) {
	t.Helper()
	ha, err := netlink.NewHandleAt(a)
	if err != nil {
		t.Fatal(err)
	}
	defer ha.Close()
	hb, err := netlink.NewHandleAt(b)
	if err != nil {
		t.Fatal(err)
	}
	defer hb.Close()
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "eth0"}, PeerName: "eth0", PeerNamespace: netlink.NsFd(b)}
	if err := ha.LinkAdd(veth); err != nil {
		t.Fatalf("veth: %v", err)
	}
	for _, x := range []struct {
		h    *netlink.Handle
		addr string
	}{{ha, addrA}, {hb, addrB}} {
		l, err := x.h.LinkByName("eth0")
		if err != nil {
			t.Fatal(err)
		}
		ad, err := netlink.ParseAddr(x.addr)
		if err != nil {
			t.Fatal(err)
		}
		if err := x.h.AddrAdd(l, ad); err != nil {
			t.Fatal(err)
		}
		if err := x.h.LinkSetUp(l); err != nil {
			t.Fatal(err)
		}
	}
}

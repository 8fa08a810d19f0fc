// Package netenv holds what ipseclab's tests do to the Linux host's network:
// throwaway namespaces and veth pairs, snapshots of the host namespace that a
// lab must leave as it found it, and the lock between tests that deploy labs
// and tests that sweep them all. It is apart from testenv, the rules about
// what a test needs, so that the tests of packages that build on any OS can
// follow those rules without depending on Linux.
package netenv

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/ipseclab/ipseclab/internal/namespace"
	"github.com/ipseclab/ipseclab/internal/testenv"
)

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
	testenv.NeedRoot(t)
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

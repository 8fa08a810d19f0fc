package strongswan_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ipseclab/ipseclab/internal/namespace"
	"github.com/ipseclab/ipseclab/internal/testenv"
	"github.com/ipseclab/ipseclab/internal/testenv/netenv"
	"github.com/ipseclab/ipseclab/strongswan"
)

func oneConnection(proposal string) strongswan.Config {
	return strongswan.Config{Connections: []strongswan.Connection{{
		Name:        "c",
		LocalAddrs:  []string{"192.0.2.1"},
		RemoteAddrs: []string{"192.0.2.2"},
		Proposals:   []string{proposal},
		PSK:         "secret",
		Children:    []strongswan.Child{{Name: "c-child", LocalTS: []string{"10.1.0.1/32"}, RemoteTS: []string{"10.2.0.1/32"}}},
	}}}
}

// charonsUsing returns the pids of processes whose /run is dir: the charons
// started with that directory and still alive.
func charonsUsing(t *testing.T, dir string) []int {
	t.Helper()
	want, err := os.Stat(filepath.Join(dir, "strongswan.conf"))
	if err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if fi, err := os.Stat("/proc/" + e.Name() + "/root/run/strongswan.conf"); err == nil && os.SameFile(fi, want) {
			pids = append(pids, pid)
		}
	}
	return pids
}

func needCharon(t *testing.T) {
	testenv.NeedRoot(t)
	testenv.NeedCommand(t, strongswan.DefaultCharon)
	testenv.NeedCommand(t, strongswan.DefaultSwanctl)
}

func TestStartStopLeavesNothing(t *testing.T) {
	needCharon(t)
	name, _ := netenv.Netns(t, "life")
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := strongswan.Start(ctx, oneConnection("aes128-sha256-modp2048"), strongswan.Options{Netns: namespace.Path(name), Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if pids := charonsUsing(t, dir); len(pids) != 1 || pids[0] != c.Pid() {
		t.Errorf("processes with the node's /run: %v, want charon %d alone", pids, c.Pid())
	}
	// The /run mount is charon's alone: the lab process's /run is untouched.
	if _, err := os.Stat("/run/strongswan.conf"); err == nil {
		t.Error("/run/strongswan.conf exists in the test's own mount namespace")
	}
	if sas, err := c.ListSAs(ctx); err != nil || len(sas) != 0 {
		t.Errorf("fresh charon lists %v, %v", sas, err)
	}
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.Exited():
	default:
		t.Fatal("Stop returned before charon exited")
	}
	if pids := charonsUsing(t, dir); len(pids) != 0 {
		t.Errorf("charon still running after Stop: %v", pids)
	}
	if err := c.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}

func TestStartFailuresLeaveNothing(t *testing.T) {
	needCharon(t)
	name, _ := netenv.Netns(t, "fail")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	// swanctl refuses the proposal: Start stops the charon it started.
	dir := t.TempDir()
	_, err := strongswan.Start(ctx, oneConnection("no-such-proposal"), strongswan.Options{Netns: namespace.Path(name), Dir: dir})
	if err == nil || !strings.Contains(err.Error(), "swanctl") {
		t.Errorf("bad proposal: %v, want swanctl's complaint", err)
	}
	if pids := charonsUsing(t, dir); len(pids) != 0 {
		t.Errorf("charon left running after a failed Start: %v", pids)
	}

	// A daemon that exits at once is reported with what it left behind.
	_, err = strongswan.Start(ctx, oneConnection("aes128-sha256-modp2048"), strongswan.Options{Netns: namespace.Path(name), Dir: t.TempDir(), Charon: "/bin/false"})
	if err == nil || !strings.Contains(err.Error(), "exited during startup") {
		t.Errorf("daemon exiting at once: %v", err)
	}

	_, err = strongswan.Start(ctx, oneConnection("aes128-sha256-modp2048"), strongswan.Options{Netns: "/run/netns/does-not-exist-ipseclab"})
	if err == nil {
		t.Error("a missing network namespace must fail")
	}
}

func TestCharonDyingIsNoticed(t *testing.T) {
	needCharon(t)
	name, _ := netenv.Netns(t, "die")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := strongswan.Start(ctx, oneConnection("aes128-sha256-modp2048"), strongswan.Options{Netns: namespace.Path(name)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	if err := syscall.Kill(c.Pid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.Exited():
	case <-ctx.Done():
		t.Fatal("Exited did not close after charon was killed")
	}
	if err := c.Stop(); err == nil {
		t.Error("Stop after charon died on its own must report it")
	}
	if _, err := os.Stat(c.Dir()); !os.IsNotExist(err) {
		t.Errorf("temporary directory %s not removed: %v", c.Dir(), err)
	}
}

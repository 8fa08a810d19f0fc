package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ipseclab/ipseclab/internal/testenv"
	"github.com/ipseclab/ipseclab/internal/testenv/netenv"
	"github.com/ipseclab/ipseclab/labrun"
)

// `tunnel up` that times out says where the negotiation stands: what was
// sent last, how often, and what came back. A link that loses everything
// leaves Main Mode 1/6 unanswered.
func TestTunnelUpTimeoutSaysWhy(t *testing.T) {
	testenv.NeedRoot(t)
	netenv.SharedLabs(t)
	name := fmt.Sprintf("cli%d-stall", os.Getpid())
	lab := writeLab(t, name, strings.Replace(twoSites("gw-a", "gateway", "gw-b", "gateway", `ipsec:
  office:
    initiator: gw-a
    responder: gw-b
    auth: {secret: lab-only-secret}
    ike: {retransmit: {timeout: 500ms, tries: 10, base: 1}}
    child: {local-ts: 10.1.0.0/24, remote-ts: 10.2.0.0/24, start: none}
`), "      addresses: [203.0.113.1/24, 203.0.113.2/24]\n", "      addresses: [203.0.113.1/24, 203.0.113.2/24]\n      impair: {loss: 100%}\n", 1))
	t.Cleanup(func() { _ = labrun.DestroyLab(name, 5*time.Second) })
	if r := run(t, "deploy", "-t", lab); r.code != 0 {
		t.Fatalf("deploy: %+v", r)
	}
	r := run(t, "tunnel", "up", "-t", lab, "office", "--timeout", "2s")
	if r.code == 0 {
		t.Fatalf("tunnel up succeeded across a link that loses everything: %+v", r)
	}
	for _, want := range []string{"connection office did not come up in time", "Main Mode 1/6 sent to 203.0.113.2:500", "sent again", "nothing came back"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("tunnel up's error lacks %q:\n%s", want, r.stderr)
		}
	}
	if strings.Contains(r.stderr, "Post ") {
		t.Errorf("tunnel up's error is the HTTP client's, not the lab's:\n%s", r.stderr)
	}
}

// A lab started by `run` dies with it, even when run is killed with SIGKILL
// and cannot clean up; `run --keep` leaves its lab up on purpose.
func TestKilledRunTakesItsLabWithIt(t *testing.T) {
	testenv.NeedRoot(t)
	netenv.SharedLabs(t)
	for _, keep := range []bool{false, true} {
		name := fmt.Sprintf("cli%d-own%v", os.Getpid(), keep)
		lab := writeLab(t, name, smallLab+"script:\n  - wait: 60s\n")
		t.Cleanup(func() { _ = labrun.DestroyLab(name, 5*time.Second) })
		args := []string{"run", lab}
		if keep {
			args = append(args, "--keep")
		}
		cmd := exec.Command(binary, args...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		deployed := false
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline) && !deployed; time.Sleep(20 * time.Millisecond) {
			_, err := labrun.ReadState(name)
			deployed = err == nil
		}
		if !deployed {
			_ = cmd.Process.Kill()
			t.Fatalf("run %s (keep %v) never deployed its lab", name, keep)
		}
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		// A lab that goes, goes within a second or two; one that stays is
		// watched for two.
		wait := 10 * time.Second
		if keep {
			wait = 2 * time.Second
		}
		gone := false
		for deadline := time.Now().Add(wait); time.Now().Before(deadline) && !gone; time.Sleep(50 * time.Millisecond) {
			_, err := labrun.ReadState(name)
			_, nserr := os.Stat(labrun.NetnsPath(labrun.NodeNetns(name, "a")))
			gone = err != nil && os.IsNotExist(nserr)
		}
		if keep && gone {
			t.Errorf("run --keep was killed and its lab went with it")
		}
		if !keep && !gone {
			t.Errorf("run was killed with SIGKILL and its lab %s is still up", name)
		}
	}
}

// A lab's state holds its secrets (the lab file with the PSK, the event log
// with derived keys under --keys): its directory and files are the owner's
// alone.
func TestLabStateIsPrivate(t *testing.T) {
	testenv.NeedRoot(t)
	netenv.SharedLabs(t)
	name := fmt.Sprintf("cli%d-private", os.Getpid())
	lab := writeLab(t, name, smallLab)
	t.Cleanup(func() { _ = labrun.DestroyLab(name, 5*time.Second) })
	if r := run(t, "deploy", "-t", lab); r.code != 0 {
		t.Fatalf("deploy: %+v", r)
	}
	dir := labrun.StateDir(name)
	check := func(path string, want os.FileMode) {
		st, err := os.Stat(path)
		if err != nil {
			t.Errorf("%s: %v", path, err)
			return
		}
		if got := st.Mode().Perm(); got != want {
			t.Errorf("%s has mode %o, want %o", path, got, want)
		}
	}
	check(dir, 0o700)
	for _, f := range []string{"state.json", "lab.yaml", "lab.log"} {
		check(filepath.Join(dir, f), 0o600)
	}
	// The event log appears once the lab is up.
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(filepath.Join(dir, "events.jsonl")); err == nil {
			break
		}
	}
	check(filepath.Join(dir, "events.jsonl"), 0o600)
}

// destroy kills a lab's process only if it is that process: the PID in the
// state could, after a crash and a reboot of PIDs, name another lab's. The
// state records the process's start time too, and destroy checks both.
func TestDestroyNeverKillsAnotherLabsProcess(t *testing.T) {
	testenv.NeedRoot(t)
	netenv.SharedLabs(t)
	victim, other := fmt.Sprintf("cli%d-pida", os.Getpid()), fmt.Sprintf("cli%d-pidb", os.Getpid())
	for _, name := range []string{victim, other} {
		t.Cleanup(func() { _ = labrun.DestroyLab(name, 5*time.Second) })
		if r := run(t, "deploy", "-t", writeLab(t, name, smallLab)); r.code != 0 {
			t.Fatalf("deploy %s: %+v", name, r)
		}
	}
	stOther, err := labrun.ReadState(other)
	if err != nil {
		t.Fatal(err)
	}
	// victim's state now names other's lab process, as a PID reused after
	// victim's process died would.
	st, err := labrun.ReadState(victim)
	if err != nil {
		t.Fatal(err)
	}
	own := st.PID
	st.PID = stOther.PID
	if err := labrun.WriteState(st); err != nil {
		t.Fatal(err)
	}
	_ = syscall.Kill(own, syscall.SIGKILL) // victim's own process is gone, as after a crash
	if r := run(t, "destroy", "--name", victim); r.code != 0 {
		t.Fatalf("destroy: %+v", r)
	}
	if !stOther.LabProcessAlive() {
		t.Fatalf("destroying %s killed %s's lab process (PID %d)", victim, other, stOther.PID)
	}
	if r := run(t, "inspect", "--name", other); r.code != 0 {
		t.Errorf("%s no longer answers after %s was destroyed: %+v", other, victim, r)
	}
}

// Two students run the same lab side by side on one machine: --name gives
// each copy its own namespaces and state, and each copy's tunnel carries its
// own traffic.
func TestSameLabTwiceSideBySide(t *testing.T) {
	testenv.NeedRoot(t)
	netenv.SharedLabs(t)
	first, second := fmt.Sprintf("cli%d-s2s-1", os.Getpid()), fmt.Sprintf("cli%d-s2s-2", os.Getpid())
	for _, name := range []string{first, second} {
		t.Cleanup(func() { _ = labrun.DestroyLab(name, 5*time.Second) })
		if r := run(t, "deploy", "-t", "site-to-site", "--name", name); r.code != 0 {
			t.Fatalf("deploy site-to-site --name %s: %+v", name, r)
		}
	}
	if r := run(t, "deploy", "-t", "site-to-site", "--name", first); r.code == 0 || !strings.Contains(r.stderr, "--name") {
		t.Errorf("deploying over %s: want an error that advises --name, got %+v", first, r)
	}
	for _, name := range []string{first, second} {
		if r := run(t, "ping", "--name", name, "alice", "bob", "-c", "3", "-i", "100ms"); r.code != 0 {
			t.Errorf("ping across %s's tunnel: %+v", name, r)
		}
		r := run(t, "inspect", "--name", name, "--json")
		if r.code != 0 || !strings.Contains(r.stdout, `"ipseclab-`+name+`.gw-a"`) {
			t.Errorf("inspect %s does not show its own namespaces: %+v", name, r)
		}
	}
	if r := run(t, "destroy", "--name", first); r.code != 0 {
		t.Fatalf("destroy %s: %+v", first, r)
	}
	if r := run(t, "ping", "--name", second, "alice", "bob", "-c", "2", "-i", "100ms"); r.code != 0 {
		t.Errorf("%s stopped working when %s was destroyed: %+v", second, first, r)
	}
}

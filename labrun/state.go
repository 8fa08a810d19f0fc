package labrun

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// StateRoot holds one directory per deployed lab. What a lab created is
// recorded there before it is created, so `destroy` works from a new process
// even after the lab process was killed with SIGKILL. StateDirEnv moves it
// (the CLI's --state-dir sets it, and lab processes inherit it): tests keep
// their labs apart from a machine's own that way.
var StateRoot = stateRoot()

// StateDirEnv names the environment variable that moves StateRoot.
const StateDirEnv = "IPSECLAB_STATE_DIR"

func stateRoot() string {
	if d := os.Getenv(StateDirEnv); d != "" {
		return d
	}
	return "/run/ipseclab"
}

// SetStateRoot moves StateRoot, for this process and the lab processes it
// starts.
func SetStateRoot(dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	StateRoot = abs
	return os.Setenv(StateDirEnv, abs)
}

// StateDir is a lab's state directory.
func StateDir(lab string) string { return filepath.Join(StateRoot, lab) }

// SocketPath is the lab process's control socket.
func SocketPath(lab string) string { return filepath.Join(StateDir(lab), "ctl.sock") }

// StateLabFile is the copy of the lab file kept with the state, so that verbs
// given --name know the lab without its original file.
func StateLabFile(lab string) string { return filepath.Join(StateDir(lab), "lab.yaml") }

// State is what state.json records.
type State struct {
	Lab  string `json:"lab"`
	File string `json:"file"` // absolute path of the lab file, or "embedded:<name>"
	PID  int    `json:"pid"`  // the lab process
	// PIDStart is when the lab process started, in clock ticks since boot
	// (/proc/PID/stat): with the PID it names the process for good, where
	// the PID alone may, after the process is gone, name another.
	PIDStart   uint64    `json:"pid_start"`
	Socket     string    `json:"socket"`
	Namespaces []string  `json:"namespaces"`
	Started    time.Time `json:"started"`
	Status     string    `json:"status"` // deploying, up, destroying
	Seed       uint64    `json:"seed"`
}

// A lab's state directory holds secrets (the lab file with its pre-shared
// keys, the event log with derived keys under --keys), so it and everything
// in it are the owner's alone.
const (
	privateDir  = 0o700
	privateFile = 0o600
)

// WriteState records the state atomically (write and rename).
func WriteState(s *State) error {
	dir := StateDir(s.Lab)
	if err := os.MkdirAll(dir, privateDir); err != nil {
		return err
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, ".state.json.tmp")
	if err := os.WriteFile(tmp, b, privateFile); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, "state.json"))
}

// ReadState reads a lab's state. A lab without state is reported with an error
// that wraps os.ErrNotExist.
func ReadState(lab string) (*State, error) {
	b, err := os.ReadFile(filepath.Join(StateDir(lab), "state.json"))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("lab %s is not deployed: %w", lab, os.ErrNotExist)
		}
		return nil, err
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("state of lab %s is damaged (%v); `ipseclab destroy --all` removes it", lab, err)
	}
	return &s, nil
}

// DeployedLabs lists the labs that have state or namespaces on this machine.
func DeployedLabs() ([]string, error) {
	set := map[string]bool{}
	ents, err := os.ReadDir(StateRoot)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	for _, e := range ents {
		if e.IsDir() {
			set[e.Name()] = true
		}
	}
	nss, err := ListNetns(NetnsPrefix)
	if err != nil {
		return nil, err
	}
	for _, ns := range nss {
		if lab, ok := LabOfNetns(ns); ok {
			set[lab] = true
		}
	}
	out := make([]string, 0, len(set))
	for l := range set {
		out = append(out, l)
	}
	sort.Strings(out)
	return out, nil
}

// LabProcessAlive reports whether the state's lab process is running: the
// same process (its PID and its start time), not one that reused the PID.
// A process that has exited but was not reaped yet (a zombie) is not
// running.
func (s *State) LabProcessAlive() bool { return processAlive(s.PID, s.PIDStart) }

// processAlive reports whether pid is a running ipseclab lab process that
// started at start (when start is known).
func processAlive(pid int, start uint64) bool {
	if pid <= 0 {
		return false
	}
	st, err := readStat(pid)
	if err != nil || st.state == 'Z' || (start != 0 && st.start != start) {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return false
	}
	args := strings.Split(string(b), "\x00")
	// The binary may have any name (go run's, a copy's); the start time
	// already pins the process, and "serve" says it is a lab process.
	return len(args) > 1 && containsArg(args, "serve")
}

// procStat is what destroy needs of /proc/PID/stat.
type procStat struct {
	state byte   // R, S, Z, ...
	start uint64 // starttime: clock ticks after boot
}

// readStat reads /proc/PID/stat. The command name, in parentheses, may hold
// spaces and parentheses itself, so the fields are counted from the last ')'.
func readStat(pid int) (procStat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, err
	}
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	// After the name: state (field 3) ... starttime (field 22).
	if len(f) < 20 || len(f[0]) != 1 {
		return procStat{}, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	start, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return procStat{}, fmt.Errorf("/proc/%d/stat: starttime: %w", pid, err)
	}
	return procStat{state: f[0][0], start: start}, nil
}

// ProcessStart is when process pid started (see State.PIDStart).
func ProcessStart(pid int) (uint64, error) {
	st, err := readStat(pid)
	return st.start, err
}

func containsArg(args []string, s string) bool {
	for _, a := range args {
		if a == s {
			return true
		}
	}
	return false
}

// DestroyLab removes a deployed lab: it asks the lab process to shut down
// (which stops forwarders and stacks and deletes the namespaces), kills it if
// it does not answer, then removes whatever the state records and every
// namespace carrying the lab's prefix. It works whether the lab process is
// healthy, hung or gone.
func DestroyLab(lab string, timeout time.Duration) error {
	st, err := ReadState(lab)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		st = nil // damaged state: fall back to the prefix sweep
	}
	var errs []error
	if st != nil && st.LabProcessAlive() {
		c := &Client{Socket: SocketPath(lab)}
		if err := c.Shutdown(timeout); err != nil || !waitExit(st, timeout) {
			// Checked again just before: the PID may have ended and been
			// reused meanwhile, and the kill must reach this lab's process
			// or none.
			if st.LabProcessAlive() {
				_ = syscall.Kill(st.PID, syscall.SIGKILL)
			}
			waitExit(st, 2*time.Second)
		}
	}
	names := map[string]bool{}
	if st != nil {
		for _, ns := range st.Namespaces {
			names[ns] = true
		}
	}
	left, err := ListNetns(LabPrefix(lab))
	if err != nil {
		errs = append(errs, err)
	}
	for _, ns := range left {
		names[ns] = true
	}
	for ns := range names {
		if err := DeleteNetns(ns); err != nil {
			errs = append(errs, err)
		}
	}
	if err := os.RemoveAll(StateDir(lab)); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func waitExit(st *State, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if !st.LabProcessAlive() {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return !st.LabProcessAlive()
}

// DestroyAll removes every lab on this machine, deployed or left over.
func DestroyAll(timeout time.Duration) ([]string, error) {
	labs, err := DeployedLabs()
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, l := range labs {
		if err := DestroyLab(l, timeout); err != nil {
			errs = append(errs, fmt.Errorf("lab %s: %w", l, err))
		}
	}
	return labs, errors.Join(errs...)
}

// CreatePrivate creates (or truncates) a file of a lab's state directory,
// readable by its owner alone.
func CreatePrivate(path string, appendTo bool) (*os.File, error) {
	flags := os.O_CREATE | os.O_WRONLY | os.O_TRUNC
	if appendTo {
		flags = os.O_CREATE | os.O_WRONLY | os.O_APPEND
	}
	return os.OpenFile(path, flags, privateFile)
}

// MakeStateDir creates a lab's state directory, private to its owner.
func MakeStateDir(lab string) error { return os.MkdirAll(StateDir(lab), privateDir) }

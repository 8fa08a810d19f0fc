//go:build linux

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/ipseclab/ipseclab/events"
	"github.com/ipseclab/ipseclab/labrun"
	"github.com/ipseclab/ipseclab/topology"
)

// readyMsg is the last line the lab process writes on its ready pipe.
type readyMsg struct {
	Ready bool   `json:"ready"`
	Error string `json:"error,omitempty"`
	PID   int    `json:"pid"`
}

// serve is the lab process. `deploy` starts it in the background; it deploys
// the lab, reports progress on the ready pipe, then keeps the lab running
// until SIGTERM or `destroy`.
func newServeCmd() *cobra.Command {
	var lf labFlags
	var readyFD, ownerFD int
	var asName string
	var captureDir string
	var keys bool
	cmd := &cobra.Command{
		Use:    "serve -t FILE",
		Short:  "Run a lab process in the foreground (deploy starts one in the background)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			lab, source, err := lf.load()
			if err != nil {
				return err
			}
			limitMemory(lab)
			if err := raiseFileLimit(lab); err != nil {
				return err
			}
			if err := renameLab(lab, asName); err != nil {
				return err
			}
			var ready *os.File
			if readyFD > 0 {
				ready = os.NewFile(uintptr(readyFD), "ready")
			}
			report := func(m any) {
				if ready != nil {
					b, _ := json.Marshal(m)
					_, _ = ready.Write(append(b, '\n'))
				}
			}
			bus := events.NewBus(lab.Name)
			defer bus.Close()
			// Until the lab is up, every event also goes to the deploying
			// process, which shows progress.
			progress := bus.Subscribe(nil)
			progressDone := make(chan struct{})
			go func() {
				defer close(progressDone)
				for e := range progress.C() {
					report(e)
				}
			}()
			sigs := make(chan os.Signal, 1)
			signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
			signal.Ignore(syscall.SIGHUP, syscall.SIGPIPE)

			if abs, err := filepath.Abs(source); err == nil && source != "" && source[0] != 'e' {
				source = abs
			}
			rt, err := labrun.StartRuntime(context.Background(), lab, labrun.RuntimeOptions{Bus: bus, File: source, PublishKeys: keys || captureDir != ""})
			if err == nil && captureDir != "" {
				if err = rt.CaptureAll(captureDir); err != nil {
					_ = rt.Shutdown()
				}
			}
			progress.Close()
			<-progressDone
			if err != nil {
				report(readyMsg{Error: err.Error()})
				return err
			}
			go writeEventLog(bus, filepath.Join(labrun.StateDir(lab.Name), "events.jsonl"))
			report(readyMsg{Ready: true, PID: os.Getpid()})
			if ready != nil {
				ready.Close()
			}
			scriptCtx, cancelScript := context.WithCancel(context.Background())
			defer cancelScript()
			go rt.RunScript(scriptCtx)
			select {
			case s := <-sigs:
				fmt.Fprintf(os.Stderr, "lab %s: %v received, destroying\n", lab.Name, s)
			case <-rt.ShutdownRequested():
				fmt.Fprintf(os.Stderr, "lab %s: destroy requested\n", lab.Name)
			case <-ownerGone(ownerFD):
				fmt.Fprintf(os.Stderr, "lab %s: the `ipseclab run` that started it is gone, destroying\n", lab.Name)
			}
			cancelScript()
			return rt.Shutdown()
		},
	}
	lf.add(cmd, false)
	cmd.Flags().IntVar(&readyFD, "ready-fd", 0, "file descriptor to report progress and readiness on")
	cmd.Flags().StringVar(&asName, "lab-name", "", "serve the lab under this name instead of its file's")
	cmd.Flags().IntVar(&ownerFD, "owner-fd", 0, "read end of a pipe held by the process that owns the lab: the lab is destroyed when it closes")
	cmd.Flags().StringVar(&captureDir, "capture", "", "record every link and the Wireshark key tables into this directory")
	cmd.Flags().BoolVar(&keys, "keys", false, "publish the derived keys as events")
	return cmd
}

// ownerGone is closed when the owner's pipe closes, never if there is none.
func ownerGone(fd int) <-chan struct{} {
	gone := make(chan struct{})
	if fd <= 0 {
		return gone
	}
	f := os.NewFile(uintptr(fd), "owner")
	go func() {
		defer close(gone)
		var b [1]byte
		for {
			if _, err := f.Read(b[:]); err != nil {
				return
			}
		}
	}()
	return gone
}

// labProcessMemory is the lab process's soft memory limit for a lab of one
// or two of ipseclab's IPsec stacks, and stackMemory what each stack adds:
// an idle stack holds about 0.35 MiB of heap (its IKE receive queues and
// socket buffer, batch headers) and 0.25 MiB of goroutine stacks, and
// borrows its data plane's packet buffers (up to 5 MiB) only while packets
// pass (ipsec/esp/internal/bufpool). Under a flood of unauthenticated
// messages most of the heap is garbage (decoded offers, refused
// datagrams), and by default Go lets garbage grow as large as what is
// live; the limit makes it collect sooner instead. It is soft: a lab that
// needs more gets more, at the price of more frequent collections.
// Before the buffers were borrowed, each stack held 10 MiB of them and
// this was 12 MiB; a lab of a thousand gateways then let its garbage grow
// past a gigabyte (labrun/README.md).
const (
	labProcessMemory = 80 << 20
	stackMemory      = 1 << 20
)

// filesPerNode is what the lab process holds per node, measured: a hub and
// a thousand spokes with a host each (2,002 nodes) hold 18,031 descriptors,
// 9 a node (a gateway's TUN, raw and UDP sockets, IKE socket and netlink
// handle; a link end's TAP; each namespace's handle and netlink socket).
const filesPerNode = 9

// raiseFileLimit raises the lab process's limit on open files for a large
// lab: to twice what it needs, past the hard limit when the process may
// (CAP_SYS_RESOURCE, up to fs.nr_open). Go raises the soft limit to the hard
// one by itself, and gives the processes the lab starts (charon) the
// original. A lab that needs more than it can get is refused here, in one
// sentence, rather than failing halfway with "too many open files".
func raiseFileLimit(lab *topology.Lab) error {
	need := uint64(filesPerNode*len(lab.Topology.Nodes) + 256)
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Cur >= 2*need {
		return nil
	}
	want := lim
	want.Max = max(lim.Max, 2*need)
	if b, err := os.ReadFile("/proc/sys/fs/nr_open"); err == nil {
		if n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64); err == nil {
			want.Max = max(lim.Max, min(want.Max, n))
		}
	}
	want.Cur = min(2*need, want.Max)
	if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want) == nil {
		return nil
	}
	// Without CAP_SYS_RESOURCE (a container) the hard limit stands.
	want.Max, want.Cur = lim.Max, lim.Max
	_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want)
	if lim.Max < need {
		return fmt.Errorf("lab %s has %d nodes and needs about %d open files, but this process may open %d (ulimit -Hn) and cannot raise it: raise the hard limit, or spread the lab over several machines",
			lab.Name, len(lab.Topology.Nodes), need, lim.Max)
	}
	return nil
}

// limitMemory sets the soft limit for lab, unless GOMEMLIMIT sets another.
func limitMemory(lab *topology.Lab) {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(memoryLimit(lab))
	}
}

// memoryLimit is the lab process's soft memory limit for lab.
func memoryLimit(lab *topology.Lab) int64 {
	stacks := 0
	for _, n := range lab.Topology.Nodes {
		if n.Kind == topology.KindGateway {
			stacks++
		}
	}
	return max(labProcessMemory, labProcessMemory+int64(stacks-2)*stackMemory)
}

// writeEventLog keeps the lab's event stream as JSON lines in its state
// directory, for a look after the fact, rotated at labrun.EventLogMax.
func writeEventLog(bus *events.Bus, path string) {
	f, err := labrun.OpenRotatingLog(path, labrun.EventLogMax)
	if err != nil {
		return
	}
	defer f.Close()
	_ = labrun.WriteEventLines(f, bus, bus.SubscribeWithHistory(nil), nil, nil)
}

//go:build linux

package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/ipseclab/ipseclab/events"
	"github.com/ipseclab/ipseclab/labrun"
	"github.com/ipseclab/ipseclab/topology"
)

func newDeployCmd() *cobra.Command {
	var lf labFlags
	var asName string
	var keys bool
	cmd := &cobra.Command{
		Use:   "deploy -t FILE",
		Short: "Create a lab's namespaces, links and services, and keep it running in the background",
		Long: `deploy validates the lab file, then starts the lab process in the background. The lab
process creates one network namespace per node (ipseclab-<lab>.<node>), the links and LANs,
addresses and routes, and keeps running whatever must run (link forwarders, NAT watchers,
IPsec stacks) until 'ipseclab destroy'. Nothing is created in the host's network namespace.
A deploy that fails part way removes everything it created.`,
		Args: noLabArgs(false),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := labrun.CheckRoot(); err != nil {
				return err
			}
			lab, _, err := lf.load()
			if err != nil {
				return err
			}
			if err := renameLab(lab, asName); err != nil {
				return err
			}
			serveArgs := []string{"--lab-name", lab.Name}
			if keys {
				serveArgs = append(serveArgs, "--keys")
			}
			pid, err := startLabProcess(lf.topo, lab, os.Stderr, true, false, serveArgs...)
			if err != nil {
				return err
			}
			fmt.Printf("lab %s deployed: %d nodes, %d links, %d LANs (lab process %d)\n",
				lab.Name, len(lab.Topology.Nodes), len(lab.Topology.Links), len(lab.Topology.LANs), pid)
			fmt.Printf("  inspect: ipseclab inspect --name %s\n  destroy: ipseclab destroy --name %s\n", lab.Name, lab.Name)
			return nil
		},
	}
	lf.add(cmd, false)
	cmd.Flags().StringVar(&asName, "name", "", "deploy the lab under this name instead of its file's, so that two copies run side by side")
	cmd.Flags().BoolVar(&keys, "keys", false, "publish the derived keys (SKEYID, Ka, ESP keys), for `watch --keys`, the web view's inspector and Wireshark's tables")
	return cmd
}

// ownerPipe is the write end of an owned lab process's pipe: never written,
// closed by the kernel when this process ends.
var ownerPipe *os.File

// startLabProcess starts `ipseclab serve` in its own session, shows its deploy
// progress and returns once the lab is up (or has failed and rolled back).
//
// An owned lab process lives only as long as this process: it holds the read
// end of a pipe whose write end only this process has, and destroys its lab
// when the pipe closes, which the kernel does however this process ends, a
// SIGKILL included. `deploy` and `run --keep` start labs that outlive them.
func startLabProcess(labArg string, lab *topology.Lab, progress *os.File, echo, owned bool, serveArgs ...string) (int, error) {
	exe, err := os.Executable()
	if err != nil {
		return 0, err
	}
	if st, err := labrun.ReadState(lab.Name); err == nil {
		return 0, fmt.Errorf("lab %s is already deployed (lab process %d): run `ipseclab destroy --name %s` first, or deploy this one under another name with --name", lab.Name, st.PID, lab.Name)
	}
	if abs, err := filepath.Abs(labArg); err == nil {
		if _, serr := os.Stat(abs); serr == nil {
			labArg = abs
		}
	}
	// Refused here, in the user's terminal, rather than in the lab
	// process's log; a limit raised here is the lab process's too.
	if err := raiseFileLimit(lab); err != nil {
		return 0, err
	}
	dir := labrun.StateDir(lab.Name)
	if err := labrun.MakeStateDir(lab.Name); err != nil {
		return 0, err
	}
	logPath := filepath.Join(dir, "lab.log")
	logf, err := labrun.CreatePrivate(logPath, false)
	if err != nil {
		return 0, err
	}
	defer logf.Close()
	r, w, err := os.Pipe()
	if err != nil {
		return 0, err
	}
	defer r.Close()
	c := exec.Command(exe, append([]string{"serve", "-t", labArg, "--ready-fd", "3"}, serveArgs...)...)
	c.ExtraFiles = []*os.File{w}
	if owned {
		or, ow, err := os.Pipe()
		if err != nil {
			w.Close()
			return 0, err
		}
		defer or.Close()
		ownerPipe = ow // kept open, and referenced, for as long as this process lives
		c.ExtraFiles = append(c.ExtraFiles, or)
		c.Args = append(c.Args, "--owner-fd", "4")
	}
	c.Stdout, c.Stderr = logf, logf
	c.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := c.Start(); err != nil {
		w.Close()
		return 0, err
	}
	w.Close()
	go func() { _ = c.Wait() }() // reap it if it exits while we watch

	tty := term.IsTerminal(int(progress.Fd()))
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	lastPct := -1
	for sc.Scan() {
		var m struct {
			readyMsg
			events.Event
		}
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			continue
		}
		switch {
		case m.Ready:
			if tty && lastPct >= 0 {
				fmt.Fprint(progress, "\r\033[K")
			}
			return m.PID, nil
		case m.readyMsg.Error != "":
			if tty && lastPct >= 0 {
				fmt.Fprint(progress, "\r\033[K")
			}
			return 0, errors.New(m.readyMsg.Error)
		case m.Kind == events.LabProgress:
			done, _ := m.Fields["done"].(float64)
			total, _ := m.Fields["total"].(float64)
			if total < 20 || total == 0 {
				continue // small labs deploy faster than a progress line can be read
			}
			pct := int(100 * done / total)
			if tty {
				fmt.Fprintf(progress, "\rdeploying %s: %3d%% (%d/%d) %s\033[K", lab.Name, pct, int(done), int(total), m.Message)
			} else if pct/25 != lastPct/25 {
				fmt.Fprintf(progress, "deploying %s: %d%%\n", lab.Name, pct)
			}
			lastPct = pct
		case echo && (m.Kind == events.LabSeed || m.Kind == events.LabRollback):
			fmt.Fprintln(progress, m.Message)
		}
	}
	return 0, fmt.Errorf("the lab process exited before the lab was up; its log is %s", logPath)
}

//go:build linux

package main

import (
	"github.com/spf13/cobra"

	"github.com/ipseclab/ipseclab/labrun"
	"github.com/ipseclab/ipseclab/topology"
)

// linuxCmds are the verbs that deploy labs or work on deployed ones, which are
// Linux network namespaces, and the daemon, which runs the IPsec stack on
// Linux's TUN and sockets.
func linuxCmds() []*cobra.Command {
	return []*cobra.Command{
		newRunCmd(), newDeployCmd(), newDestroyCmd(), newInspectCmd(), newExecCmd(), newPingCmd(), newTrafficCmd(),
		newNATCmd(), newPKICmd(), newTunnelCmd(), newCrashCmd(), newRestartCmd(), newSAsCmd(), newStatsCmd(), newDaemonCmd(), newImpairCmd(), newCaptureCmd(), newWatchCmd(), newWebCmd(), newServeCmd(),
	}
}

// addLinuxRootFlags adds the flags every Linux verb shares: where the labs'
// state lives.
func addLinuxRootFlags(root *cobra.Command) {
	var dir string
	root.PersistentFlags().StringVar(&dir, "state-dir", "", "where deployed labs keep their state (default $"+labrun.StateDirEnv+", else /run/ipseclab); a test or a class keeps its labs apart with it")
	root.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error {
		if dir == "" {
			return nil
		}
		return labrun.SetStateRoot(dir)
	}
}

// renameLab deploys a lab under another name (--name), as containerlab's
// deploy --name does: two students can run the same lab side by side.
func renameLab(lab *topology.Lab, name string) error {
	if name == "" {
		return nil
	}
	if err := topology.CheckLabName(name); err != nil {
		return err
	}
	lab.Name = name
	return nil
}

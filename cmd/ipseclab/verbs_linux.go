//go:build linux

package main

import "github.com/spf13/cobra"

// linuxCmds are the verbs that deploy labs or work on deployed ones, which are
// Linux network namespaces, and the daemon, which runs the IPsec stack on
// Linux's TUN and sockets.
func linuxCmds() []*cobra.Command {
	return []*cobra.Command{
		newRunCmd(), newDeployCmd(), newDestroyCmd(), newInspectCmd(), newExecCmd(), newPingCmd(), newTrafficCmd(),
		newNATCmd(), newTunnelCmd(), newSAsCmd(), newDaemonCmd(), newImpairCmd(), newCaptureCmd(), newWatchCmd(), newServeCmd(),
	}
}

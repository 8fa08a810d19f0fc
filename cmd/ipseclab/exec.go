//go:build linux

package main

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"syscall"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/ipseclab/ipseclab/labrun"
)

func newExecCmd() *cobra.Command {
	var lf labFlags
	cmd := &cobra.Command{
		Use:   "exec -t FILE NODE -- CMD [ARGS...]",
		Short: "Run a command inside a node's network namespace; its exit code is passed through",
		Example: `  ipseclab exec -t lab.yaml gw1 -- ip route
  ipseclab exec --name demo alice -- tcpdump -ni eth0`,
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := labrun.CheckRoot(); err != nil {
				return err
			}
			lab, _, err := lf.load()
			if err != nil {
				return err
			}
			nodeName, argv := args[0], args[1:]
			if lab.Topology.Nodes[nodeName] == nil {
				return fmt.Errorf("lab %s has no node %q (nodes: %v)", lab.Name, nodeName, lab.NodeNames())
			}
			path, err := exec.LookPath(argv[0])
			if err != nil {
				return exitCode(127, fmt.Errorf("%s: command not found", argv[0]))
			}
			nsPath := labrun.NetnsPath(labrun.NodeNetns(lab.Name, nodeName))
			fd, err := unix.Open(nsPath, unix.O_RDONLY|unix.O_CLOEXEC, 0)
			if err != nil {
				return fmt.Errorf("node %s is not deployed (%s): %w", nodeName, nsPath, err)
			}
			// execve keeps the calling thread's namespaces: enter the node's
			// network namespace on this thread and become the command, so its
			// exit code is ours.
			runtime.LockOSThread()
			if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
				return fmt.Errorf("enter namespace of %s: %w", nodeName, err)
			}
			return syscall.Exec(path, argv, os.Environ())
		},
	}
	lf.add(cmd, true)
	return cmd
}

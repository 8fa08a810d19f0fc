//go:build linux

package main

import (
	"github.com/spf13/cobra"
)

func newRestartCmd() *cobra.Command {
	var lf labFlags
	cmd := &cobra.Command{
		Use:   "restart -t FILE NODE",
		Short: "Bring a crashed node's IPsec implementation back, with its configuration and no SAs",
		Long: `restart brings NODE's IPsec implementation back after ipseclab crash (or the script's crash:
step), empty, as after a reboot: its connections start again as configured (start: trap
installs the policy, start: start initiates). Its first phase 1 with each peer carries
INITIAL-CONTACT, which tells the peer to drop the SAs it still holds for this node.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return crashOrRestart(&lf, args[0], true)
		},
	}
	lf.add(cmd, true)
	return cmd
}

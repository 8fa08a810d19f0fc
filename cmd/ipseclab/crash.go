//go:build linux

package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/ipseclab/ipseclab/labrun"
	"github.com/ipseclab/ipseclab/topology"
)

func newCrashCmd() *cobra.Command {
	var lf labFlags
	cmd := &cobra.Command{
		Use:   "crash -t FILE NODE",
		Short: "Crash a node's IPsec implementation, as a power cut would: every SA is lost and no peer is told",
		Long: `crash throws away all of NODE's IPsec state at once, sending nothing: an ipseclab gateway's
stack stops, a strongswan node's charon is killed (SIGKILL), a vpnc client is killed. It is the
lab script's crash: step, by hand, for a live demonstration. The peers still hold their SAs:
watch them notice through DPD (R-U-THERE unanswered, dpd-dead), count the ESP that now
arrives for SPIs nobody knows, and clear the stale SAs when the node comes back
(ipseclab restart) and its first phase 1 carries INITIAL-CONTACT.`,
		Example: `  ipseclab deploy -t peer-crash
  ipseclab crash -t peer-crash gw-b
  ipseclab restart -t peer-crash gw-b`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return crashOrRestart(&lf, args[0], false)
		},
	}
	lf.add(cmd, true)
	return cmd
}

// crashOrRestart asks the lab process to crash or restart node.
func crashOrRestart(lf *labFlags, node string, restart bool) error {
	if err := labrun.CheckRoot(); err != nil {
		return err
	}
	lab, _, err := lf.load()
	if err != nil {
		return err
	}
	n := lab.Topology.Nodes[node]
	if n == nil {
		return fmt.Errorf("lab %s has no node %q", lab.Name, node)
	}
	switch n.Kind {
	case topology.KindGateway, topology.KindStrongSwan, topology.KindVPNC:
	default:
		return fmt.Errorf("%s is a %s node of lab %s: only gateway, strongswan and vpnc nodes run IPsec and can crash", node, n.Kind, lab.Name)
	}
	c, err := labrun.DialLab(lab.Name)
	if err != nil {
		return err
	}
	if err := c.Crash(context.Background(), node, restart); err != nil {
		return err
	}
	if restart {
		fmt.Printf("%s: restarted with no SAs\n", node)
	} else {
		fmt.Printf("%s: crashed\n", node)
	}
	return nil
}

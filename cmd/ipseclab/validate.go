package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/ipseclab/ipseclab/labs"
)

func newValidateCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "validate FILE",
		Short: "Check a lab file and report every problem with its line and column; create nothing",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			lab, _, err := labs.Load(args[0])
			if err != nil {
				return err
			}
			fmt.Printf("%s: lab %s is valid: %d nodes, %d links, %d LANs, %d IPsec connections, %d script steps\n",
				lab.File, lab.Name, len(lab.Topology.Nodes), len(lab.Topology.Links), len(lab.Topology.LANs), len(lab.IPsec), len(lab.Script))
			return nil
		},
	}
}

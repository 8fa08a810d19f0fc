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
		Long: `validate decodes and checks a lab file without creating anything. Every problem is
reported at once, as FILE:LINE:COL: what is wrong, on stderr, with exit code 2. Besides the
file's own form it follows each IPsec connection's first IKE packet through the lab's routes
and NAT boxes, from the initiator's IKE address to the responder's and back, and refuses a
connection whose packets cannot make the round trip, saying where they stop.

A valid lab exits 0 and prints a summary, then the address each side of each connection uses
for IKE and why that one (address: in the lab file, the interface of its gateway:, or its
first address).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			lab, _, err := labs.Load(args[0])
			if err != nil {
				return err
			}
			fmt.Printf("%s: lab %s is valid: %d nodes, %d links, %d LANs, %d IPsec connections, %d script steps\n",
				lab.File, lab.Name, len(lab.Topology.Nodes), len(lab.Topology.Links), len(lab.Topology.LANs), len(lab.IPsec), len(lab.Script))
			// The IKE address of a side is chosen when the lab file does not
			// give one; saying which one is what makes a stalled Main Mode
			// explainable before it happens.
			for _, e := range lab.IKEEndpoints() {
				fmt.Printf("  %s\n", e)
			}
			return nil
		},
	}
}

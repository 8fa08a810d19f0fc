package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ipseclab/ipseclab/node"
)

func newSAsCmd() *cobra.Command {
	var lf labFlags
	var socket string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "sas -t FILE [NODE] | --socket PATH",
		Short: "List the ISAKMP and IPsec SAs of a lab's IPsec nodes (or of a standalone daemon), with counters",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var c *node.Client
			switch {
			case socket != "":
				c = &node.Client{Socket: socket}
			default:
				if err := node.CheckRoot(); err != nil {
					return err
				}
				lab, _, err := lf.load()
				if err != nil {
					return err
				}
				if len(args) == 1 && lab.Topology.Nodes[args[0]] == nil {
					return fmt.Errorf("lab %s has no node %q", lab.Name, args[0])
				}
				if c, err = node.DialLab(lab.Name); err != nil {
					return err
				}
			}
			n := ""
			if len(args) == 1 {
				n = args[0]
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			sas, err := c.SAs(ctx, n)
			if err != nil {
				return err
			}
			if asJSON {
				return json.NewEncoder(os.Stdout).Encode(sas)
			}
			printSAs(sas)
			return nil
		},
	}
	lf.add(cmd, true)
	cmd.Flags().StringVar(&socket, "socket", "", "control socket of a standalone `ipseclab daemon`")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func printSAs(sas []node.SAInfo) {
	if len(sas) == 0 {
		fmt.Println("no SAs")
		return
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "NODE\tCONN\tTYPE\tSTATE\tLOCAL\tREMOTE\tSPI IN/ICOOKIE\tSPI OUT/RCOOKIE\tPROPOSAL\tMODE\tMTU\tPKTS IN/OUT\tBYTES IN/OUT\tDROPS (replay/integ/policy)")
	for _, s := range sas {
		mode := s.Mode
		if s.Encap {
			mode += "+udp"
		}
		counters, bytes, drops, mtu := "", "", "", ""
		if s.MTU > 0 {
			mtu = fmt.Sprint(s.MTU)
		}
		if s.Type != "isakmp" {
			counters = fmt.Sprintf("%d/%d", s.PacketsIn, s.PacketsOut)
			bytes = fmt.Sprintf("%d/%d", s.BytesIn, s.BytesOut)
			drops = fmt.Sprintf("%d/%d/%d", s.ReplayDrops, s.IntegrityFailures, s.PolicyDrops)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Node, s.Conn, s.Type, s.State, s.Local, s.Remote, s.SPIIn, s.SPIOut, s.Proposal, mode, mtu, counters, bytes, drops)
	}
	w.Flush()
}

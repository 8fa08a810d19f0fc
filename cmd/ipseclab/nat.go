//go:build linux

package main

import (
	"context"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ipseclab/ipseclab/labrun"
	"github.com/ipseclab/ipseclab/nat"
	"github.com/ipseclab/ipseclab/topology"
)

func newNATCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "nat show|flush -t FILE NODE",
		Short: "Show a NAT box's mappings, or flush them as a NAT reboot would",
	}
	var lf labFlags
	var asJSON bool
	show := &cobra.Command{
		Use:   "show -t FILE NODE",
		Short: "List a NAT node's current mappings from conntrack",
		Long: `show lists a NAT node's mappings from its conntrack table: inside, outside and remote
endpoints, age, time left and state. With --json, one array of objects in the lab file's
words: {"id", "proto", "forwarded", "inside", "outside", "remote", "age", "time-left", "state"},
endpoints as address:port (the address alone for ESP), durations with their unit ("29s").`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			lab, err := natNode(&lf, args[0])
			if err != nil {
				return err
			}
			c, err := labrun.DialLab(lab.Name)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			m, err := c.NATShow(ctx, args[0])
			if err != nil {
				return err
			}
			return printJSONOr(asJSON, m, func() { printMappings(m) })
		},
	}
	lf.add(show, true)
	show.Flags().BoolVar(&asJSON, "json", false, "print JSON")

	var lf2 labFlags
	flush := &cobra.Command{
		Use:   "flush -t FILE NODE",
		Short: "Drop every mapping of a NAT node (simulates a NAT reboot: the next packet gets a new mapping)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			lab, err := natNode(&lf2, args[0])
			if err != nil {
				return err
			}
			c, err := labrun.DialLab(lab.Name)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			m, err := c.NATFlush(ctx, args[0])
			if err != nil {
				return err
			}
			fmt.Printf("flushed %d mappings of %s\n", len(m), args[0])
			return nil
		},
	}
	lf2.add(flush, true)
	cmd.AddCommand(show, flush)
	return cmd
}

func natNode(lf *labFlags, name string) (*topology.Lab, error) {
	if err := labrun.CheckRoot(); err != nil {
		return nil, err
	}
	lab, _, err := lf.load()
	if err != nil {
		return nil, err
	}
	n := lab.Topology.Nodes[name]
	if n == nil || n.Kind != topology.KindNAT {
		return nil, fmt.Errorf("%s is not a NAT node of lab %s", name, lab.Name)
	}
	return lab, nil
}

func printMappings(ms []nat.Mapping) {
	if len(ms) == 0 {
		fmt.Println("no mappings")
		return
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "PROTO\tINSIDE\tOUTSIDE\tREMOTE\tAGE\tTIME LEFT\tSTATE")
	for _, m := range ms {
		inside, outside := m.Inside.String(), m.Outside.String()
		if m.Forwarded {
			outside += " (forward)"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", m.Proto, inside, outside, m.Remote, m.Age.Round(time.Second), m.TimeLeft.Round(time.Second), m.State)
	}
	w.Flush()
}

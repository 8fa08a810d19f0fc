package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ipseclab/ipseclab/node"
)

func newInspectCmd() *cobra.Command {
	var lf labFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "inspect [-t FILE | --name NAME] [--json]",
		Short: "Show a deployed lab: nodes, kinds, namespaces, interfaces, addresses, routes and link counters",
		Args:  noLabArgs(true),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := node.CheckRoot(); err != nil {
				return err
			}
			if lf.topo == "" && lf.name == "" {
				deployed, err := node.DeployedLabs()
				if err != nil {
					return err
				}
				switch len(deployed) {
				case 0:
					return fmt.Errorf("no lab is deployed")
				case 1:
					lf.name = deployed[0]
				default:
					return fmt.Errorf("several labs are deployed (%s); name one with --name", strings.Join(deployed, ", "))
				}
			}
			lab, _, err := lf.load()
			if err != nil {
				return err
			}
			var info *node.LabInfo
			note := ""
			if c, derr := node.DialLab(lab.Name); derr == nil {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				info, err = c.Info(ctx)
				cancel()
			} else {
				note = derr.Error()
				info, err = node.Inspect(lab)
			}
			if err != nil {
				return err
			}
			present := 0
			for _, n := range info.Nodes {
				if n.Present {
					present++
				}
			}
			if present == 0 {
				return fmt.Errorf("lab %s is not deployed", lab.Name)
			}
			if asJSON {
				enc := json.NewEncoder(os.Stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(info)
			}
			printInfo(info, note)
			return nil
		},
	}
	lf.add(cmd, true)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func printInfo(info *node.LabInfo, note string) {
	fmt.Printf("lab %s", info.Lab)
	if info.PID != 0 {
		fmt.Printf("  (lab process %d, %s, seed %d, up %s)", info.PID, info.Status, info.Seed, time.Since(info.Started).Round(time.Second))
	}
	fmt.Println()
	if note != "" {
		fmt.Println("note:", note)
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "NODE\tKIND\tNAMESPACE\tINTERFACE\tSTATE\tMTU\tADDRESSES")
	for _, n := range info.Nodes {
		if !n.Present {
			fmt.Fprintf(w, "%s\t%s\t%s\t(missing)\t\t\t\n", n.Name, n.Kind, n.Namespace)
			continue
		}
		first := true
		for _, i := range n.Interfaces {
			if i.Name == "lo" {
				continue
			}
			state := "down"
			if i.Up {
				state = "up"
			}
			name, kind, ns := "", "", ""
			if first {
				name, kind, ns = n.Name, string(n.Kind), n.Namespace
				first = false
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%d\t%s\n", name, kind, ns, i.Name, state, i.MTU, strings.Join(i.Addrs, " "))
		}
		if first {
			fmt.Fprintf(w, "%s\t%s\t%s\t\t\t\t\n", n.Name, n.Kind, n.Namespace)
		}
	}
	w.Flush()
	if len(info.Links) > 0 {
		fmt.Println()
		printLinks(info.Links)
	}
}

// printLinks shows each direction of each link with its settings and counters.
func printLinks(links []node.LinkStatus) {
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "LINK\tDIRECTION\tIMPAIRMENT\tSENT\tDELIVERED\tLOST\tQUEUE DROPS\tMTU DROPS\tDOWN DROPS\tDUPLICATED\tCORRUPTED\tREORDERED")
	for _, l := range links {
		for i, dir := range []string{l.AtoB, l.BtoA} {
			c := l.Counters[i]
			imp := l.Dirs[i]
			if imp == "" {
				imp = "-"
			}
			name := ""
			if i == 0 {
				name = l.Name
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\n", name, dir, imp,
				c.Sent, c.Delivered, c.Lost, c.QueueDrops, c.MTUDrops, c.DownDrops, c.Duplicated, c.Corrupted, c.Reordered)
		}
	}
	w.Flush()
}

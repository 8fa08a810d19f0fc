//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ipseclab/ipseclab/labrun"
	"github.com/ipseclab/ipseclab/timeline"
)

func newInspectCmd() *cobra.Command {
	var lf labFlags
	var asJSON bool
	var width int
	cmd := &cobra.Command{
		Use:   "inspect [-t FILE | --name NAME] [--json]",
		Short: "Show a deployed lab: nodes, kinds, namespaces, interfaces, addresses, routes and link counters",
		Args:  noLabArgs(true),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := labrun.CheckRoot(); err != nil {
				return err
			}
			if lf.topo == "" && lf.name == "" {
				deployed, err := labrun.DeployedLabs()
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
			var info *labrun.LabInfo
			note := ""
			if c, derr := labrun.DialLab(lab.Name); derr == nil {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				info, err = c.Info(ctx)
				cancel()
			} else {
				note = derr.Error()
				info, err = labrun.Inspect(lab)
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
			printInfo(os.Stdout, info, note, outputWidth(width))
			return nil
		},
	}
	lf.add(cmd, true)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	addWidthFlag(cmd, &width)
	return cmd
}

// printInfo shows the nodes with their interfaces and routes, then the
// links, as tables, or as one block per node and per link when a table
// would not fit width (0: no limit).
func printInfo(w io.Writer, info *labrun.LabInfo, note string, width int) {
	head := "lab " + info.Lab
	if info.PID != 0 {
		head += fmt.Sprintf("  (lab process %d, %s, seed %d, up %s)", info.PID, info.Status, info.Seed, time.Since(info.Started).Round(time.Second))
	}
	for _, l := range fitLines(head, width, 4) {
		fmt.Fprintln(w, l)
	}
	if note != "" {
		for _, l := range fitLines("note: "+note, width, 6) {
			fmt.Fprintln(w, l)
		}
	}
	var ifaceRows, routeRows [][]string
	var blocks []block
	for _, n := range info.Nodes {
		b := block{title: strings.Join(nonEmpty(n.Name, string(n.Kind), n.Namespace), "  ")}
		if !n.Present {
			ifaceRows = append(ifaceRows, []string{n.Name, string(n.Kind), n.Namespace, "(missing)", "", "", ""})
			b.title += "  (missing)"
			blocks = append(blocks, b)
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
			ifaceRows = append(ifaceRows, []string{name, kind, ns, i.Name, state, fmt.Sprint(i.MTU), strings.Join(i.Addrs, " ")})
			b.add(i.Name, strings.Join(append([]string{state, fmt.Sprintf("MTU %d", i.MTU)}, i.Addrs...), ", "))
		}
		if first {
			ifaceRows = append(ifaceRows, []string{n.Name, string(n.Kind), n.Namespace, "", "", "", ""})
		}
		for i, r := range n.Routes {
			name := ""
			if i == 0 {
				name = n.Name
			}
			routeRows = append(routeRows, []string{name, r})
			b.add("route", r)
		}
		blocks = append(blocks, b)
	}
	if fitsTable(width, ifaceRows, routeRows) {
		printTable(w, width, []string{"NODE", "KIND", "NAMESPACE", "INTERFACE", "STATE", "MTU", "ADDRESSES"}, ifaceRows, nil)
		if len(routeRows) > 0 {
			fmt.Fprintln(w)
			printTable(w, width, []string{"NODE", "ROUTES"}, routeRows, nil)
		}
	} else {
		fmt.Fprintln(w)
		printBlocks(w, width, blocks)
	}
	if len(info.Links) > 0 {
		fmt.Fprintln(w)
		writeLinks(w, info.Links, width)
	}
}

// fitsTable says whether the node table and the routes table fit: the two
// describe the nodes together, so they change layout together.
func fitsTable(width int, ifaces, routes [][]string) bool {
	var b bytes.Buffer
	printTable(&b, 0, []string{"NODE", "KIND", "NAMESPACE", "INTERFACE", "STATE", "MTU", "ADDRESSES"}, ifaces, nil)
	printTable(&b, 0, []string{"NODE", "ROUTES"}, routes, nil)
	for _, l := range strings.Split(b.String(), "\n") {
		if width > 0 && timeline.DisplayWidth(strings.TrimRight(l, " ")) > width {
			return false
		}
	}
	return true
}

// printLinks shows links on the terminal (for impair).
func printLinks(links []labrun.LinkStatus) { writeLinks(os.Stdout, links, outputWidth(-1)) }

// writeLinks shows each direction of each link with its settings and counters.
func writeLinks(w io.Writer, links []labrun.LinkStatus, width int) {
	var rows [][]string
	var blocks []block
	for _, l := range links {
		b := block{title: l.Name}
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
			rows = append(rows, []string{name, dir, imp, fmt.Sprint(c.Sent), fmt.Sprint(c.Delivered), fmt.Sprint(c.Lost), fmt.Sprint(c.QueueDrops),
				fmt.Sprint(c.MTUDrops), fmt.Sprint(c.DownDrops), fmt.Sprint(c.Duplicated), fmt.Sprint(c.Corrupted), fmt.Sprint(c.Reordered)})
			if l.Dirs[i] == "" {
				imp = "unimpaired"
			}
			b.add(dir, imp)
			b.add(dir, fmt.Sprintf("sent %d, delivered %d, lost %d, queue drops %d, MTU drops %d, down drops %d, duplicated %d, corrupted %d, reordered %d",
				c.Sent, c.Delivered, c.Lost, c.QueueDrops, c.MTUDrops, c.DownDrops, c.Duplicated, c.Corrupted, c.Reordered))
		}
		blocks = append(blocks, b)
	}
	printTable(w, width, []string{"LINK", "DIRECTION", "IMPAIRMENT", "SENT", "DELIVERED", "LOST", "QUEUE DROPS", "MTU DROPS", "DOWN DROPS", "DUPLICATED", "CORRUPTED", "REORDERED"}, rows, blocks)
}

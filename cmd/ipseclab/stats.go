//go:build linux

package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ipseclab/ipseclab/labrun"
	"github.com/ipseclab/ipseclab/timeline"
)

func newStatsCmd() *cobra.Command {
	var lf labFlags
	var socket string
	var asJSON bool
	var width int
	cmd := &cobra.Command{
		Use:   "stats -t FILE [NODE] | --socket PATH",
		Short: "Show every counter of a lab's IPsec nodes (or of a standalone daemon) outside their SAs: IKE, data plane, stack",
		Long: `stats shows what each IPsec node counted outside its SAs, drops above all: IKE messages
that were malformed or for no ISAKMP SA, half-open SAs refused or evicted, ESP for an unknown
SPI, and the drops of every SA there has been, summed (sas shows each SA's own). The names are
those of --json, where ` + "`jq '.[].counters.data_plane.unknown_spi'`" + ` reads one.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, n, err := nodeClient(&lf, socket, args)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			st, err := c.Stats(ctx, n)
			if err != nil {
				return err
			}
			return printJSONOr(asJSON, st, func() { printStats(os.Stdout, st, outputWidth(width)) })
		},
	}
	lf.add(cmd, true)
	cmd.Flags().StringVar(&socket, "socket", "", "control socket of a standalone ipseclab daemon")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	addWidthFlag(cmd, &width)
	return cmd
}

// groupTitles name the groups people know by another name than their key;
// any other group shows under its key.
var groupTitles = map[string]string{"ike": "IKE", "data_plane": "data plane"}

func groupTitle(name string) string {
	if t, ok := groupTitles[name]; ok {
		return t
	}
	return strings.ReplaceAll(name, "_", " ")
}

// printStats shows the nodes' counters as one table, a row per counter and a
// column per node, so that the two ends of a tunnel read side by side. When
// that would not fit width (0: no limit), each node's groups follow one
// another as blocks. Counters are printed as they came, every one of them:
// the table knows no names, so a counter added to the stack shows here too.
func printStats(w io.Writer, nodes []labrun.NodeStats, width int) {
	if len(nodes) == 0 {
		fmt.Fprintln(w, "no IPsec nodes")
		return
	}
	// The rows: every group any node has, in the order met, each with every
	// counter any node has in it (a strongSwan node has fewer).
	type key struct{ group, counter string }
	var groups []string
	counters := map[string][]string{}
	seen := map[key]bool{}
	values := make([]map[key]string, len(nodes))
	for i, n := range nodes {
		values[i] = map[key]string{}
		for _, g := range n.Counters {
			if !seen[key{g.Name, ""}] {
				seen[key{g.Name, ""}] = true
				groups = append(groups, g.Name)
			}
			for _, c := range g.Counters {
				k := key{g.Name, c.Name}
				values[i][k] = string(c.Value)
				if !seen[k] {
					seen[k] = true
					counters[g.Name] = append(counters[g.Name], c.Name)
				}
			}
		}
	}
	cells := [][]string{append([]string{"COUNTER"}, nodeNames(nodes)...)}
	for _, g := range groups {
		cells = append(cells, []string{groupTitle(g)})
		for _, c := range counters[g] {
			line := []string{"  " + c}
			for i := range nodes {
				v, ok := values[i][key{g, c}]
				if !ok {
					v = "-"
				}
				line = append(line, v)
			}
			cells = append(cells, line)
		}
	}
	var notes []string
	for _, n := range nodes {
		if n.Note != "" {
			notes = append(notes, fmt.Sprintf("%s (%s): %s", n.Node, n.Impl, n.Note))
		}
	}

	table := alignCounters(cells)
	fits := true
	for _, l := range table {
		if width > 0 && timeline.DisplayWidth(l) > width {
			fits = false
		}
	}
	if !fits {
		printBlocks(w, width, statsBlocks(nodes))
		return
	}
	for _, l := range table {
		fmt.Fprintln(w, l)
	}
	for _, n := range notes {
		for i, l := range fitLines(n, width, 2) {
			if i > 0 {
				l = "  " + l
			}
			fmt.Fprintln(w, l)
		}
	}
}

func nodeNames(nodes []labrun.NodeStats) []string {
	var out []string
	for _, n := range nodes {
		out = append(out, n.Node)
	}
	return out
}

// alignCounters lines up cells: names on the left, values on the right, as
// numbers are read.
// A group's title row has one cell, which may be wider than the column.
func alignCounters(cells [][]string) []string {
	widths := make([]int, len(cells[0]))
	for _, r := range cells {
		if len(r) == 1 {
			continue
		}
		for i, c := range r {
			widths[i] = max(widths[i], timeline.DisplayWidth(c))
		}
	}
	var out []string
	for _, r := range cells {
		var b strings.Builder
		for i, c := range r {
			pad := strings.Repeat(" ", max(widths[i]-timeline.DisplayWidth(c), 0))
			if i == 0 {
				b.WriteString(c + pad)
			} else {
				b.WriteString("  " + pad + c)
			}
		}
		out = append(out, strings.TrimRight(b.String(), " "))
	}
	return out
}

// statsBlocks is the vertical layout: one block per node and group.
func statsBlocks(nodes []labrun.NodeStats) []block {
	var blocks []block
	for _, n := range nodes {
		title := fmt.Sprintf("%s (%s)", n.Node, n.Impl)
		if len(n.Counters) == 0 {
			b := block{title: title}
			b.add("note", n.Note)
			blocks = append(blocks, b)
			continue
		}
		for i, g := range n.Counters {
			b := block{title: title + "  " + groupTitle(g.Name)}
			for _, c := range g.Counters {
				b.add(c.Name, string(c.Value))
			}
			if i == len(n.Counters)-1 {
				b.add("note", n.Note)
			}
			blocks = append(blocks, b)
		}
	}
	return blocks
}

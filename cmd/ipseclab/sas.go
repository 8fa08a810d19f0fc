//go:build linux

package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ipseclab/ipseclab/labrun"
	"github.com/ipseclab/ipseclab/timeline"
)

func newSAsCmd() *cobra.Command {
	var lf labFlags
	var socket string
	var asJSON bool
	var width int
	cmd := &cobra.Command{
		Use:   "sas -t FILE [NODE] | --socket PATH",
		Short: "List the ISAKMP and IPsec SAs of a lab's IPsec nodes (or of a standalone daemon), with counters",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, n, err := nodeClient(&lf, socket, args)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			sas, err := c.SAs(ctx, n)
			if err != nil {
				return err
			}
			return printJSONOr(asJSON, sas, func() { printSAs(os.Stdout, sas, outputWidth(width)) })
		},
	}
	lf.add(cmd, true)
	cmd.Flags().StringVar(&socket, "socket", "", "control socket of a standalone ipseclab daemon")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	addWidthFlag(cmd, &width)
	return cmd
}

// nodeClient reaches what answers for a lab's IPsec nodes: a standalone
// daemon at socket, or else the process of the lab the flags name, which
// must have the node that args may name. It returns that node ("": all).
func nodeClient(lf *labFlags, socket string, args []string) (*labrun.Client, string, error) {
	node := ""
	if len(args) == 1 {
		node = args[0]
	}
	if socket != "" {
		return &labrun.Client{Socket: socket}, node, nil
	}
	if err := labrun.CheckRoot(); err != nil {
		return nil, "", err
	}
	lab, _, err := lf.load()
	if err != nil {
		return nil, "", err
	}
	if node != "" && lab.Topology.Nodes[node] == nil {
		return nil, "", fmt.Errorf("lab %s has no node %q", lab.Name, node)
	}
	c, err := labrun.DialLab(lab.Name)
	return c, node, err
}

// printSAs lists SAs as a table, or as one block per SA when a row of the
// table would not fit width (0: no limit).
func printSAs(w io.Writer, sas []labrun.SAInfo, width int) {
	if len(sas) == 0 {
		fmt.Fprintln(w, "no SAs")
		return
	}
	var rows [][]string
	var blocks []block
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
			drops = fmt.Sprintf("%d/%d/%d/%d", s.ReplayDrops, s.IntegrityFailures, s.PolicyDrops, s.OtherDrops)
		}
		local, remote := s.Local, s.Remote
		if s.VirtualIP != "" {
			// The lent address belongs to the client's end.
			lease := " (" + strings.Join(nonEmpty(s.VirtualIP, s.XAuthUser), ", ") + ")"
			if s.Role == "responder" {
				remote += lease
			} else {
				local += lease
			}
		}
		rows = append(rows, []string{s.Node, s.Conn, s.Type, s.State, local, remote, s.SPIIn, s.SPIOut, s.Proposal, mode, mtu, counters, bytes, drops})
		blocks = append(blocks, saBlock(s))
	}
	printTable(w, width, []string{"NODE", "CONN", "TYPE", "STATE", "LOCAL", "REMOTE", "SPI IN/ICOOKIE", "SPI OUT/RCOOKIE", "PROPOSAL", "MODE", "MTU", "PKTS IN/OUT", "BYTES IN/OUT", "DROPS (replay/integ/policy/other)"}, rows, blocks)
}

// saBlock is one SA in the vertical layout, which has room to name what the
// table abbreviates.
func saBlock(s labrun.SAInfo) block {
	b := block{title: strings.Join(nonEmpty(s.Node, s.Conn, s.Type, s.State), "  ")}
	if s.Impl != "" {
		b.title += "  (" + s.Impl + ")"
	}
	if s.Type == "isakmp" {
		via := "UDP 500"
		if s.Encap {
			via = "UDP 4500 (NAT-T)"
		}
		b.add("role", s.Role)
		b.add("local", s.Local)
		b.add("remote", s.Remote)
		b.add("cookies", s.SPIIn+" (initiator) / "+s.SPIOut+" (responder)")
		b.add("proposal", s.Proposal)
		b.add("transport", via)
		b.add("age", s.Age)
		b.add("xauth user", s.XAuthUser)
		b.add("virtual address", s.VirtualIP)
		return b
	}
	mode := s.Mode
	if s.Encap {
		mode += ", ESP in UDP"
	}
	b.add("local", s.Local)
	b.add("remote", s.Remote)
	b.add("SPIs", "in "+s.SPIIn+", out "+s.SPIOut)
	b.add("proposal", s.Proposal)
	b.add("mode", mode)
	if s.LocalTS != "" || s.RemoteTS != "" {
		b.add("selectors", s.LocalTS+" === "+s.RemoteTS)
	}
	if s.MTU > 0 {
		b.add("inner MTU", fmt.Sprint(s.MTU))
	}
	b.add("packets", fmt.Sprintf("%d in, %d out", s.PacketsIn, s.PacketsOut))
	b.add("bytes", fmt.Sprintf("%d in, %d out", s.BytesIn, s.BytesOut))
	b.add("drops", fmt.Sprintf("%d replay, %d integrity, %d policy, %d other", s.ReplayDrops, s.IntegrityFailures, s.PolicyDrops, s.OtherDrops))
	b.add("age", s.Age)
	return b
}

func nonEmpty(ss ...string) []string {
	var out []string
	for _, s := range ss {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// A block is one item of a vertical listing: a title, then "label  value"
// lines.
type block struct {
	title  string
	fields [][2]string
}

// add appends a field, unless it has no value.
func (b *block) add(label, value string) {
	if value != "" {
		b.fields = append(b.fields, [2]string{label, value})
	}
}

// printTable prints rows as aligned columns under header, unless a line would
// be wider than width (0: no limit): then each row's block, one after the
// other. Wide tables are for wide terminals and for programs; a row wrapped
// over three lines is for neither.
func printTable(w io.Writer, width int, header []string, rows [][]string, blocks []block) {
	var b bytes.Buffer
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	tw.Flush()
	fits := true
	for _, l := range strings.Split(b.String(), "\n") {
		if width > 0 && timeline.DisplayWidth(strings.TrimRight(l, " ")) > width {
			fits = false
			break
		}
	}
	if fits {
		_, _ = w.Write(b.Bytes())
		return
	}
	printBlocks(w, width, blocks)
}

// printBlocks prints blocks one after the other, a blank line between them,
// values wrapped under themselves, and a label said once for the values
// that follow it (a node's routes).
func printBlocks(w io.Writer, width int, blocks []block) {
	for i, b := range blocks {
		if i > 0 {
			fmt.Fprintln(w)
		}
		for _, l := range fitLines(b.title, width, 0) {
			fmt.Fprintln(w, l)
		}
		lw := 0
		for _, f := range b.fields {
			lw = max(lw, timeline.DisplayWidth(f[0]))
		}
		col := 2 + lw + 2
		for k, f := range b.fields {
			for j, l := range fitLines(f[1], width, col) {
				label := ""
				if j == 0 && (k == 0 || b.fields[k-1][0] != f[0]) {
					label = f[0]
				}
				fmt.Fprintf(w, "  %-*s  %s\n", lw, label, l)
			}
		}
	}
}

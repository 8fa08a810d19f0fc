//go:build linux

package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"time"

	"github.com/spf13/cobra"

	"github.com/ipseclab/ipseclab/labrun"
)

func newPingCmd() *cobra.Command {
	var lf labFlags
	var opt labrun.PingOptions
	cmd := &cobra.Command{
		Use:   "ping -t FILE FROM DEST [-c N] [-i INTERVAL]",
		Short: "Send ICMP echo requests from a node (built in: no iputils needed)",
		Long: `ping sends ICMP echo requests from inside the FROM node's namespace and prints each
reply and a loss summary, as ping does. DEST is an IPv4 address or a node name (its first
address). The exit code is 0 if any reply came back, 1 otherwise.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := labrun.CheckRoot(); err != nil {
				return err
			}
			lab, _, err := lf.load()
			if err != nil {
				return err
			}
			from := args[0]
			if lab.Topology.Nodes[from] == nil {
				return fmt.Errorf("lab %s has no node %q", lab.Name, from)
			}
			dst, err := resolveDest(lab, args[1])
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
			defer stop()
			fmt.Printf("PING %s from %s: %d data bytes\n", dst, from, max(opt.Size, 56))
			res, err := labrun.Ping(ctx, labrun.NetnsPath(labrun.NodeNetns(lab.Name, from)), dst, opt, func(r labrun.PingReply) {
				fmt.Printf("%d bytes from %s: icmp_seq=%d ttl=%d time=%.3f ms\n", r.Size, r.From, r.Seq, r.TTL, float64(r.RTT.Microseconds())/1000)
			})
			for _, e := range res.Errors {
				fmt.Println(e)
			}
			fmt.Println()
			fmt.Println(res.Summary())
			if err != nil && ctx.Err() == nil {
				return err
			}
			if res.Received == 0 {
				return exitCode(1, nil)
			}
			return nil
		},
	}
	lf.add(cmd, true)
	cmd.Flags().IntVarP(&opt.Count, "count", "c", 3, "echo requests to send")
	cmd.Flags().DurationVarP(&opt.Interval, "interval", "i", time.Second, "time between requests")
	cmd.Flags().DurationVarP(&opt.Timeout, "timeout", "W", time.Second, "how long to wait for the last reply")
	cmd.Flags().IntVarP(&opt.Size, "size", "s", 56, "payload bytes")
	cmd.Flags().BoolVar(&opt.DontFragment, "df", false, "set Don't Fragment; refuse what exceeds the known path MTU (ping -M do)")
	return cmd
}

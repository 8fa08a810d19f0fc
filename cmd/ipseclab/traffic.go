//go:build linux

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/signal"

	"github.com/spf13/cobra"

	"github.com/ipseclab/ipseclab/impair/netem"
	"github.com/ipseclab/ipseclab/labrun"
	"github.com/ipseclab/ipseclab/topology"
)

func newTrafficCmd() *cobra.Command {
	var lf labFlags
	var opt labrun.TrafficOptions
	var rate, bytes string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "traffic -t FILE FROM DEST [--proto udp|tcp] [--duration 3s] [--rate 10mbit]",
		Short: "Send a numbered UDP stream or a checksummed TCP transfer between two nodes",
		Long: fmt.Sprintf(`traffic is a built-in traffic generator. UDP sends numbered packets, paced at
--rate (%s unless told), and reports the rate and how many were received, lost, reordered and
duplicated. TCP sends random bytes as fast as the path takes them and compares their SHA-256 at
both ends. DEST is an address of a lab node (or a node name); the receiver runs in that node's
namespace.`, netem.Rate(labrun.DefaultUDPRate)),
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := labrun.CheckRoot(); err != nil {
				return err
			}
			lab, _, err := lf.load()
			if err != nil {
				return err
			}
			if lab.Topology.Nodes[args[0]] == nil {
				return fmt.Errorf("lab %s has no node %q", lab.Name, args[0])
			}
			dst, err := resolveDest(lab, args[1])
			if err != nil {
				return err
			}
			owner, _, ok := lab.Owner(dst)
			if !ok {
				return fmt.Errorf("no node of lab %s has address %s; the traffic generator needs a receiver inside the lab", lab.Name, dst)
			}
			if rate != "" {
				r, err := netem.ParseRate(rate)
				if err != nil {
					return err
				}
				opt.Rate = float64(r)
			}
			if bytes != "" {
				b, err := topology.ParseSize(bytes)
				if err != nil {
					return err
				}
				opt.Bytes = b
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
			defer stop()
			res, err := labrun.Traffic(ctx, labrun.NetnsPath(labrun.NodeNetns(lab.Name, args[0])), labrun.NetnsPath(labrun.NodeNetns(lab.Name, owner)), dst, opt)
			if err != nil {
				return err
			}
			if asJSON {
				return json.NewEncoder(os.Stdout).Encode(res)
			}
			fmt.Println(res)
			if !res.Intact() {
				return exitCode(1, nil)
			}
			return nil
		},
	}
	lf.add(cmd, true)
	cmd.Flags().StringVar(&opt.Proto, "proto", "udp", "udp or tcp")
	cmd.Flags().IntVar(&opt.Port, "port", 5201, "destination port")
	cmd.Flags().DurationVar(&opt.Duration, "duration", 0, "how long to send (default 3s unless --bytes or --count)")
	cmd.Flags().StringVar(&rate, "rate", "", fmt.Sprintf("udp: pace to this rate, e.g. 500kbit, 100mbit (default %s)", netem.Rate(labrun.DefaultUDPRate)))
	cmd.Flags().IntVar(&opt.Size, "size", 1000, "udp payload bytes")
	cmd.Flags().Int64Var(&opt.Count, "count", 0, "udp: packets to send")
	cmd.Flags().StringVar(&bytes, "bytes", "", "tcp: bytes to send, e.g. 100mb")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	return cmd
}

// resolveDest accepts an address or a node name (its first IPv4 address).
func resolveDest(lab *topology.Lab, s string) (netip.Addr, error) {
	if ip, err := netip.ParseAddr(s); err == nil {
		return ip, nil
	}
	if n := lab.Topology.Nodes[s]; n != nil {
		for _, i := range n.Ifaces {
			for _, a := range i.Addrs {
				if a.Addr().Is4() {
					return a.Addr(), nil
				}
			}
		}
		return netip.Addr{}, fmt.Errorf("node %s has no IPv4 address", s)
	}
	return netip.Addr{}, fmt.Errorf("%q is neither an IP address nor a node of lab %s", s, lab.Name)
}

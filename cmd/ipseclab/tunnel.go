//go:build linux

package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/ipseclab/ipseclab/labrun"
)

func newTunnelCmd() *cobra.Command {
	var lf labFlags
	var side, socket string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "tunnel up|down -t FILE CONN | --socket PATH CONN",
		Short: "Bring an IPsec connection up (initiate) or down (delete its SAs) by hand",
		Long: `tunnel up starts a connection from its initiator (or from --node), as a first packet
matching its policy would: step 1 of a tunnel's life by hand. tunnel down deletes its SAs
with Delete notifications, which the peer sees as step 5.`,
		Args:      cobra.ExactArgs(2),
		ValidArgs: []string{"up", "down"},
		RunE: func(cmd *cobra.Command, args []string) error {
			if args[0] != "up" && args[0] != "down" {
				return fmt.Errorf("tunnel %q: say up or down", args[0])
			}
			conn := args[1]
			c := &labrun.Client{Socket: socket}
			if socket == "" {
				if err := labrun.CheckRoot(); err != nil {
					return err
				}
				lab, _, err := lf.load()
				if err != nil {
					return err
				}
				if lab.IPsec[conn] == nil {
					return fmt.Errorf("lab %s has no connection %q", lab.Name, conn)
				}
				if c, err = labrun.DialLab(lab.Name); err != nil {
					return err
				}
			}
			if err := c.Tunnel(context.Background(), labrun.TunnelRequest{Connection: conn, Node: side, Up: args[0] == "up", TimeoutMS: timeout.Milliseconds()}); err != nil {
				return err
			}
			fmt.Printf("%s: %s\n", conn, map[bool]string{true: "up", false: "down"}[args[0] == "up"])
			return nil
		},
	}
	lf.add(cmd, true)
	cmd.Flags().StringVar(&side, "node", "", "the side that acts (default: the connection's initiator)")
	cmd.Flags().StringVar(&socket, "socket", "", "control socket of a standalone ipseclab daemon (instead of -t)")
	cmd.Flags().DurationVar(&timeout, "timeout", 60*time.Second, "how long to wait; on a timeout, the error says where the negotiation stands")
	return cmd
}

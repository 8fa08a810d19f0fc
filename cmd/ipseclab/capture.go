//go:build linux

package main

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/ipseclab/ipseclab/labrun"
)

func newCaptureCmd() *cobra.Command {
	var lf labFlags
	var out, point string
	var duration time.Duration
	cmd := &cobra.Command{
		Use:   "capture -t FILE LINK -w out.pcap|-",
		Short: "Capture a link's packets to a pcap file, or stream them to stdout for tshark or Wireshark",
		Long: `capture records the frames crossing a link. By default the capture point is the receiving
end of each direction, after the impairments: the pcap shows what the receiver actually got
(no lost frames; duplicates, delay, reordering and corruption as delivered), timestamped at
delivery. --point sender records every frame as sent, before the impairments, lost ones
included. '-w -' streams pcap to stdout:

  ipseclab capture -t lab.yaml isp:eth0 -w - | tshark -r -`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := labrun.CheckRoot(); err != nil {
				return err
			}
			if out == "" {
				return fmt.Errorf("say where to write the capture: -w FILE, or -w - for stdout")
			}
			lab, _, err := lf.load()
			if err != nil {
				return err
			}
			link := lab.FindLink(args[0])
			if link == nil {
				return fmt.Errorf("lab %s has no link with endpoint %q", lab.Name, args[0])
			}
			c, err := labrun.DialLab(lab.Name)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGPIPE)
			defer stop()
			if duration > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, duration)
				defer cancel()
			}
			body, err := c.Stream(ctx, "GET", "/v1/links/capture?link="+url.QueryEscape(link.Name)+"&point="+url.QueryEscape(point), nil)
			if err != nil {
				return err
			}
			defer body.Close()
			w := io.Writer(os.Stdout)
			if out != "-" {
				f, err := os.Create(out)
				if err != nil {
					return err
				}
				defer f.Close()
				w = f
				fmt.Fprintf(os.Stderr, "capturing %s to %s (Ctrl-C stops)\n", link.Name, out)
			}
			if _, err := io.Copy(w, body); err != nil && ctx.Err() == nil {
				return err
			}
			return nil
		},
	}
	lf.add(cmd, true)
	cmd.Flags().StringVarP(&out, "write", "w", "", "pcap file to write, or - for stdout")
	cmd.Flags().StringVar(&point, "point", "receiver", "receiver (after impairments) or sender (before)")
	cmd.Flags().DurationVar(&duration, "duration", 0, "stop after this long (default: until Ctrl-C)")
	return cmd
}

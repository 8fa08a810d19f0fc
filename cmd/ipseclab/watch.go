//go:build linux

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/ipseclab/ipseclab/events"
	"github.com/ipseclab/ipseclab/labrun"
	"github.com/ipseclab/ipseclab/timeline"
)

func newWatchCmd() *cobra.Command {
	var lf labFlags
	var asJSON, explain, verbose, keys, all bool
	var width int
	cmd := &cobra.Command{
		Use:   "watch -t FILE | --name NAME",
		Short: "Follow a deployed lab's timeline (or its event stream as JSON lines) until Ctrl-C",
		Long: `watch attaches to a lab started with 'deploy' (or 'run --keep') and shows its events as
'run' does: grouped under the five steps of a tunnel's life, IKE messages as a ladder. By
default it starts with what happens next; --all replays the lab's kept history first.`,
		Args: noLabArgs(true),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := labrun.CheckRoot(); err != nil {
				return err
			}
			lab, _, err := lf.load()
			if err != nil {
				return err
			}
			c, err := labrun.DialLab(lab.Name)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			signal.Ignore(syscall.SIGPIPE)
			out := bufio.NewWriterSize(os.Stdout, 64<<10)
			tl := timeline.New(out, timeline.Options{Color: term.IsTerminal(int(os.Stdout.Fd())), Explain: explain,
				Verbose: verbose, Keys: keys, Names: addressNames(lab), Silent: silentNodes(lab), Width: outputWidth(width)})
			enc := json.NewEncoder(out)
			show := func(e events.Event) bool {
				if asJSON {
					return enc.Encode(e) == nil
				}
				tl.Write(e)
				return true
			}
			if all {
				err = c.Events(ctx, 0, show, func() { _ = out.Flush() })
			} else {
				err = c.Follow(ctx, show, func() { _ = out.Flush() })
			}
			if !asJSON {
				tl.Flush()
			}
			_ = out.Flush()
			if ctx.Err() != nil {
				return nil
			}
			return err
		},
	}
	lf.add(cmd, true)
	cmd.Flags().BoolVar(&all, "all", false, "replay the lab's history first")
	cmd.Flags().BoolVar(&asJSON, "json", false, "JSON lines instead of the timeline")
	cmd.Flags().BoolVar(&explain, "explain", true, "explain each line")
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "show every event")
	cmd.Flags().BoolVar(&keys, "keys", false, "show derived keys (when the lab publishes them)")
	addWidthFlag(cmd, &width)
	return cmd
}

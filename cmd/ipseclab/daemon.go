//go:build linux

package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/ipseclab/ipseclab/events"
	"github.com/ipseclab/ipseclab/labrun"
	"github.com/ipseclab/ipseclab/timeline"
	"github.com/ipseclab/ipseclab/topology"
)

func newDaemonCmd() *cobra.Command {
	var file string
	var asJSON, explain bool
	cmd := &cobra.Command{
		Use:   "daemon --config FILE",
		Short: "Run ipseclab's IKEv1/ESP stack on its own, in the current network namespace, outside any lab",
		Long: `daemon runs one node's IPsec stack in the network namespace it is started in, so that it can
meet a peer on a real host or in a namespace ipseclab did not create. FILE holds the node's
connections in the vocabulary of a lab's ipsec: block, from this node's point of view:

  node: gw1
  connections:
    office:
      role: initiator               # or responder (remote address then optional)
      local:  {address: 192.0.2.1}
      remote: {address: 192.0.2.2}
      auth: {secret: lab-only-secret}
      ike: {mode: main, proposals: [aes128-sha256-modp2048]}
      child: {local-ts: 10.1.0.0/24, remote-ts: 10.2.0.0/24, esp: [aes128gcm16], start: trap}

It prints the timeline until SIGINT/SIGTERM, then deletes its SAs. Query it with
'ipseclab sas --socket PATH'.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := labrun.CheckRoot(); err != nil {
				return err
			}
			if file == "" {
				return fmt.Errorf("give the configuration with --config FILE")
			}
			cfg, err := topology.LoadDaemon(file)
			if err != nil {
				return err
			}
			bus := events.NewBus(cfg.Node)
			sub := bus.Subscribe(nil)
			tl := timeline.New(os.Stdout, timeline.Options{Color: term.IsTerminal(int(os.Stdout.Fd())), Explain: explain})
			enc := json.NewEncoder(os.Stdout)
			go func() {
				for e := range sub.C() {
					if asJSON {
						_ = enc.Encode(e)
					} else {
						tl.Write(e)
					}
				}
			}()
			d, err := labrun.StartDaemon(cfg, bus)
			if err != nil {
				return err
			}
			fmt.Fprintf(os.Stderr, "%s\n", cfg)
			sigs := make(chan os.Signal, 1)
			signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
			select {
			case <-sigs:
			case <-d.Done():
			}
			err = d.Close()
			bus.Close()
			return err
		},
	}
	cmd.Flags().StringVar(&file, "config", "", "the node's IPsec configuration (YAML)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print events as JSON lines instead of the timeline")
	cmd.Flags().BoolVar(&explain, "explain", true, "explain each line")
	return cmd
}

//go:build linux

package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/ipseclab/ipseclab/events"
	"github.com/ipseclab/ipseclab/labrun"
	"github.com/ipseclab/ipseclab/topology"
	"github.com/ipseclab/ipseclab/web"
)

func newWebCmd() *cobra.Command {
	var lf labFlags
	var addr string
	cmd := &cobra.Command{
		Use:   "web --name LAB | -t FILE [--addr ADDR]",
		Short: "Serve a deployed lab's live web view (topology, packets, ladder, inspector) until Ctrl-C",
		Long: `web serves the page of a lab started with 'deploy' (or 'run --keep'): its topology with the
packets moving on it, a ladder of every exchange, and an inspector with the decrypted payloads.
The page follows what happens in the lab, whoever causes it ('tunnel up', 'impair', 'nat flush'
from another terminal). It is read-only: nothing on it changes the lab.

It listens on ` + web.DefaultAddr + ` unless --addr says otherwise; give an explicit address
(0.0.0.0:8080) to reach it from another machine, a classroom's projector say.`,
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
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
			defer stop()
			srv := web.NewServer(web.Config{Mode: web.Live, Lab: lab, State: labState(c, lab)})
			l, err := web.Listen(addr)
			if err != nil {
				return err
			}
			announceWeb(l, "Ctrl-C stops it")
			go func() {
				_ = c.Events(ctx, 0, func(e events.Event) bool {
					_ = srv.Add(&e)
					return true
				}, nil)
				srv.End()
				if ctx.Err() == nil {
					fmt.Fprintf(os.Stderr, "lab %s has gone; the page keeps its history until Ctrl-C\n", lab.Name)
				}
			}()
			return srv.Serve(ctx, l)
		},
	}
	lf.add(cmd, true)
	cmd.Flags().StringVar(&addr, "addr", web.DefaultAddr, "listen on this address (HOST:PORT; port 0 picks one)")
	return cmd
}

// labState answers the view's /api/state from the lab process: the NAT
// boxes' mappings and the SAs, by node, as `nat show --json` and `sas
// --json` print them.
func labState(c *labrun.Client, lab *topology.Lab) web.StateFunc {
	return func(ctx context.Context) (any, error) {
		st := struct {
			NAT map[string]any             `json:"nat"`
			SAs map[string][]labrun.SAInfo `json:"sas"`
		}{NAT: map[string]any{}, SAs: map[string][]labrun.SAInfo{}}
		sas, err := c.SAs(ctx, "")
		if err != nil {
			return nil, err
		}
		for _, sa := range sas {
			st.SAs[sa.Node] = append(st.SAs[sa.Node], sa)
		}
		for _, n := range lab.NodeNames() {
			if lab.Topology.Nodes[n].Kind != topology.KindNAT {
				continue
			}
			m, err := c.NATShow(ctx, n)
			if err != nil {
				return nil, fmt.Errorf("NAT %s: %w", n, err)
			}
			if m == nil {
				st.NAT[n] = []any{}
			} else {
				st.NAT[n] = m
			}
		}
		return st, nil
	}
}

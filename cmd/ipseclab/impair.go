//go:build linux

package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/ipseclab/ipseclab/impair/netem"
	"github.com/ipseclab/ipseclab/labrun"
)

func newImpairCmd() *cobra.Command {
	var lf labFlags
	var reset, show, asJSON bool
	var from string
	values := map[string]*string{}
	cmd := &cobra.Command{
		Use:   "impair -t FILE LINK [--delay 50ms --jitter 5ms --loss 20% ...] | --reset | --show",
		Short: "Change a link's impairment at run time (netem's vocabulary), reset it, or show it with its counters",
		Long: `impair changes how a link misbehaves while the lab runs. LINK is one of its endpoints
(node:iface) or its full name (a:eth0--b:eth0).

A change MERGES with the current settings, field by field: --loss 20% on a link with delay
30ms gives delay 30ms and loss 20%. To remove a setting, set it to zero (--loss 0%,
--delay 0). --reset first returns the link to the lab file's settings. Settings apply to
both directions unless --from names the endpoint whose outgoing direction to change.
The change takes effect on the next packet.`,
		Example: `  ipseclab impair -t lab.yaml isp:eth0 --delay 100ms --jitter 10ms
  ipseclab impair -t lab.yaml isp:eth0 --loss "gemodel 1% 30%"
  ipseclab impair -t lab.yaml isp:eth0 --down
  ipseclab impair -t lab.yaml isp:eth0 --reset
  ipseclab impair -t lab.yaml isp:eth0 --show`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := labrun.CheckRoot(); err != nil {
				return err
			}
			lab, _, err := lf.load()
			if err != nil {
				return err
			}
			link := lab.FindLink(args[0])
			if link == nil {
				return fmt.Errorf("lab %s has no link with endpoint %q", lab.Name, args[0])
			}
			prefix := ""
			if from != "" {
				switch from {
				case link.Endpoints[0].String():
					prefix = "a-to-b."
				case link.Endpoints[1].String():
					prefix = "b-to-a."
				default:
					return fmt.Errorf("--from %s is not an endpoint of link %s", from, link.Name)
				}
			}
			var changeArgs []string
			for _, f := range netem.Flags() {
				if !cmd.Flags().Changed(f.Name) {
					continue
				}
				name := f.Name
				if f.Field != netem.FieldMTU && f.Field != netem.FieldDown && f.Name != "up" {
					name = prefix + name
				}
				changeArgs = append(changeArgs, "--"+name+"="+*values[f.Name])
			}
			c, err := labrun.DialLab(lab.Name)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var st labrun.LinkStatus
			if show || (len(changeArgs) == 0 && !reset) {
				links, err := c.Links(ctx)
				if err != nil {
					return err
				}
				for _, l := range links {
					if l.Name == link.Name {
						st = l
					}
				}
			} else if st, err = c.Impair(ctx, labrun.ImpairRequest{Link: link.Name, Args: changeArgs, Reset: reset}); err != nil {
				return err
			}
			return printJSONOr(asJSON, st, func() { printLinks([]labrun.LinkStatus{st}) })
		},
	}
	lf.add(cmd, true)
	for _, f := range netem.Flags() {
		v := new(string)
		values[f.Name] = v
		cmd.Flags().StringVar(v, f.Name, "", f.Usage)
		if f.Bool {
			cmd.Flags().Lookup(f.Name).NoOptDefVal = "true"
		}
	}
	cmd.Flags().BoolVar(&reset, "reset", false, "return to the lab file's settings (then apply any other flags)")
	cmd.Flags().BoolVar(&show, "show", false, "show the link's settings and counters")
	cmd.Flags().StringVar(&from, "from", "", "change only the direction leaving this endpoint (node:iface)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().SortFlags = false
	return cmd
}

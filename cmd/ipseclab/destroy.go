//go:build linux

package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/ipseclab/ipseclab/labrun"
)

func newDestroyCmd() *cobra.Command {
	var lf labFlags
	var all bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "destroy -t FILE | --name NAME | --all",
		Short: "Remove a lab (or every lab) and everything it created",
		Long: `destroy asks the lab process to stop and remove its namespaces. If the process does not
answer (or was killed), destroy removes the lab from its recorded state and by its namespace
prefix, so nothing is left. --all removes every ipseclab lab and leftover on this machine.`,
		Args: noLabArgs(true),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := labrun.CheckRoot(); err != nil {
				return err
			}
			if all {
				if lf.topo != "" || lf.name != "" {
					return errors.New("--all removes every lab; do not combine it with -t or --name")
				}
				labs, err := labrun.DestroyAll(timeout)
				for _, l := range labs {
					fmt.Printf("destroyed lab %s\n", l)
				}
				if len(labs) == 0 {
					fmt.Println("no labs to destroy")
				}
				return err
			}
			name := lf.name
			if name == "" {
				lab, _, err := lf.load()
				if err != nil {
					return err
				}
				name = lab.Name
			}
			deployed, err := labrun.DeployedLabs()
			if err != nil {
				return err
			}
			found := false
			for _, l := range deployed {
				found = found || l == name
			}
			if !found {
				return fmt.Errorf("lab %s is not deployed", name)
			}
			if err := labrun.DestroyLab(name, timeout); err != nil {
				return err
			}
			fmt.Printf("destroyed lab %s\n", name)
			return nil
		},
	}
	lf.add(cmd, true)
	cmd.Flags().BoolVar(&all, "all", false, "destroy every lab and leftover on this machine")
	cmd.Flags().DurationVar(&timeout, "timeout", 10*time.Second, "how long to wait for the lab process before killing it")
	return cmd
}

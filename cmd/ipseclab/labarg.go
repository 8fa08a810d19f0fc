package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/ipseclab/ipseclab/labs"
	"github.com/ipseclab/ipseclab/topology"
)

// labFlags are the ways a verb names a lab: a file (-t, as containerlab), or
// the name of a deployed lab (--name).
type labFlags struct {
	topo string
	name string
}

func (f *labFlags) add(cmd *cobra.Command, withName bool) {
	cmd.Flags().StringVarP(&f.topo, "topo", "t", "", "lab file or directory, or the name of a shipped lab")
	if withName {
		cmd.Flags().StringVar(&f.name, "name", "", "name of a deployed lab (instead of -t)")
	}
}

// noLabArgs is the Args check of the verbs that name their lab with -t (and
// --name): a lab given as an argument, as `run` takes it, gets a sentence that
// shows the flag, where cobra's own check would call it an unknown command.
func noLabArgs(withName bool) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return nil
		}
		hint := fmt.Sprintf("%s -t %s", cmd.CommandPath(), args[0])
		if withName {
			hint += fmt.Sprintf(" (or --name %s for a deployed lab)", args[0])
		}
		return fmt.Errorf("%s takes the lab as a flag, not as an argument: %s", cmd.Name(), hint)
	}
}

// load returns the lab the flags name. With --name, the lab file recorded when
// the lab was deployed is used.
func (f *labFlags) load() (*topology.Lab, string, error) {
	switch {
	case f.topo != "" && f.name != "":
		return nil, "", errors.New("give -t FILE or --name NAME, not both")
	case f.topo != "":
		return labs.Load(f.topo)
	case f.name != "":
		return loadDeployed(f.name)
	}
	return nil, "", errors.New("which lab? give -t FILE (or --name NAME of a deployed lab)")
}

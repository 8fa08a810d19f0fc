package main

import (
	"fmt"
	"runtime"

	"github.com/spf13/cobra"
)

// pureCmds only read lab files, so they build and work on any OS: a lab can
// be written and checked on a laptop and run on a Linux machine.
func pureCmds() []*cobra.Command {
	return []*cobra.Command{newValidateCmd(), newSchemaCmd(), newGraphCmd(), newLabsCmd(), newReplayCmd()}
}

// pureVerbs names pureCmds for the stand-ins' message.
const pureVerbs = "validate, schema, graph, labs and replay"

// linuxVerbs names the verbs of linuxCmds that a user types (serve is the lab
// process's own), for their stand-ins on other OSes. A test keeps the two
// lists alike.
var linuxVerbs = []string{"capture", "crash", "daemon", "deploy", "destroy", "exec", "impair", "inspect", "nat", "ping", "pki", "restart", "run", "sas", "stats", "traffic", "tunnel", "watch", "web"}

// linuxStandIns are what other OSes have for the verbs that need Linux:
// commands that say so, where cobra would say "unknown command", so that
// someone who follows the README on a laptop learns why a verb is missing and
// what works there.
func linuxStandIns() []*cobra.Command {
	var cmds []*cobra.Command
	for _, name := range linuxVerbs {
		cmds = append(cmds, &cobra.Command{
			Use:                name,
			Short:              "(Linux only)",
			DisableFlagParsing: true, // whatever follows, the answer is the same
			RunE: func(*cobra.Command, []string) error {
				return fmt.Errorf("%s needs Linux network namespaces; on %s only %s work", name, runtime.GOOS, pureVerbs)
			},
		})
	}
	return cmds
}

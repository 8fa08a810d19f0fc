package main

import (
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// Other OSes get a stand-in for each verb that needs Linux, named from
// linuxVerbs: a verb added to linuxCmds alone would be "unknown" there.
func TestVerbsStandInsNameEveryLinuxVerb(t *testing.T) {
	var names []string
	for _, c := range linuxCmds() {
		if !c.Hidden {
			names = append(names, c.Name())
		}
	}
	slices.Sort(names)
	if !slices.Equal(names, linuxVerbs) {
		t.Errorf("linuxCmds has the verbs %q, linuxVerbs names %q", names, linuxVerbs)
	}
}

func TestVerbsStandInSaysWhatWorks(t *testing.T) {
	root := &cobra.Command{Use: "ipseclab", SilenceUsage: true, SilenceErrors: true}
	root.AddCommand(linuxStandIns()...)
	root.SetArgs([]string{"run", "--keep", "site-to-site"})
	err := root.Execute()
	if err == nil || !strings.HasPrefix(err.Error(), "run needs Linux network namespaces; on ") ||
		!strings.HasSuffix(err.Error(), " only validate, schema, graph, labs and replay work") {
		t.Errorf("ipseclab run on another OS says %v", err)
	}
}

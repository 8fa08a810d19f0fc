// Command ipseclab is a network emulation lab for IPsec: a lab file in YAML
// becomes Linux network namespaces with links, NAT boxes, impairments and an
// embedded IKEv1 + ESP/AH stack, and a script whose expectations decide the
// exit code.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/ipseclab/ipseclab/topology"
)

// exitError carries an exit code through cobra.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return ""
	}
	return e.err.Error()
}

func exitCode(code int, err error) error { return &exitError{code: code, err: err} }

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "ipseclab",
		Short:         "A network emulation lab for IPsec (IKEv1, ESP/AH, NAT-T, DPD) in Linux namespaces",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(pureCmds()...)
	root.AddCommand(linuxCmds()...)
	addLinuxRootFlags(root)
	return root
}

func main() {
	err := newRoot().Execute()
	if err == nil {
		return
	}
	code := 1
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
		err = ee.err
	}
	var lerrs topology.Errors
	if errors.As(err, &lerrs) {
		fmt.Fprintln(os.Stderr, lerrs.Error())
		fmt.Fprintf(os.Stderr, "%d problem(s) found; nothing was created\n", len(lerrs))
		os.Exit(2)
	}
	if err != nil && err.Error() != "" {
		fmt.Fprintln(os.Stderr, "ipseclab:", err)
	}
	os.Exit(code)
}

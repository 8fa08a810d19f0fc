package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newGraphCmd() *cobra.Command {
	var lf labFlags
	var format string
	cmd := &cobra.Command{
		Use:   "graph -t FILE [--format dot|mermaid|ascii]",
		Short: "Draw a lab's topology (Graphviz dot, Mermaid, or plain text)",
		Example: `  ipseclab graph -t lab.yaml --format dot | dot -Tsvg > lab.svg
  ipseclab graph -t nat-traversal --format mermaid`,
		Args: noLabArgs(true),
		RunE: func(cmd *cobra.Command, _ []string) error {
			lab, _, err := lf.load()
			if err != nil {
				return err
			}
			out, err := lab.Graph(format)
			if err != nil {
				return err
			}
			fmt.Print(out)
			return nil
		},
	}
	lf.add(cmd, true)
	cmd.Flags().StringVar(&format, "format", "ascii", "dot, mermaid or ascii")
	return cmd
}

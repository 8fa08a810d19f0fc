package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/ipseclab/ipseclab/topology"
)

func newSchemaCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "schema",
		Short: "Print the JSON Schema of the lab file format, for editors",
		Example: `  ipseclab schema > ipseclab.schema.json
  # then, first line of a lab file, for VS Code's YAML extension:
  # yaml-language-server: $schema=./ipseclab.schema.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			b, err := topology.Schema()
			if err != nil {
				return err
			}
			fmt.Println(string(b))
			return nil
		},
	}
}

package main

import (
	"fmt"
	"os"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/ipseclab/ipseclab/labs"
)

func newLabsCmd() *cobra.Command {
	var lesson string
	cmd := &cobra.Command{
		Use:   "labs [--lesson NAME]",
		Short: "List the labs shipped with ipseclab, or print one's lesson",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if lesson != "" {
				text, err := labs.Lesson(lesson)
				if err != nil {
					return fmt.Errorf("no shipped lab %q", lesson)
				}
				fmt.Print(text)
				return nil
			}
			list, err := labs.List()
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
			for _, l := range list {
				def := ""
				if l.Name == labs.Default {
					def = " (default)"
				}
				fmt.Fprintf(w, "%s%s\t%s\n", l.Name, def, l.Description)
			}
			w.Flush()
			fmt.Println("\nrun one with: ipseclab run NAME    read its lesson: ipseclab labs --lesson NAME")
			return nil
		},
	}
	cmd.Flags().StringVar(&lesson, "lesson", "", "print the lesson of a shipped lab")
	return cmd
}

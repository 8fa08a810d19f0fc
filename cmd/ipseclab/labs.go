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
	var answers bool
	cmd := &cobra.Command{
		Use:   "labs [--lesson NAME [--answers]]",
		Short: "List the labs shipped with ipseclab by topic, or print one's lesson",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if answers && lesson == "" {
				return fmt.Errorf("--answers goes with --lesson NAME")
			}
			if lesson != "" {
				text, err := labs.LessonWithoutAnswers(lesson)
				if answers {
					text, err = labs.Lesson(lesson)
				}
				if err != nil {
					return fmt.Errorf("no shipped lab %q (ipseclab labs lists them)", lesson)
				}
				fmt.Print(text)
				return nil
			}
			groups, err := labs.Grouped()
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
			for i, g := range groups {
				if i > 0 {
					fmt.Fprintln(w)
				}
				fmt.Fprintf(w, "%s\n", g.Topic.Title())
				for _, l := range g.Labs {
					mark := ""
					if l.Name == labs.Default {
						mark = " (default)"
					}
					if e, _ := labs.Place(l.Name); e.Troubleshooting && g.Topic != labs.TopicTroubleshooting {
						mark += " [exercise]"
					}
					fmt.Fprintf(w, "  %s%s\t%s\n", l.Name, mark, l.Description)
				}
			}
			w.Flush()
			fmt.Println("\n[exercise]: a troubleshooting exercise - the run shows a failure to explain and fix.")
			fmt.Println("run one with: ipseclab run NAME    read its lesson: ipseclab labs --lesson NAME [--answers]")
			return nil
		},
	}
	cmd.Flags().StringVar(&lesson, "lesson", "", "print the lesson of a shipped lab, without its answers")
	cmd.Flags().BoolVar(&answers, "answers", false, "with --lesson: print the answers too")
	return cmd
}

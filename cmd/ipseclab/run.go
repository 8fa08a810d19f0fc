package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/ipseclab/ipseclab/events"
	"github.com/ipseclab/ipseclab/labs"
	"github.com/ipseclab/ipseclab/node"
	"github.com/ipseclab/ipseclab/timeline"
)

func newRunCmd() *cobra.Command {
	var keep, asJSON, explain, verbose bool
	cmd := &cobra.Command{
		Use:   "run [LAB]",
		Short: "Deploy a lab, run its script while showing the tunnel's life step by step, then destroy it",
		Long: `run deploys LAB (a lab file or directory, or the name of a shipped lab; the default lab when
omitted), runs its script and streams a timeline grouped under the five steps of a tunnel's
life: initiation, IKE phase 1, IKE phase 2, data transfer and termination. It ends with a
summary, destroys the lab, and exits 0 only if every expectation of the script held.`,
		Example: `  ipseclab run                     # the default lab
  ipseclab run aggressive-mode --keep
  ipseclab run ./mylab.yaml --json > events.jsonl`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := node.CheckRoot(); err != nil {
				return err
			}
			arg := ""
			if len(args) == 1 {
				arg = args[0]
			}
			lab, _, err := labs.Load(arg)
			if err != nil {
				return err
			}
			if arg == "" {
				arg = labs.Default
			}
			tty := term.IsTerminal(int(os.Stdout.Fd()))
			if _, err := startLabProcess(arg, lab, os.Stderr, false); err != nil {
				return err
			}
			destroy := func() {
				if keep {
					fmt.Fprintf(os.Stderr, "\nlab %s is still up (--keep): explore with `ipseclab inspect --name %s`, remove with `ipseclab destroy --name %s`\n", lab.Name, lab.Name, lab.Name)
					return
				}
				if err := node.DestroyLab(lab.Name, 10*time.Second); err != nil {
					fmt.Fprintf(os.Stderr, "destroying lab %s: %v\n", lab.Name, err)
				}
			}
			c, err := node.DialLab(lab.Name)
			if err != nil {
				destroy()
				return err
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()

			tl := timeline.New(os.Stdout, timeline.Options{Color: tty, Explain: explain, Verbose: verbose})
			enc := json.NewEncoder(os.Stdout)
			var finished *events.Event
			err = c.Events(ctx, 0, func(e events.Event) bool {
				if asJSON {
					_ = enc.Encode(e)
				} else {
					tl.Write(e)
				}
				if e.Kind == events.ScriptFinished {
					finished = &e
					return false
				}
				return true
			})
			if ctx.Err() != nil {
				destroy()
				return exitCode(130, errors.New("interrupted"))
			}
			if finished == nil {
				destroy()
				if err == nil {
					err = errors.New("the lab process stopped before the script finished")
				}
				return err
			}
			ok, _ := finished.Fields["ok"].(bool)
			if !asJSON {
				sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				sas, _ := c.SAs(sctx, "")
				cancel()
				printSummary(finished, sas, tty)
			}
			destroy()
			if !ok {
				return exitCode(1, nil)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&keep, "keep", false, "leave the lab up after the script, for exploration")
	cmd.Flags().BoolVar(&asJSON, "json", false, "write the event stream as JSON lines instead of the timeline")
	cmd.Flags().BoolVar(&explain, "explain", true, "explain each line in terms of the concepts (--explain=false for terse output)")
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "show every event, debug ones included")
	return cmd
}

// printSummary lists the expectations as passed or failed.
func printSummary(e *events.Event, sas []node.SAInfo, color bool) {
	paint := func(code, s string) string {
		if !color {
			return s
		}
		return code + s + "\033[0m"
	}
	fmt.Println()
	fmt.Println(paint("\033[1m", "━━ Summary "+strings.Repeat("━", 52)))
	if len(sas) > 0 {
		fmt.Println("  SAs at the end of the script:")
		printSAs(sas)
		fmt.Println()
	}
	b, _ := json.Marshal(e.Fields["expectations"])
	var exps []node.ExpectResult
	_ = json.Unmarshal(b, &exps)
	for _, x := range exps {
		mark := paint("\033[32m", "✔ passed")
		if !x.Passed {
			mark = paint("\033[31m", "✘ FAILED")
		}
		fmt.Printf("  %s  %s  (%s)\n            %s\n", mark, x.Name, x.At, x.Detail)
	}
	if errs, _ := e.Fields["errors"].([]any); len(errs) > 0 {
		for _, s := range errs {
			fmt.Printf("  %s  %v\n", paint("\033[31m", "✘ ERROR "), s)
		}
	}
	if len(exps) == 0 {
		fmt.Println("  (the script has no expectations)")
	}
	fmt.Println("  " + e.Message)
}

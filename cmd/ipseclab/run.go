package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/ipseclab/ipseclab/events"
	"github.com/ipseclab/ipseclab/labs"
	"github.com/ipseclab/ipseclab/node"
	"github.com/ipseclab/ipseclab/timeline"
	"github.com/ipseclab/ipseclab/topology"
)

func newRunCmd() *cobra.Command {
	var keep, asJSON, explain, verbose, keys bool
	var captureDir string
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
			// `ipseclab run | head` closes our stdout early: carry on, so that
			// the lab is still destroyed at the end, rather than die of SIGPIPE
			// and leave it running.
			signal.Ignore(syscall.SIGPIPE)
			// Caught from here on, Ctrl-C (or a closed terminal) during the
			// deploy or the script still ends with the lab destroyed.
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
			defer stop()
			tty := term.IsTerminal(int(os.Stdout.Fd()))
			var serveArgs []string
			if captureDir != "" {
				abs, err := filepath.Abs(captureDir)
				if err != nil {
					return err
				}
				serveArgs = append(serveArgs, "--capture", abs)
			}
			if keys {
				serveArgs = append(serveArgs, "--keys")
			}
			if _, err := startLabProcess(arg, lab, os.Stderr, false, serveArgs...); err != nil {
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

			tl := timeline.New(os.Stdout, timeline.Options{Color: tty, Explain: explain, Verbose: verbose, Keys: keys, Names: addressNames(lab)})
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
			if captureDir != "" && !asJSON {
				printCaptureHelp(captureDir, keep)
			}
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
	cmd.Flags().StringVar(&captureDir, "capture", "", "write a pcap per link and Wireshark's decryption tables (esp_sa, ikev1_decryption_table) into this directory")
	cmd.Flags().BoolVar(&keys, "keys", false, "show the derived keys in the timeline (SKEYID, Ka, ESP keys), for teaching")
	return cmd
}

// printCaptureHelp says where the captures are and how to open them decrypted.
func printCaptureHelp(dir string, keep bool) {
	still := ""
	if keep {
		still = " (still recording while the lab is up)"
	}
	fmt.Printf("\ncaptures in %s%s: one pcap per link, with Wireshark's key tables beside them.\n", dir, still)
	fmt.Printf("  Wireshark: copy %s and %s into ~/.config/wireshark/ (or use Preferences › Protocols › ESP/ISAKMP).\n", node.ESPTableFile, node.IKEv1TableFile)
	fmt.Printf("  tshark:    mkdir -p /tmp/ws/wireshark && cp %s/{%s,%s} /tmp/ws/wireshark/ && \\\n", dir, node.ESPTableFile, node.IKEv1TableFile)
	fmt.Printf("             XDG_CONFIG_HOME=/tmp/ws tshark -o esp.enable_encryption_decode:TRUE -r %s/<link>.pcap\n", dir)
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

// addressNames maps every address of the lab to its node.
func addressNames(lab *topology.Lab) map[string]string {
	names := map[string]string{}
	for _, n := range lab.NodeNames() {
		for _, i := range lab.Topology.Nodes[n].Ifaces {
			for _, a := range i.Addrs {
				names[a.Addr().String()] = n
			}
		}
	}
	return names
}

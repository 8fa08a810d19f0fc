//go:build linux

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/ipseclab/ipseclab/events"
	"github.com/ipseclab/ipseclab/labrun"
	"github.com/ipseclab/ipseclab/labs"
	"github.com/ipseclab/ipseclab/timeline"
	"github.com/ipseclab/ipseclab/topology"
	"github.com/ipseclab/ipseclab/web"
)

func newRunCmd() *cobra.Command {
	var keep, asJSON, explain, verbose, keys bool
	var captureDir, asName, webAddr string
	var width int
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
		Args: func(cmd *cobra.Command, args []string) error {
			if cmd.Flags().Changed("web") {
				args = webAddrArg(args, &webAddr)
			}
			return cobra.MaximumNArgs(1)(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := labrun.CheckRoot(); err != nil {
				return err
			}
			if cmd.Flags().Changed("web") {
				args = webAddrArg(args, &webAddr)
			}
			// Listening before the deploy: a busy port is said at once,
			// not after the lab is up.
			var view *webView
			if cmd.Flags().Changed("web") {
				l, err := web.Listen(webAddr)
				if err != nil {
					return err
				}
				defer l.Close()
				view = &webView{l: l}
			}
			arg := ""
			if len(args) == 1 {
				arg = args[0]
			}
			lab, _, err := labs.Load(arg)
			if err != nil {
				return err
			}
			if err := renameLab(lab, asName); err != nil {
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
			serveArgs := []string{"--lab-name", lab.Name}
			if captureDir != "" {
				abs, err := filepath.Abs(captureDir)
				if err != nil {
					return err
				}
				serveArgs = append(serveArgs, "--capture", abs)
			}
			// The web view's inspector shows the derived keys on request:
			// the lab publishes them, the timeline shows them only with --keys.
			if keys || view != nil {
				serveArgs = append(serveArgs, "--keys")
			}
			if _, err := startLabProcess(arg, lab, os.Stderr, false, !keep, serveArgs...); err != nil {
				return err
			}
			cols := outputWidth(width)
			destroy := func() {
				if keep {
					fmt.Fprintln(os.Stderr)
					for _, l := range fitLines(fmt.Sprintf("lab %s is still up (--keep): explore with `ipseclab inspect --name %s`, remove with `ipseclab destroy --name %s`", lab.Name, lab.Name, lab.Name), cols, 0) {
						fmt.Fprintln(os.Stderr, l)
					}
					return
				}
				if err := labrun.DestroyLab(lab.Name, 10*time.Second); err != nil {
					fmt.Fprintf(os.Stderr, "destroying lab %s: %v\n", lab.Name, err)
				}
			}
			c, err := labrun.DialLab(lab.Name)
			if err != nil {
				destroy()
				return err
			}
			if view != nil {
				view.start(ctx, lab, c)
			}

			// One write per burst of events, flushed as soon as the
			// stream has nothing more at hand: on a VM where every system
			// call is dear, a line per write cost a third of run's time.
			out := bufio.NewWriterSize(os.Stdout, 64<<10)
			tl := timeline.New(out, timeline.Options{Color: tty, Explain: explain, Verbose: verbose, Keys: keys,
				Names: addressNames(lab), Silent: silentNodes(lab), Width: cols})
			enc := json.NewEncoder(out)
			var finished *events.Event
			err = c.Events(ctx, 0, func(e events.Event) bool {
				if view != nil {
					view.add(&e)
				}
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
			}, func() { _ = out.Flush() })
			if !asJSON {
				tl.Flush()
			}
			_ = out.Flush()
			if view != nil {
				view.srv.End()
			}
			if ctx.Err() != nil {
				view.stop()
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
			var result events.ScriptResult
			if finished.Script != nil {
				result = *finished.Script
			}
			if !asJSON {
				sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				sas, _ := c.SAs(sctx, "")
				cancel()
				if len(sas) > 0 {
					tl.Heading("SAs at the end of the script")
					printSAs(out, sas, cols)
				}
				tl.Summary(result, finished.Message)
				_ = out.Flush()
			}
			if view != nil {
				// The class may still be looking: keep serving until
				// Ctrl-C, then go on as run does.
				fmt.Fprintf(os.Stderr, "\nthe script has finished; web view still at %s: Ctrl-C stops it and %s\n",
					web.URL(view.l), map[bool]string{true: "leaves the lab up (--keep)", false: "destroys the lab"}[keep])
				<-ctx.Done()
				view.stop()
			}
			destroy()
			if captureDir != "" && !asJSON {
				printCaptureHelp(captureDir, keep)
			}
			if !result.OK() {
				return exitCode(1, nil)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&keep, "keep", false, "leave the lab up after the script, for exploration")
	cmd.Flags().StringVar(&asName, "name", "", "run the lab under this name instead of its file's, so that two copies run side by side")
	cmd.Flags().BoolVar(&asJSON, "json", false, "write the event stream as JSON lines instead of the timeline")
	cmd.Flags().BoolVar(&explain, "explain", true, "explain each line in terms of the concepts (--explain=false for terse output)")
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "show every event, debug ones included")
	cmd.Flags().StringVar(&captureDir, "capture", "", "write a pcap per link and Wireshark's decryption tables (esp_sa, ikev1_decryption_table) into this directory")
	cmd.Flags().BoolVar(&keys, "keys", false, "show the derived keys in the timeline (SKEYID, Ka, ESP keys), for teaching")
	cmd.Flags().StringVar(&webAddr, "web", "", "serve the live web view during the run, on ADDR (default "+web.DefaultAddr+"), and after the script until Ctrl-C")
	cmd.Flags().Lookup("web").NoOptDefVal = web.DefaultAddr
	addWidthFlag(cmd, &width)
	return cmd
}

// webView is run's web view: a server fed with the events run reads.
type webView struct {
	l    net.Listener
	srv  *web.Server
	done chan struct{}
	quit context.CancelFunc
}

// start serves the view of lab, whose process c reaches.
func (v *webView) start(ctx context.Context, lab *topology.Lab, c *labrun.Client) {
	v.srv = web.NewServer(web.Config{Mode: web.Live, Lab: lab, State: labState(c, lab)})
	sctx, cancel := context.WithCancel(ctx)
	v.quit, v.done = cancel, make(chan struct{})
	announceWeb(v.l, "it stays up after the script until Ctrl-C")
	go func() {
		defer close(v.done)
		_ = v.srv.Serve(sctx, v.l)
	}()
}

func (v *webView) add(e *events.Event) {
	if v.srv != nil {
		_ = v.srv.Add(e)
	}
}

// stop closes the view and waits for it.
func (v *webView) stop() {
	if v == nil || v.quit == nil {
		return
	}
	v.quit()
	<-v.done
}

// printCaptureHelp says where the captures are and how to open them decrypted.
func printCaptureHelp(dir string, keep bool) {
	still := ""
	if keep {
		still = " (still recording while the lab is up)"
	}
	fmt.Printf("\ncaptures in %s%s: one pcap per link, with Wireshark's key tables beside them.\n", dir, still)
	fmt.Printf("  Wireshark: copy %s and %s into ~/.config/wireshark/ (or use Preferences › Protocols › ESP/ISAKMP).\n", labrun.ESPTableFile, labrun.IKEv1TableFile)
	fmt.Printf("  tshark:    mkdir -p /tmp/ws/wireshark && cp %s/{%s,%s} /tmp/ws/wireshark/ && \\\n", dir, labrun.ESPTableFile, labrun.IKEv1TableFile)
	fmt.Printf("             XDG_CONFIG_HOME=/tmp/ws tshark -o esp.enable_encryption_decode:TRUE -r %s/<link>.pcap\n", dir)
}

// fitLines wraps text that starts at column indent to width (0: no limit).
func fitLines(text string, width, indent int) []string {
	if width <= 0 {
		return []string{text}
	}
	avail := max(width-indent, 20)
	return timeline.Wrap(text, avail, avail)
}

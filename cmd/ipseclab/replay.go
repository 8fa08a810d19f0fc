package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/ipseclab/ipseclab/labs"
	"github.com/ipseclab/ipseclab/timeline"
	"github.com/ipseclab/ipseclab/topology"
	"github.com/ipseclab/ipseclab/web"
)

func newReplayCmd() *cobra.Command {
	var webAddr, labFile string
	var speed float64
	var explain, verbose, keys bool
	var width int
	cmd := &cobra.Command{
		Use:   "replay events.jsonl [--web [ADDR]] [--speed X]",
		Short: "Replay a run recorded with `run --json`: in the terminal with its pace, or on the web view",
		Long: `replay shows a run recorded with 'ipseclab run LAB --json > events.jsonl' again, as run
showed it, at the pace it happened (--speed 2: twice as fast; 0: at once). On a terminal, keys
control it: space pauses and plays, → and ← step one event forward and back, + and - change the
speed, 0 to 9 jump to 0%…90% of the run, q quits.

With --web, the run is served to the web view instead (on ` + web.DefaultAddr + ` unless an
address follows), whose controls play, pause, step and scrub it.

The lab is found from the recording (it carries its lab file); --lab names it when it does not.`,
		Example: `  ipseclab run nat-traversal --json > events.jsonl
  ipseclab replay events.jsonl --speed 0.5
  ipseclab replay events.jsonl --web`,
		Args: func(cmd *cobra.Command, args []string) error {
			if cmd.Flags().Changed("web") {
				args = webAddrArg(args, &webAddr)
			}
			return cobra.ExactArgs(1)(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.Flags().Changed("web") {
				args = webAddrArg(args, &webAddr)
			}
			if speed < 0 {
				return fmt.Errorf("--speed %g: give a factor above 0 (2: twice as fast), or 0 for no pauses", speed)
			}
			f, err := os.Open(args[0])
			if err != nil {
				return err
			}
			recs, err := web.ReadRecording(f, args[0])
			f.Close()
			if err != nil {
				return err
			}
			lab, err := replayLab(recs, labFile)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if cmd.Flags().Changed("web") {
				hint := web.Hint(recs)
				srv := web.NewServer(web.Config{Mode: web.Replay, Lab: lab, Name: hint.Name})
				srv.Load(recs)
				l, err := web.Listen(webAddr)
				if err != nil {
					return err
				}
				announceWeb(l, fmt.Sprintf("%d events; Ctrl-C stops it", len(recs)))
				return srv.Serve(ctx, l)
			}
			opt := timeline.Options{Explain: explain, Verbose: verbose, Keys: keys, Width: outputWidth(width)}
			if lab != nil {
				opt.Names, opt.Silent = addressNames(lab), silentNodes(lab)
			}
			p := &player{recs: recs, opt: opt, speed: speed, out: os.Stdout}
			if term.IsTerminal(int(os.Stdout.Fd())) && term.IsTerminal(int(os.Stdin.Fd())) {
				p.opt.Color = true
				return p.interactive(ctx, os.Stdin)
			}
			return p.playThrough(ctx)
		},
	}
	cmd.Flags().StringVar(&webAddr, "web", "", "serve the recording to the web view on ADDR (default "+web.DefaultAddr+") instead of replaying it here")
	cmd.Flags().Lookup("web").NoOptDefVal = web.DefaultAddr
	cmd.Flags().Float64Var(&speed, "speed", 1, "pace factor: 2 is twice as fast, 0.5 half as fast, 0 without pauses")
	cmd.Flags().StringVar(&labFile, "lab", "", "the lab file of the run, when the recording cannot name it")
	cmd.Flags().BoolVar(&explain, "explain", true, "explain each line")
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "show every event, debug ones included")
	cmd.Flags().BoolVar(&keys, "keys", false, "show derived keys (when the run published them)")
	addWidthFlag(cmd, &width)
	return cmd
}

// replayLab finds the lab of a recording: --lab when given, else the lab
// file the recording carries (its lab-seed event holds the file's text and
// where it came from), else the shipped lab of the recording's name. Nil
// when none is found: the views then show the nodes the events name.
func replayLab(recs []web.Record, labFile string) (*topology.Lab, error) {
	hint := web.Hint(recs)
	if labFile != "" {
		lab, _, err := labs.Load(labFile)
		if err != nil {
			return nil, err
		}
		if hint.Name != "" {
			lab.Name = hint.Name
		}
		return lab, nil
	}
	var lab *topology.Lab
	if hint.Source != "" {
		var files topology.FileReader
		name := "lab.yaml"
		if shipped, ok := strings.CutPrefix(hint.File, "embedded:"); ok {
			files = topology.FSReader(labs.FS(), shipped)
			name = shipped + "/lab.yaml"
		} else if hint.File != "" {
			dir := hint.File
			if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
				dir = filepath.Dir(dir)
			}
			files, name = topology.DirReader(dir), hint.File
		}
		lab, _ = topology.ParseFiles(name, []byte(hint.Source), files)
	}
	if lab == nil && hint.File != "" {
		lab, _, _ = labs.Load(strings.TrimPrefix(hint.File, "embedded:"))
	}
	if lab == nil && hint.Source == "" && hint.Name != "" {
		lab, _, _ = labs.Load(hint.Name)
	}
	if lab != nil && hint.Name != "" {
		lab.Name = hint.Name
	}
	return lab, nil
}

// player replays a recording through the timeline.
type player struct {
	recs  []web.Record
	opt   timeline.Options
	speed float64
	out   io.Writer

	tl  *timeline.Timeline
	pos int // the next event to show
}

// delay is the pause before event i: the time since the one before it,
// divided by the speed.
func (p *player) delay(i int) time.Duration {
	if i == 0 || p.speed == 0 {
		return 0
	}
	d := p.recs[i].Event.Time.Sub(p.recs[i-1].Event.Time)
	if d <= 0 {
		return 0
	}
	return time.Duration(float64(d) / p.speed)
}

func (p *player) show(i int) {
	if p.tl == nil {
		p.tl = timeline.New(p.out, p.opt)
	}
	p.tl.Write(p.recs[i].Event)
}

// playThrough shows every event at its pace (not on a terminal).
func (p *player) playThrough(ctx context.Context) error {
	for i := range p.recs {
		if d := p.delay(i); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil
			case <-t.C:
			}
		}
		p.show(i)
	}
	if p.tl != nil {
		p.tl.Flush()
	}
	return nil
}

// Keys of the interactive replay.
type replayKey int

const (
	keyNone  replayKey = iota - 1 // does nothing (a test waits with it for the key before to be done)
	keyPause                      // space
	keyForward
	keyBack
	keyFaster
	keySlower
	keyQuit
	keyJump0 // keyJump0+k jumps to k×10%
)

// readKeys turns a raw terminal's bytes into keys.
func readKeys(r io.Reader, keys chan<- replayKey) {
	defer close(keys)
	buf := make([]byte, 16)
	for {
		n, err := r.Read(buf)
		if err != nil {
			return
		}
		b := buf[:n]
		for len(b) > 0 {
			switch {
			case len(b) >= 3 && b[0] == 0x1b && b[1] == '[' && b[2] == 'C':
				keys <- keyForward
				b = b[3:]
				continue
			case len(b) >= 3 && b[0] == 0x1b && b[1] == '[' && b[2] == 'D':
				keys <- keyBack
				b = b[3:]
				continue
			case b[0] == ' ':
				keys <- keyPause
			case b[0] == '+' || b[0] == '=':
				keys <- keyFaster
			case b[0] == '-' || b[0] == '_':
				keys <- keySlower
			case b[0] >= '0' && b[0] <= '9':
				keys <- keyJump0 + replayKey(b[0]-'0')
			case b[0] == 'q' || b[0] == 'Q' || b[0] == 3 || b[0] == 4:
				keys <- keyQuit
				return
			}
			b = b[1:]
		}
	}
}

// crlf writes "\r\n" for "\n": a raw terminal does not return the
// carriage by itself.
type crlf struct{ w io.Writer }

func (c crlf) Write(b []byte) (int, error) {
	if _, err := c.w.Write([]byte(strings.ReplaceAll(string(b), "\n", "\r\n"))); err != nil {
		return 0, err
	}
	return len(b), nil
}

// interactive replays on a terminal, under the keys' control.
func (p *player) interactive(ctx context.Context, in *os.File) error {
	old, err := term.MakeRaw(int(in.Fd()))
	if err != nil {
		return p.playThrough(ctx)
	}
	defer term.Restore(int(in.Fd()), old)
	p.out = crlf{p.out}
	keys := make(chan replayKey, 8)
	go readKeys(in, keys)
	return p.control(ctx, keys)
}

// control replays under the control of keys until keyQuit.
func (p *player) control(ctx context.Context, keys <-chan replayKey) error {
	status := func(s string) {
		fmt.Fprintf(p.out, "\x1b[2m── %s · event %d/%d · speed %g× · space ⏯  ← → step · + - speed · 0-9 jump · q quit ──\x1b[0m\n",
			s, p.pos, len(p.recs), p.speed)
	}
	fmt.Fprintf(p.out, "replaying %d events; space pauses, q quits\n", len(p.recs))
	paused := false
	redraw := func(to int) {
		fmt.Fprint(p.out, "\x1b[2J\x1b[H")
		p.tl, p.pos = nil, 0
		for p.pos < to {
			p.show(p.pos)
			p.pos++
		}
	}
	speeds := []float64{0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 0}
	for {
		var tick <-chan time.Time
		var timer *time.Timer
		if !paused && p.pos < len(p.recs) {
			timer = time.NewTimer(p.delay(p.pos))
			tick = timer.C
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick:
			p.show(p.pos)
			p.pos++
			if p.pos == len(p.recs) {
				p.tl.Flush()
				status("end of the recording")
			}
			continue
		case k, ok := <-keys:
			if timer != nil {
				timer.Stop()
			}
			if !ok || k == keyQuit {
				fmt.Fprintln(p.out)
				return nil
			}
			switch {
			case k == keyNone:
			case k == keyPause:
				paused = !paused
				if paused {
					status("paused")
				}
			case k == keyForward:
				paused = true
				if p.pos < len(p.recs) {
					p.show(p.pos)
					p.pos++
				}
				status("step")
			case k == keyBack:
				paused = true
				redraw(max(0, p.pos-1))
				status("step back")
			case k == keyFaster || k == keySlower:
				i := 0
				for i < len(speeds)-1 && speeds[i] != p.speed {
					i++
				}
				if speeds[i] != p.speed {
					i = 3
				}
				if k == keyFaster && i < len(speeds)-1 {
					i++
				} else if k == keySlower && i > 0 {
					i--
				}
				p.speed = speeds[i]
				status("speed")
			case k >= keyJump0:
				redraw(int(k-keyJump0) * len(p.recs) / 10)
				status(fmt.Sprintf("jumped to %d%%", int(k-keyJump0)*10))
			}
		}
	}
}

// announceWeb prints the line that says where the view is; tests read it.
func announceWeb(l net.Listener, how string) {
	fmt.Fprintf(os.Stderr, "web view: %s\n", web.URL(l))
	if how != "" {
		fmt.Fprintf(os.Stderr, "  (read-only; %s)\n", how)
	}
}

// webAddrArg takes the address of a `--web ADDR` written with a space out
// of args: --web's value is optional, so cobra leaves the address among
// the arguments. An argument that is an address (HOST:PORT) and not a
// file is the view's.
func webAddrArg(args []string, addr *string) []string {
	var out []string
	for _, a := range args {
		if looksLikeAddr(a) {
			*addr = a
			continue
		}
		out = append(out, a)
	}
	return out
}

func looksLikeAddr(a string) bool {
	if _, err := os.Stat(a); err == nil {
		return false
	}
	host, port, err := net.SplitHostPort(a)
	if err != nil || port == "" || strings.ContainsAny(host, "/") {
		return false
	}
	for _, c := range port {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
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

// silentNodes are the nodes whose IKE messages the lab's events know only
// from their peers: strongSwan's charon and vpnc publish none of their own.
func silentNodes(lab *topology.Lab) map[string]bool {
	silent := map[string]bool{}
	for _, n := range lab.NodeNames() {
		if k := lab.Topology.Nodes[n].Kind; k == topology.KindStrongSwan || k == topology.KindVPNC {
			silent[n] = true
		}
	}
	return silent
}

// addWidthFlag adds --width, which outputWidth reads.
func addWidthFlag(cmd *cobra.Command, width *int) {
	cmd.Flags().IntVar(width, "width", -1, "fit the output to N columns, wrapping long lines; 0: no limit; "+
		"-1: the terminal's width, else $COLUMNS, else no limit, so that a pipe or a file gets one line per item")
}

// outputWidth is the width to fit the output to: the flag when given, else
// the terminal's, else $COLUMNS (set by hand, or exported by a shell),
// else none. A pipe or a file is read by programs and searched with grep,
// where one line per event serves better than wrapped ones.
func outputWidth(flag int) int {
	if flag >= 0 {
		return flag
	}
	if w, _, err := term.GetSize(int(os.Stdout.Fd())); err == nil && w > 0 {
		return w
	}
	if n, err := strconv.Atoi(os.Getenv("COLUMNS")); err == nil && n > 0 {
		return n
	}
	return 0
}

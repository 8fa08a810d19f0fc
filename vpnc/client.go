package vpnc

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// DefaultVPNC is the vpnc started when Options.VPNC is empty: Debian's
// package vpnc.
const DefaultVPNC = "/usr/sbin/vpnc"

// ErrNotInstalled is returned by Start when the vpnc program is missing.
var ErrNotInstalled = errors.New("vpnc is not installed (Debian: apt-get install vpnc)")

// Options say where and how one vpnc runs.
type Options struct {
	// Netns is the path of the node's network namespace, e.g.
	// namespace.Path("lab-laptop").
	Netns string

	// Dir holds vpnc.conf, the script, the CA file, the pid file and what
	// the script saves of the lease. It is created if missing and left in
	// place; when empty, a temporary directory is used and removed by Stop.
	Dir string

	VPNC string // default DefaultVPNC

	// Debug is vpnc's --debug level: 1 (the default) names the chosen
	// proposals, the NAT status and the address; 2 adds the state machine
	// and every payload; 3 dumps packets. 99, which prints passwords, is
	// refused.
	Debug int

	// OnLog, if set, receives every line vpnc writes, from one goroutine,
	// in order. PublishLog makes one that publishes events.
	OnLog func(LogLine)

	// OnLease, if set, is called when the script has applied a lease
	// (connect) and with the zero Lease when it is gone (disconnect, or
	// vpnc's exit).
	OnLease func(Lease)

	StopTimeout time.Duration // between SIGTERM and SIGKILL; default 5s
}

// Files in the node's directory.
const (
	confFile   = "vpnc.conf"
	scriptFile = "vpnc-script"
	caFile     = "ca.pem"
	pidFile    = "vpnc.pid"
	leaseFile  = "lease.env"
)

// Client is one running vpnc. Its methods may be called concurrently.
type Client struct {
	opts    Options
	cfg     Config
	dir     string
	tempDir bool
	cmd     *exec.Cmd
	exited  chan struct{} // closed when the process has been reaped and its output read
	waitErr error

	mu      sync.Mutex
	lease   Lease
	leased  chan struct{} // closed once the lease is applied and Quick Mode is done
	started bool          // vpnc said "VPNC started": Quick Mode is done
	tail    []string      // the last lines, for error messages
	lastErr string        // the last line vpnc wrote as an error ("vpnc: ...")
	stopped bool          // Kill ended it on purpose

	stopOnce sync.Once
	stopErr  error
}

// Start writes the node's vpnc configuration and script and starts vpnc in
// the node's network namespace:
//
//	nsenter --net=NETNS -- stdbuf -oL vpnc --no-detach --debug N --pid-file DIR/vpnc.pid DIR/vpnc.conf
//
// It returns once vpnc runs; the connection is made in the background (Wait
// waits for it). vpnc needs no private mount namespace: with its own pid
// file and script it writes nothing outside the node's directory.
func Start(ctx context.Context, cfg Config, opts Options) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if opts.Netns == "" {
		return nil, errors.New("vpnc: Options.Netns is required")
	}
	if opts.VPNC == "" {
		opts.VPNC = DefaultVPNC
	}
	if opts.Debug == 0 {
		opts.Debug = 1
	}
	if opts.Debug < 0 || opts.Debug > 3 {
		return nil, fmt.Errorf("vpnc: debug level %d: want 1 to 3 (99 would log passwords)", opts.Debug)
	}
	if opts.StopTimeout == 0 {
		opts.StopTimeout = 5 * time.Second
	}
	if _, err := exec.LookPath(opts.VPNC); err != nil {
		return nil, fmt.Errorf("vpnc: %s: %w", opts.VPNC, ErrNotInstalled)
	}
	if _, err := os.Stat(opts.Netns); err != nil {
		return nil, fmt.Errorf("vpnc: network namespace: %w", err)
	}
	c := &Client{opts: opts, cfg: cfg, dir: opts.Dir, exited: make(chan struct{}), leased: make(chan struct{})}
	var err error
	if c.dir == "" {
		if c.dir, err = os.MkdirTemp("", "ipseclab-vpnc-"); err != nil {
			return nil, err
		}
		c.tempDir = true
	} else if err := os.MkdirAll(c.dir, 0o700); err != nil {
		return nil, err
	}
	if c.dir, err = filepath.Abs(c.dir); err != nil {
		c.removeDir()
		return nil, err
	}
	if err := c.writeFiles(); err != nil {
		c.removeDir()
		return nil, err
	}
	if err := c.spawn(); err != nil {
		c.removeDir()
		return nil, err
	}
	return c, nil
}

func (c *Client) writeFiles() error {
	conf, err := c.cfg.Conf(filepath.Join(c.dir, scriptFile), filepath.Join(c.dir, caFile))
	if err != nil {
		return err
	}
	// Whatever an earlier run left would be mistaken for this one's.
	for _, stale := range []string{pidFile, leaseFile, "gateway.route", caFile} {
		if err := os.Remove(filepath.Join(c.dir, stale)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	files := []struct {
		name string
		data []byte
		mode os.FileMode
	}{
		{confFile, []byte(conf), 0o600},
		{scriptFile, []byte(script), 0o700},
	}
	if c.cfg.Hybrid {
		files = append(files, struct {
			name string
			data []byte
			mode os.FileMode
		}{caFile, c.cfg.caPEM(), 0o644})
	}
	for _, f := range files {
		p := filepath.Join(c.dir, f.name)
		if err := os.WriteFile(p, f.data, f.mode); err != nil {
			return err
		}
		if err := os.Chmod(p, f.mode); err != nil { // the umask may have narrowed it
			return err
		}
	}
	return nil
}

// spawn starts vpnc in the node's network namespace. vpnc prints its
// messages with stdio, which buffers a pipe by the block: stdbuf -oL makes
// each line arrive as it is written. As for charon, the
// namespace is entered by nsenter in the child alone, and the forking thread
// stays locked for vpnc's lifetime so that Pdeathsig (vpnc dies with the lab
// process) fires only when the process itself ends.
func (c *Client) spawn() error {
	cmd := exec.Command("nsenter", "--net="+c.opts.Netns, "--", "stdbuf", "-oL",
		c.opts.VPNC, "--no-detach", "--debug", strconv.Itoa(c.opts.Debug),
		"--pid-file", filepath.Join(c.dir, pidFile), filepath.Join(c.dir, confFile))
	cmd.Dir = "/"
	cmd.Env = []string{
		"PATH=/usr/sbin:/usr/bin:/sbin:/bin",
		"IPSECLAB_VPNC_DIR=" + c.dir,
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	cmd.Stderr = cmd.Stdout // one stream, in the order vpnc wrote it
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	c.cmd = cmd

	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- fmt.Errorf("vpnc: start %s: %w", c.opts.VPNC, err)
			return
		}
		started <- nil
		read := make(chan struct{})
		go func() {
			defer close(read)
			c.readOutput(out)
		}()
		<-read // the pipe closes when vpnc (and any script it ran) has ended
		c.waitErr = cmd.Wait()
		c.setLease(Lease{})
		close(c.exited)
	}()
	return <-started
}

// readOutput hands every line to OnLog and notices the script's reports.
func (c *Client) readOutput(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		text := strings.TrimRight(sc.Text(), "\r")
		if text == "" {
			continue // vpnc pads its messages with empty lines
		}
		l := LogLine{Time: time.Now(), Text: text}
		c.mu.Lock()
		if strings.HasPrefix(text, c.opts.VPNC+": ") || strings.HasPrefix(text, "vpnc: ") {
			c.lastErr = text
		}
		c.tail = append(c.tail, text)
		if len(c.tail) > 8 {
			c.tail = c.tail[len(c.tail)-8:]
		}
		c.mu.Unlock()
		if c.opts.OnLog != nil {
			c.opts.OnLog(l)
		}
		switch {
		case reStarted.MatchString(text):
			c.mu.Lock()
			c.started = true
			c.mu.Unlock()
			c.setLease(c.Lease()) // the lease came first; now the tunnel runs
		case strings.HasPrefix(text, scriptMarker+"connect "):
			l, err := readLease(filepath.Join(c.dir, leaseFile))
			if err == nil {
				c.setLease(l)
			} else if c.opts.OnLog != nil {
				c.opts.OnLog(LogLine{Time: time.Now(), Text: "ipseclab: reading what the script saved: " + err.Error()})
			}
		case strings.HasPrefix(text, scriptMarker+"disconnect "):
			c.setLease(Lease{})
		}
	}
	_, _ = io.Copy(io.Discard, r)
}

// scriptMarker begins the lines the script writes.
const scriptMarker = "ipseclab-vpnc-script: "

func (c *Client) setLease(l Lease) {
	c.mu.Lock()
	changed := !l.equal(c.lease)
	c.lease = l
	if l.Addr.IsValid() && c.started {
		select {
		case <-c.leased:
		default:
			close(c.leased)
		}
	}
	c.mu.Unlock()
	if changed && c.opts.OnLease != nil {
		c.opts.OnLease(l)
	}
}

// Lease returns what Mode Config gave and the script applied; the zero Lease
// before the connection is up and after it ended.
func (c *Client) Lease() Lease {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lease
}

// Wait waits until the tunnel is up and returns the lease: the script has
// applied what Mode Config gave, and Quick Mode is done ("VPNC started").
// It fails when vpnc exits first, with the end of its output, or when ctx
// ends.
func (c *Client) Wait(ctx context.Context) (Lease, error) {
	select {
	case <-c.leased:
		return c.Lease(), nil
	case <-c.exited:
		return Lease{}, fmt.Errorf("vpnc exited (%v): %s", c.waitErr, c.lastOutput())
	case <-ctx.Done():
		return Lease{}, fmt.Errorf("vpnc did not connect: %w; it said: %s", ctx.Err(), c.lastOutput())
	}
}

// lastOutput is what vpnc said last: its last error, and its last lines
// (vpnc explains some errors at length after them).
func (c *Client) lastOutput() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.tail) == 0 {
		return "nothing"
	}
	tail := strings.Join(c.tail, " | ")
	if c.lastErr != "" && !strings.Contains(tail, c.lastErr) {
		return c.lastErr + " | ... | " + tail
	}
	return tail
}

// Stop ends vpnc: SIGTERM, on which it deletes its SAs at the gateway and
// runs the script to disconnect, then SIGKILL after Options.StopTimeout. It
// waits for the process and removes a temporary directory. Stop is
// idempotent; it reports a vpnc that had already exited with an error.
func (c *Client) Stop() error {
	c.stopOnce.Do(func() {
		var errs []error
		c.mu.Lock()
		killed := c.stopped
		c.mu.Unlock()
		select {
		case <-c.exited:
			if !killed {
				errs = append(errs, fmt.Errorf("vpnc had already exited (%v): %s", c.waitErr, c.lastOutput()))
			}
		default:
			if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
				errs = append(errs, err)
			}
			select {
			case <-c.exited:
			case <-time.After(c.opts.StopTimeout):
				_ = c.cmd.Process.Kill()
				<-c.exited
				errs = append(errs, fmt.Errorf("vpnc ignored SIGTERM for %v and was killed", c.opts.StopTimeout))
			}
		}
		if err := c.removeDir(); err != nil {
			errs = append(errs, err)
		}
		c.stopErr = errors.Join(errs...)
	})
	return c.stopErr
}

// Kill ends vpnc with SIGKILL, as a crash would: it sends no Delete and runs
// no script (the TUN device and its routes go with the process, a route the
// script pinned to the gateway stays). It waits for the process. Stop
// afterwards reports no error for it.
func (c *Client) Kill() {
	c.mu.Lock()
	c.stopped = true
	c.mu.Unlock()
	select {
	case <-c.exited:
	default:
		_ = c.cmd.Process.Kill()
		<-c.exited
	}
}

func (c *Client) removeDir() error {
	if !c.tempDir {
		return nil
	}
	return os.RemoveAll(c.dir)
}

// Exited is closed when vpnc has ended, by Stop or on its own.
func (c *Client) Exited() <-chan struct{} { return c.exited }

// Pid is vpnc's process id.
func (c *Client) Pid() int { return c.cmd.Process.Pid }

// Dir is the node's directory.
func (c *Client) Dir() string { return c.dir }

// Lease is what the gateway's Mode Config gave vpnc, as the script saw it.
type Lease struct {
	Interface     string         // the TUN device (TUNDEV)
	Gateway       netip.Addr     // VPNGATEWAY
	Addr          netip.Addr     // INTERNAL_IP4_ADDRESS
	Netmask       netip.Addr     // INTERNAL_IP4_NETMASK, if sent
	DNS           []netip.Addr   // INTERNAL_IP4_DNS
	NBNS          []netip.Addr   // INTERNAL_IP4_NBNS
	SplitInclude  []netip.Prefix // CISCO_SPLIT_INC_*: empty means everything goes into the tunnel
	Banner        string         // CISCO_BANNER
	DefaultDomain string         // CISCO_DEF_DOMAIN
}

func (l Lease) equal(o Lease) bool {
	return fmt.Sprint(l) == fmt.Sprint(o)
}

// readLease parses the environment the script saved (env -0).
func readLease(path string) (Lease, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Lease{}, err
	}
	env := map[string]string{}
	for _, kv := range bytes.Split(b, []byte{0}) {
		k, v, ok := strings.Cut(string(kv), "=")
		if ok {
			env[k] = v
		}
	}
	return parseLease(env)
}

func parseLease(env map[string]string) (Lease, error) {
	l := Lease{Interface: env["TUNDEV"], Banner: env["CISCO_BANNER"], DefaultDomain: env["CISCO_DEF_DOMAIN"]}
	var err error
	if l.Addr, err = netip.ParseAddr(env["INTERNAL_IP4_ADDRESS"]); err != nil {
		return Lease{}, fmt.Errorf("INTERNAL_IP4_ADDRESS: %w", err)
	}
	l.Gateway, _ = netip.ParseAddr(env["VPNGATEWAY"])
	l.Netmask, _ = netip.ParseAddr(env["INTERNAL_IP4_NETMASK"])
	addrs := func(s string) []netip.Addr {
		var out []netip.Addr
		for _, f := range strings.Fields(s) {
			if a, err := netip.ParseAddr(f); err == nil {
				out = append(out, a)
			}
		}
		return out
	}
	l.DNS, l.NBNS = addrs(env["INTERNAL_IP4_DNS"]), addrs(env["INTERNAL_IP4_NBNS"])
	n, _ := strconv.Atoi(env["CISCO_SPLIT_INC"])
	for i := range n {
		p, err := netip.ParsePrefix(env[fmt.Sprintf("CISCO_SPLIT_INC_%d_ADDR", i)] + "/" + env[fmt.Sprintf("CISCO_SPLIT_INC_%d_MASKLEN", i)])
		if err != nil {
			return Lease{}, fmt.Errorf("split include %d: %w", i, err)
		}
		l.SplitInclude = append(l.SplitInclude, p)
	}
	return l, nil
}

package strongswan

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/strongswan/govici/vici"
)

// DefaultCharon is the IKE daemon started when Options.Charon is empty. Debian
// ships charon twice: /usr/sbin/charon-systemd (package charon-systemd, the one
// the lab installs) and /usr/lib/ipsec/charon (package strongswan-charon, which
// drags in the legacy starter). Both are the same libcharon; charon-systemd
// reads the `charon` settings as a fallback for its own section, skips the pid
// file, and runs fine without systemd.
const DefaultCharon = "/usr/sbin/charon-systemd"

// DefaultSwanctl is the swanctl used to load the configuration.
const DefaultSwanctl = "/usr/sbin/swanctl"

// Options say where and how one charon runs.
type Options struct {
	// Netns is the path of the node's network namespace, e.g.
	// namespace.Path("lab-gw1").
	Netns string

	// Dir holds the node's strongswan.conf, swanctl.conf, vici socket and log,
	// and is swanctl's credential directory: Start replaces its x509/,
	// x509ca/ and pkcs8/ subdirectories with the configuration's
	// certificates and keys. It is created if missing and left in place. When empty, a temporary
	// directory is used and removed by Stop. The vici socket's path,
	// Dir/charon.vici, must fit a unix socket address (107 bytes).
	Dir string

	Charon  string // default DefaultCharon
	Swanctl string // default DefaultSwanctl

	// LogLevels are filelog levels per subsystem, in strongswan.conf's words
	// ("default", "ike", "chd", "net", "knl", "cfg", "mgr", ...; -1 to 4).
	// The default is {"default": 1}.
	LogLevels map[string]int

	// KeyLog raises the levels for IKE, CHD and MGR so that the log holds
	// every negotiated key, which Keys reads for Wireshark. The log then
	// contains secrets.
	KeyLog bool

	// OnLog, if set, receives every log line as charon writes it, from one
	// goroutine, in order. PublishLog makes one that publishes events.
	OnLog func(LogLine)

	// KeepAlive is charon.keep_alive, the NAT-T keepalive interval for all of
	// this charon's IKE SAs behind a NAT: 0 keeps charon's default (20 s),
	// a negative value sends none.
	KeepAlive time.Duration

	// Retransmit is charon.retransmit_timeout, _tries and _base, for all of
	// this charon's IKE SAs; zero fields keep charon's defaults (4 s, 5
	// tries, 1.8), which give up on a silent peer after 165 s.
	Retransmit Retransmit

	StartTimeout time.Duration // for charon's vici socket to come up; default 10s
	StopTimeout  time.Duration // between SIGTERM and SIGKILL; default 5s
}

// Charon is one running charon. Its methods may be called concurrently.
type Charon struct {
	opts    Options
	dir     string
	tempDir bool
	cmd     *exec.Cmd
	exited  chan struct{} // closed when the process has been reaped
	waitErr error         // charon's exit status, valid after exited closes
	tail    *logTail
	keys    keyParser

	loadOutput string // what swanctl --load-all said, for errors about credentials

	stopOnce sync.Once
	stopErr  error
}

// Start writes the node's configuration, starts charon inside the node's
// network namespace, waits for its vici socket and loads the connections with
// swanctl. On any failure nothing is left running.
func Start(ctx context.Context, cfg Config, opts Options) (*Charon, error) {
	swanctlConf, err := cfg.SwanctlConf()
	if err != nil {
		return nil, err
	}
	creds, err := cfg.credentialFiles()
	if err != nil {
		return nil, err
	}
	if opts.Netns == "" {
		return nil, errors.New("strongswan: Options.Netns is required")
	}
	if opts.Charon == "" {
		opts.Charon = DefaultCharon
	}
	if opts.Swanctl == "" {
		opts.Swanctl = DefaultSwanctl
	}
	if opts.StartTimeout == 0 {
		opts.StartTimeout = 10 * time.Second
	}
	if opts.StopTimeout == 0 {
		opts.StopTimeout = 5 * time.Second
	}
	c := &Charon{opts: opts, dir: opts.Dir, exited: make(chan struct{})}
	if c.dir == "" {
		if c.dir, err = os.MkdirTemp("", "ipseclab-charon-"); err != nil {
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
	if n := len(c.ViciSocket()); n > 107 {
		c.removeDir()
		return nil, fmt.Errorf("strongswan: vici socket path %s is %d bytes, longer than a unix socket address allows", c.ViciSocket(), n)
	}
	if err := c.writeFiles(swanctlConf, creds, cfg.RemoteAccess()); err != nil {
		c.removeDir()
		return nil, err
	}
	if c.tail, err = startLogTail(c.LogPath(), c.consumeLog); err != nil {
		c.removeDir()
		return nil, err
	}
	if err := c.spawn(); err != nil {
		c.tail.Close()
		c.removeDir()
		return nil, err
	}
	startCtx, cancel := context.WithTimeout(ctx, opts.StartTimeout)
	defer cancel()
	err = c.waitForVici(startCtx)
	if err == nil {
		err = c.loadAll(startCtx)
	}
	if err == nil {
		err = c.checkCredentials(startCtx, cfg)
	}
	if err != nil {
		if stopErr := c.Stop(); stopErr != nil && !errors.Is(stopErr, errExitedEarly) {
			err = errors.Join(err, stopErr)
		}
		return nil, err
	}
	return c, nil
}

// errExitedEarly is what Stop reports when charon had ended by itself.
var errExitedEarly = errors.New("strongswan: charon had already exited")

func (c *Charon) writeFiles(swanctlConf string, creds []credFile, remoteAccess bool) error {
	if err := writeCredentials(c.dir, creds); err != nil {
		return err
	}
	files := map[string]string{
		strongswanCfg: strongswanConf(logLevels(c.opts.LogLevels, c.opts.KeyLog), remoteAccess, c.opts.KeepAlive, c.opts.Retransmit),
		swanctlCfg:    swanctlConf,
		logFile:       "", // created empty so the tail can follow it from the first line
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(c.dir, name), []byte(content), 0o600); err != nil {
			return err
		}
	}
	// A socket or pid file left by an earlier run would be mistaken for a
	// live charon.
	for _, stale := range []string{viciFile, "charon.pid"} {
		if err := os.Remove(filepath.Join(c.dir, stale)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}

// spawn starts charon in the node's network namespace and in a mount namespace
// of its own, in which the node's directory is mounted on /run:
//
//	nsenter --net=NETNS -- unshare --mount --propagation private -- \
//	    sh -c 'mount --bind "$1" /run && exec "$2"' sh DIR CHARON
//
// Each step execs the next, so the process is charon itself in the end. The
// namespaces are entered in the child alone: no thread of the lab process ever
// changes namespace, so none can leak one (a Go program cannot always discard
// such a thread: the main thread is parked, not ended).
//
// The forking thread is locked for charon's lifetime because Pdeathsig, which
// kills charon if the lab process dies without Stop, fires when the thread
// that forked it exits, and Go ends threads that other code locked and left.
func (c *Charon) spawn() error {
	out, err := os.OpenFile(filepath.Join(c.dir, "charon.out"), os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer out.Close() // the child has its own copy
	if _, err := os.Stat(c.opts.Netns); err != nil {
		return fmt.Errorf("strongswan: network namespace: %w", err)
	}
	cmd := exec.Command("nsenter", "--net="+c.opts.Netns, "--",
		"unshare", "--mount", "--propagation", "private", "--",
		"sh", "-c", `mount --bind "$1" `+runInside+` && exec "$2"`, "sh", c.dir, c.opts.Charon)
	cmd.Dir = "/"
	cmd.Env = []string{
		"STRONGSWAN_CONF=" + runInside + "/" + strongswanCfg,
		"PATH=/usr/sbin:/usr/bin:/sbin:/bin",
	}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	c.cmd = cmd

	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- fmt.Errorf("strongswan: start %s: %w", c.opts.Charon, err)
			return
		}
		started <- nil
		c.waitErr = cmd.Wait()
		close(c.exited)
	}()
	return <-started
}

// waitForVici polls the socket until charon answers a version request.
func (c *Charon) waitForVici(ctx context.Context) error {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if err := c.ping(ctx); err == nil {
			return nil
		}
		select {
		case <-c.exited:
			return fmt.Errorf("strongswan: charon exited during startup (%v): %s", c.waitErr, c.startupFailure())
		case <-ctx.Done():
			return fmt.Errorf("strongswan: charon's vici socket did not come up: %w; %s", ctx.Err(), c.startupFailure())
		case <-tick.C:
		}
	}
}

func (c *Charon) ping(ctx context.Context) error {
	if _, err := os.Stat(c.ViciSocket()); err != nil {
		return err
	}
	s, err := vici.NewSession(vici.WithSocketPath(c.ViciSocket()))
	if err != nil {
		return err
	}
	defer s.Close()
	_, err = s.Call(ctx, "version", nil)
	return err
}

// startupFailure summarises why charon did not come up: the end of its log
// and of its standard output.
func (c *Charon) startupFailure() string {
	var parts []string
	for _, name := range []string{logFile, "charon.out"} {
		b, _ := os.ReadFile(filepath.Join(c.dir, name))
		if tail := lastLines(b, 5); tail != "" {
			parts = append(parts, name+": "+tail)
		}
	}
	if len(parts) == 0 {
		return "it wrote nothing"
	}
	return strings.Join(parts, "; ")
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// loadAll loads swanctl.conf's connections and secrets, and the credential
// directories' certificates and keys, into charon. SWANCTL_DIR makes swanctl
// read the node's directories, never the host's /etc/swanctl.
func (c *Charon) loadAll(ctx context.Context) error {
	cmd := exec.CommandContext(ctx, c.opts.Swanctl, "--load-all", "--noprompt",
		"--file", filepath.Join(c.dir, swanctlCfg), "--uri", "unix://"+c.ViciSocket())
	cmd.Env = append(os.Environ(), "SWANCTL_DIR="+c.dir)
	out, err := cmd.CombinedOutput()
	c.loadOutput = swanctlComplaints(out)
	if err != nil {
		return fmt.Errorf("strongswan: swanctl --load-all: %w: %s", err, swanctlComplaints(out))
	}
	return nil
}

// swanctlComplaints keeps what matters of swanctl's output: it also reports
// every missing credential directory (private, rsa, pkcs12, ...), which this
// package does not create.
func swanctlComplaints(out []byte) string {
	var keep []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if !strings.HasPrefix(l, "opening directory ") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, " | ")
}

func (c *Charon) consumeLog(s string) {
	l, err := ParseLogLine(s)
	if err != nil {
		return // the rare line charon writes unformatted
	}
	if c.opts.KeyLog {
		c.keys.feed(l)
	}
	if c.opts.OnLog != nil {
		c.opts.OnLog(l)
	}
}

// Stop terminates charon: SIGTERM, which makes it delete its SAs and tell the
// peers, then SIGKILL if it has not exited after Options.StopTimeout. It waits
// for the process, delivers the last log lines, and removes a temporary
// directory. The mount namespace and its /run mount vanish with the process.
// Stop is idempotent.
func (c *Charon) Stop() error {
	c.stopOnce.Do(func() {
		var errs []error
		select {
		case <-c.exited:
			if c.waitErr != nil {
				errs = append(errs, fmt.Errorf("%w: %w", errExitedEarly, c.waitErr))
			}
		default:
			if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
				errs = append(errs, err)
			}
			select {
			case <-c.exited:
			case <-time.After(c.opts.StopTimeout):
				c.cmd.Process.Kill()
				<-c.exited
				errs = append(errs, fmt.Errorf("strongswan: charon ignored SIGTERM for %v and was killed", c.opts.StopTimeout))
			}
		}
		c.tail.Close()
		if err := c.removeDir(); err != nil {
			errs = append(errs, err)
		}
		c.stopErr = errors.Join(errs...)
	})
	return c.stopErr
}

func (c *Charon) removeDir() error {
	if !c.tempDir {
		return nil
	}
	return os.RemoveAll(c.dir)
}

// Exited is closed when charon's process has ended, by Stop or on its own.
func (c *Charon) Exited() <-chan struct{} { return c.exited }

// Pid is charon's process id.
func (c *Charon) Pid() int { return c.cmd.Process.Pid }

// Dir is the node's directory.
func (c *Charon) Dir() string { return c.dir }

// ViciSocket is the path of charon's vici socket as seen from the lab process.
func (c *Charon) ViciSocket() string { return filepath.Join(c.dir, viciFile) }

// LogPath is the path of charon's log file as seen from the lab process.
func (c *Charon) LogPath() string { return filepath.Join(c.dir, logFile) }

// Keys returns the keys read from the log so far; empty unless
// Options.KeyLog is set.
func (c *Charon) Keys() Keys { return c.keys.keys() }

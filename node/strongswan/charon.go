package strongswan

import (
	"bytes"
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

	"golang.org/x/sys/unix"

	"github.com/ipseclab/ipseclab/node/strongswan/vici"
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
	// node.NetnsPath("lab-gw1").
	Netns string

	// Dir holds the node's strongswan.conf, swanctl.conf, vici socket and log.
	// It is created if missing and left in place. When empty, a temporary
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

	StartTimeout time.Duration // for charon's vici socket to come up; default 10s
	StopTimeout  time.Duration // between SIGTERM and SIGKILL; default 5s
}

// Charon is one running charon.
type Charon struct {
	opts    Options
	dir     string
	tempDir bool
	cmd     *exec.Cmd
	exited  chan struct{} // closed when the process has been reaped
	waitErr error         // charon's exit status, valid after exited closes
	tail    *logTail
	keys    keyParser

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
	if err := c.writeFiles(swanctlConf); err != nil {
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
	if err := c.waitForVici(startCtx); err != nil {
		return nil, errors.Join(err, c.Stop())
	}
	if err := c.loadAll(startCtx); err != nil {
		return nil, errors.Join(err, c.Stop())
	}
	return c, nil
}

func (c *Charon) writeFiles(swanctlConf string) error {
	files := map[string]string{
		strongswanCfg: strongswanConf(logLevels(c.opts.LogLevels, c.opts.KeyLog)),
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
// of its own, in which the node's directory is mounted on /run.
//
// Both namespaces are entered on a locked OS thread, which then forks charon:
// a child inherits the namespaces of the thread that forks it. The thread then
// waits for charon and is never unlocked, so Go discards it afterwards rather
// than run other goroutines in those namespaces. It must stay alive as long as
// charon does for a second reason: Pdeathsig fires when the forking thread
// exits, and it is what kills charon if the lab process dies without Stop.
func (c *Charon) spawn() error {
	out, err := os.OpenFile(filepath.Join(c.dir, "charon.out"), os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer out.Close() // the child has its own copy
	cmd := exec.Command(c.opts.Charon)
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
		runtime.LockOSThread() // never unlocked: see above
		if err := enterNamespaces(c.opts.Netns, c.dir); err != nil {
			started <- err
			return
		}
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

// enterNamespaces moves the calling (locked) thread into the network namespace
// at netnsPath and into a new private mount namespace with dir on /run.
func enterNamespaces(netnsPath, dir string) error {
	fd, err := unix.Open(netnsPath, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("strongswan: open network namespace %s: %w", netnsPath, err)
	}
	err = unix.Setns(fd, unix.CLONE_NEWNET)
	unix.Close(fd)
	if err != nil {
		return fmt.Errorf("strongswan: enter network namespace %s: %w", netnsPath, err)
	}
	if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
		return fmt.Errorf("strongswan: new mount namespace: %w", err)
	}
	// Private first, so that the bind mount below does not propagate back to
	// the host's mount namespace through shared mounts.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("strongswan: make mounts private: %w", err)
	}
	if err := unix.Mount(dir, runInside, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("strongswan: bind %s on %s: %w", dir, runInside, err)
	}
	return nil
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
	cl, err := vici.Dial(ctx, c.ViciSocket())
	if err != nil {
		return err
	}
	defer cl.Close()
	_, err = cl.Call(ctx, "version", nil)
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

// loadAll loads swanctl.conf's connections and secrets into charon.
func (c *Charon) loadAll(ctx context.Context) error {
	cmd := exec.CommandContext(ctx, c.opts.Swanctl, "--load-all", "--noprompt",
		"--file", filepath.Join(c.dir, swanctlCfg), "--uri", "unix://"+c.ViciSocket())
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("strongswan: swanctl --load-all: %w: %s", err, bytes.TrimSpace(out))
	}
	return nil
}

// Reload replaces the node's configuration: it rewrites swanctl.conf and loads
// it again. Connections that disappeared are unloaded; established SAs stay.
func (c *Charon) Reload(ctx context.Context, cfg Config) error {
	conf, err := cfg.SwanctlConf()
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(c.dir, swanctlCfg), []byte(conf), 0o600); err != nil {
		return err
	}
	return c.loadAll(ctx)
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
				errs = append(errs, fmt.Errorf("strongswan: charon had already exited: %w", c.waitErr))
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

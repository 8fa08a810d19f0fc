// Package namespace creates, lists, deletes and enters named network
// namespaces without ever switching the caller's thread: every switch happens
// on a separate locked thread that is put back (or discarded) afterwards. The
// lab runtime (node) and the packages below it (the IPsec stack, links, NAT
// boxes) all use it.
package namespace

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Dir is where named network namespaces are bind-mounted, the same place
// iproute2 uses, so `ip netns exec` and `ip -n` work on lab nodes.
const Dir = "/run/netns"

// Path is the bind-mount path of a named namespace.
func Path(name string) string { return filepath.Join(Dir, name) }

// ensureDir makes /run/netns a shared mount point, as iproute2 does, so that
// namespaces mounted there later are seen by every mount namespace (a strongSwan
// node runs in a private mount namespace of its own).
func ensureDir() error {
	if err := os.MkdirAll(Dir, 0o755); err != nil {
		return err
	}
	err := unix.Mount("", Dir, "none", unix.MS_SHARED|unix.MS_REC, "")
	if err == nil {
		return nil
	}
	if !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("make %s a shared mount: %w", Dir, err)
	}
	if err := unix.Mount(Dir, Dir, "none", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind-mount %s onto itself: %w", Dir, err)
	}
	if err := unix.Mount("", Dir, "none", unix.MS_SHARED|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("make %s a shared mount: %w", Dir, err)
	}
	return nil
}

// Create creates a named network namespace and returns a handle to it.
// The calling goroutine's thread is never moved: the namespace is created on
// another locked thread that is put back afterwards (see onThread).
func Create(name string) (netns.NsHandle, error) {
	if name == "" || strings.ContainsAny(name, "/\x00") {
		return netns.None(), fmt.Errorf("invalid namespace name %q", name)
	}
	if err := ensureDirOnce(); err != nil {
		return netns.None(), err
	}
	path := Path(name)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDONLY, 0o444)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return netns.None(), fmt.Errorf("network namespace %s already exists: a lab of that name is deployed, or a leftover of one; remove it with `ipseclab destroy --name LAB`, or deploy this lab under another name with --name", name)
		}
		return netns.None(), err
	}
	f.Close()

	type result struct {
		h   netns.NsHandle
		err error
	}
	ch := make(chan result, 1)
	go func() {
		var res result
		onThread(func() error {
			if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
				res.err = fmt.Errorf("unshare network namespace: %w", err)
				return nil
			}
			self := fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid())
			if err := unix.Mount(self, path, "none", unix.MS_BIND, ""); err != nil {
				res.err = fmt.Errorf("bind-mount namespace to %s: %w", path, err)
				return nil
			}
			res.h, res.err = netns.GetFromPath(path)
			return nil
		})
		ch <- res
	}()
	r := <-ch
	if r.err != nil {
		_ = unix.Unmount(path, unix.MNT_DETACH)
		_ = os.Remove(path)
		return netns.None(), r.err
	}
	return r.h, nil
}

var dirState struct {
	sync.Mutex
	ready bool
}

func ensureDirOnce() error {
	dirState.Lock()
	defer dirState.Unlock()
	if dirState.ready {
		return nil
	}
	if err := ensureDir(); err != nil {
		return err
	}
	dirState.ready = true
	return nil
}

// Delete removes a named namespace. The kernel frees it, and every
// interface in it (veth peers elsewhere go too), once the last reference is gone.
// A namespace that does not exist is not an error.
func Delete(name string) error {
	path := Path(name)
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmount %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// List returns the names of the named namespaces that start with prefix.
func List(prefix string) ([]string, error) {
	ents, err := os.ReadDir(Dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), prefix) {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

// Run runs fn on a thread that has entered the namespace at path; the thread
// is put back afterwards, or discarded if that fails (see onThread). Use it
// for what has no netlink form: sysctls, opening TUN/TAP devices, binding
// sockets.
func Run(path string, fn func() error) error {
	h, err := netns.GetFromPath(path)
	if err != nil {
		return fmt.Errorf("open namespace %s: %w", path, err)
	}
	defer h.Close()
	return RunHandle(h, fn)
}

// RunHandle is Run for an open handle.
func RunHandle(h netns.NsHandle, fn func() error) error {
	ch := make(chan error, 1)
	go func() {
		ch <- onThread(func() error {
			if err := unix.Setns(int(h), unix.CLONE_NEWNET); err != nil {
				return fmt.Errorf("enter namespace: %w", err)
			}
			return fn()
		})
	}()
	return <-ch
}

// onThread runs fn on the calling goroutine's thread, locked, and afterwards
// puts the thread back into the namespace it started in. Only when that fails
// does the goroutine end still locked, which makes the runtime discard the
// thread. Restoring matters: a locked goroutine that exits on the process's
// main thread cannot discard it, and would leave the main thread (and with it
// /proc/self/ns/net) parked in a lab's namespace for good.
func onThread(fn func() error) error {
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		return fmt.Errorf("read the thread's namespace: %w", err)
	}
	defer orig.Close()
	err = fn()
	if unix.Setns(int(orig), unix.CLONE_NEWNET) == nil {
		runtime.UnlockOSThread()
	}
	return err
}

// LoopbackUp brings lo up inside the namespace.
func LoopbackUp(h netns.NsHandle) error {
	nh, err := netlink.NewHandleAt(h)
	if err != nil {
		return fmt.Errorf("netlink in namespace: %w", err)
	}
	defer nh.Close()
	lo, err := nh.LinkByName("lo")
	if err != nil {
		return err
	}
	return nh.LinkSetUp(lo)
}

package node

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// NetnsDir is where named network namespaces are bind-mounted, the same place
// iproute2 uses, so `ip netns exec` and `ip -n` work on lab nodes.
const NetnsDir = "/run/netns"

// NetnsPath is the bind-mount path of a named namespace.
func NetnsPath(name string) string { return filepath.Join(NetnsDir, name) }

// ensureNetnsDir makes /run/netns a shared mount point, as iproute2 does, so that
// namespaces mounted there later are seen by every mount namespace (a strongSwan
// node runs in a private mount namespace of its own).
func ensureNetnsDir() error {
	if err := os.MkdirAll(NetnsDir, 0o755); err != nil {
		return err
	}
	err := unix.Mount("", NetnsDir, "none", unix.MS_SHARED|unix.MS_REC, "")
	if err == nil {
		return nil
	}
	if !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("make %s a shared mount: %w", NetnsDir, err)
	}
	if err := unix.Mount(NetnsDir, NetnsDir, "none", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind-mount %s onto itself: %w", NetnsDir, err)
	}
	if err := unix.Mount("", NetnsDir, "none", unix.MS_SHARED|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("make %s a shared mount: %w", NetnsDir, err)
	}
	return nil
}

// CreateNetns creates a named network namespace and returns a handle to it.
// The calling goroutine's thread is never moved: the namespace is created on a
// throwaway locked thread that exits afterwards, so no goroutine can ever run in
// the wrong namespace by accident.
func CreateNetns(name string) (netns.NsHandle, error) {
	if name == "" || strings.ContainsAny(name, "/\x00") {
		return netns.None(), fmt.Errorf("invalid namespace name %q", name)
	}
	if err := ensureNetnsDirOnce(); err != nil {
		return netns.None(), err
	}
	path := NetnsPath(name)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDONLY, 0o444)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return netns.None(), fmt.Errorf("network namespace %s already exists (a lab of the same name is deployed, or a leftover: try `ipseclab destroy --all`)", name)
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
		// This thread's namespace is changed and never restored: the goroutine
		// returns without UnlockOSThread, so the runtime terminates the thread.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			ch <- result{err: fmt.Errorf("unshare network namespace: %w", err)}
			return
		}
		self := fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid())
		if err := unix.Mount(self, path, "none", unix.MS_BIND, ""); err != nil {
			ch <- result{err: fmt.Errorf("bind-mount namespace to %s: %w", path, err)}
			return
		}
		h, err := netns.GetFromPath(path)
		ch <- result{h, err}
	}()
	r := <-ch
	if r.err != nil {
		_ = unix.Unmount(path, unix.MNT_DETACH)
		_ = os.Remove(path)
		return netns.None(), r.err
	}
	return r.h, nil
}

var netnsDir struct {
	sync.Mutex
	ready bool
}

func ensureNetnsDirOnce() error {
	netnsDir.Lock()
	defer netnsDir.Unlock()
	if netnsDir.ready {
		return nil
	}
	if err := ensureNetnsDir(); err != nil {
		return err
	}
	netnsDir.ready = true
	return nil
}

// DeleteNetns removes a named namespace. The kernel frees it, and every
// interface in it (veth peers elsewhere go too), once the last reference is gone.
// A namespace that does not exist is not an error.
func DeleteNetns(name string) error {
	path := NetnsPath(name)
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmount %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// ListNetns returns the names of the named namespaces that start with prefix.
func ListNetns(prefix string) ([]string, error) {
	ents, err := os.ReadDir(NetnsDir)
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

// InNetns runs fn on a thread that has entered the namespace at path. The thread
// is thrown away afterwards rather than switched back, so a failed switch can
// never leak a namespace into other goroutines. Use it for what has no netlink
// form: sysctls, opening TUN/TAP devices, binding sockets.
func InNetns(path string, fn func() error) error {
	h, err := netns.GetFromPath(path)
	if err != nil {
		return fmt.Errorf("open namespace %s: %w", path, err)
	}
	defer h.Close()
	return InNetnsHandle(h, fn)
}

// InNetnsHandle is InNetns for an open handle.
func InNetnsHandle(h netns.NsHandle, fn func() error) error {
	ch := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		if err := unix.Setns(int(h), unix.CLONE_NEWNET); err != nil {
			ch <- fmt.Errorf("enter namespace: %w", err)
			return
		}
		ch <- fn()
	}()
	return <-ch
}

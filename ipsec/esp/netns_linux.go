package esp

import (
	"fmt"
	"runtime"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// inNetns runs fn on a throwaway OS thread inside the namespace ns, the way
// node.InNetnsHandle does: the thread is never switched back, it dies with its
// goroutine, so no other goroutine can ever run in the wrong namespace. The
// package has its own copy because the dependency goes node → ipsec, not back
// (design notes, "Layout"); nat and impair do the same.
func inNetns(ns netns.NsHandle, fn func() error) error {
	ch := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits with the goroutine
		if err := unix.Setns(int(ns), unix.CLONE_NEWNET); err != nil {
			ch <- fmt.Errorf("enter namespace: %w", err)
			return
		}
		ch <- fn()
	}()
	return <-ch
}

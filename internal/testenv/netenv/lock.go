package netenv

import (
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// lockPath serialises tests that sweep every lab on the machine (`destroy
// --all`) against tests that deploy labs, since `go test ./...` runs packages
// in parallel.
const lockPath = "/run/ipseclab-tests.lock"

func labLock(t testing.TB, how int) {
	t.Helper()
	f, err := os.OpenFile(lockPath, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatalf("test lock: %v", err)
	}
	if err := unix.Flock(int(f.Fd()), how); err != nil {
		f.Close()
		t.Fatalf("test lock: %v", err)
	}
	t.Cleanup(func() {
		_ = unix.Flock(int(f.Fd()), unix.LOCK_UN)
		f.Close()
	})
}

// SharedLabs is taken by a test that deploys labs: many may hold it at once.
func SharedLabs(t testing.TB) { labLock(t, unix.LOCK_SH) }

// ExclusiveLabs is taken by a test that destroys every lab on the machine.
func ExclusiveLabs(t testing.TB) { labLock(t, unix.LOCK_EX) }

// Package fdread reads a non-blocking file (a TAP or TUN device) in two
// steps, so that a reader holds a buffer only while there is something to
// read: TryRead reads without waiting, and Wait waits in Go's poller without
// a buffer. A lab of a thousand gateways then holds buffers for the devices
// that carry traffic at the moment, not 64 KiB for each of thousands of idle
// ones. Under load, TryRead succeeds and nothing is added to a read.
package fdread

import (
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// Reader reads one file, from one goroutine.
type Reader struct {
	rc    syscall.RawConn
	buf   []byte
	n     int
	errno syscall.Errno
	pfd   [1]unix.PollFd
	asked bool // isReadable asked the kernel in this Wait
	// made once, so that a read allocates nothing
	try, ready func(fd uintptr) bool
}

// New returns a Reader of f, which must be non-blocking (os.NewFile of an
// O_NONBLOCK descriptor, which Go's poller drives).
func New(f *os.File) (*Reader, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	r := &Reader{rc: rc}
	r.try, r.ready = r.doTry, r.isReadable
	return r, nil
}

// TryRead reads into b if there is something to read, without waiting:
// wouldBlock says there was nothing. A closed file returns os.ErrClosed.
func (r *Reader) TryRead(b []byte) (n int, wouldBlock bool, err error) {
	r.buf = b
	err = r.rc.Read(r.try)
	r.buf = nil
	switch {
	case err != nil:
		// The poller's only failure without deadlines: the file closed.
		return 0, false, os.ErrClosed
	case r.errno == unix.EAGAIN:
		return 0, true, nil
	case r.errno != 0:
		return 0, false, r.errno
	}
	return r.n, false, nil
}

func (r *Reader) doTry(fd uintptr) bool {
	for {
		n, err := unix.Read(int(fd), r.buf)
		if err == unix.EINTR {
			continue
		}
		r.n, r.errno = max(n, 0), 0
		if e, ok := err.(syscall.Errno); ok {
			r.errno = e
		}
		return true
	}
}

// Wait waits until the file has something to read, or is closed (then
// os.ErrClosed).
func (r *Reader) Wait() error {
	r.asked = false
	if r.rc.Read(r.ready) != nil {
		return os.ErrClosed
	}
	return nil
}

// isReadable asks the kernel without waiting, once: the poller's readiness
// was reset as the wait began, and what arrived before it would otherwise
// wait for the next arrival. Once the poller wakes the wait, it is taken
// as readable (a rare spurious wake costs one TryRead that finds nothing).
func (r *Reader) isReadable(fd uintptr) bool {
	if r.asked {
		return true
	}
	r.asked = true
	r.pfd[0] = unix.PollFd{Fd: int32(fd), Events: unix.POLLIN}
	n, err := unix.Poll(r.pfd[:], 0)
	return err == nil && n > 0
}

package impair

import (
	"errors"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ipseclab/ipseclab/impair/netem"
	"github.com/ipseclab/ipseclab/internal/vnet"
)

// direction forwards one direction of a link: it reads frames from the
// sending end's TAP device, passes them through the Pipeline and writes them
// into the receiving end's TAP device when they are due.
//
// Two goroutines share it. The reader reads a frame, pushes it and writes out
// whatever is due at once — for an unimpaired link that is the frame itself,
// so a frame crosses the link without a hand-off between goroutines. The timer
// goroutine sleeps on a timerfd (nanosecond resolution, unlike Go timers,
// whose sleeps wake in whole milliseconds) until the first held frame is due.
// Both write under mu, so frames leave in the pipeline's order.
type direction struct {
	d        netem.Dir
	src, dst *tap
	timer    *os.File // timerfd, armed for the first held frame
	timerFD  int

	mu       sync.Mutex
	pipe     *Pipeline
	real     bool // frames must be real packets: offloads are off on src
	holds    bool // the settings hold frames back: copy small ones out of big buffers
	captures []*Capture
	closed   bool
	scratch  []*Frame
	onStop   func(error) // told why the reader stopped, when it was not Close
}

func newDirection(d netem.Dir, src, dst *tap, pipe *Pipeline) (*direction, error) {
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return nil, err
	}
	return &direction{d: d, src: src, dst: dst, pipe: pipe, timer: os.NewFile(uintptr(fd), "timerfd"), timerFD: fd}, nil
}

// apply sets the direction's settings and switches the sending device's
// offloads to match. Called with mu held.
func (dn *direction) apply(n netem.Netem, mtu int, down bool) error {
	dn.pipe.Set(n, mtu, down)
	dn.holds = n.Delay > 0 || n.Jitter > 0 || n.Rate > 0
	return dn.setReal(perPacket(n) || mtu > 0 || len(dn.captures) > 0)
}

// perPacket reports whether the settings decide per packet (loss, duplicates,
// reordering, corruption, a rate), so that frames must be real packets rather
// than GSO super-frames. Delay and jitter alone apply to a super-frame as well.
func perPacket(n netem.Netem) bool {
	return !n.Loss.IsZero() || n.Duplicate > 0 || n.Reorder > 0 || n.Corrupt > 0 || n.Rate > 0
}

// setReal turns offloads off when frames must be real packets and back on
// when super-frames may pass. Should the device refuse, frames are still cut
// into packets here. Called with mu held.
func (dn *direction) setReal(real bool) error {
	if real == dn.real {
		return nil
	}
	dn.real = real
	return dn.src.setOffload(!real)
}

func (dn *direction) readLoop(wg *sync.WaitGroup) {
	defer wg.Done()
	for {
		f := newFrame(bigFrame)
		n, err := dn.src.file.Read(f.buf)
		if err != nil {
			f.release()
			if errors.Is(err, unix.EINTR) || errors.Is(err, unix.EAGAIN) {
				continue
			}
			if !errors.Is(err, os.ErrClosed) && dn.onStop != nil {
				dn.onStop(err)
			}
			return
		}
		if n < vnet.Len {
			f.release()
			continue
		}
		f.vnet.Decode(f.buf)
		f.Data = f.buf[vnet.Len:n]
		now := time.Now()
		dn.mu.Lock()
		dn.accept(now, f)
		dn.mu.Unlock()
	}
}

// accept takes one frame read from the sending device. Called with mu held.
func (dn *direction) accept(now time.Time, f *Frame) {
	frames := dn.scratch[:0]
	if dn.real {
		var err error
		if frames, err = finish(f, frames); err != nil {
			dn.pipe.reject(f)
			return
		}
	} else {
		f.setWire()
		frames = append(frames, f)
	}
	wasEmpty := dn.pipe.Len() == 0
	for i, g := range frames {
		if dn.holds && g.pool == &bigPool && len(g.Data) <= smallFrame {
			small := copyFrame(g)
			g.release()
			g = small
		}
		dn.capture(AtSender, now, g)
		dn.pipe.Push(now, g)
		frames[i] = nil
	}
	dn.scratch = frames[:0]
	dn.drain(now)
	if wasEmpty && dn.pipe.Len() > 0 {
		dn.arm()
	}
}

// drain writes every frame that is due. Called with mu held.
func (dn *direction) drain(now time.Time) {
	for f := dn.pipe.Pop(now); f != nil; f = dn.pipe.Pop(now) {
		if !dn.closed {
			f.vnet.Encode(f.buf)
			// Offered to the captures before it reaches the receiver: the
			// receiver's answer, captured by the other direction, cannot
			// then go into the file first. (Offered after, the answer to
			// an IKE message came first whenever this goroutine lost its
			// core between the write and the offer, and Wireshark could no
			// longer decrypt the exchange.) A frame the device refuses,
			// which only a closing link does, is captured all the same.
			dn.capture(AtReceiver, now, f)
			if _, err := dn.dst.file.Write(f.buf[:vnet.Len+len(f.Data)]); err != nil {
				packets, _ := f.wire()
				dn.pipe.c.WriteErrors += uint64(packets)
			}
		}
		f.release()
	}
}

// arm sets the timer for the first held frame, or disarms it. Called with mu
// held.
func (dn *direction) arm() {
	if dn.closed {
		return
	}
	var spec unix.ItimerSpec
	if due, ok := dn.pipe.NextDue(); ok {
		wait := max(time.Until(due), time.Nanosecond) // zero would disarm
		spec.Value = unix.NsecToTimespec(int64(wait))
	}
	_ = unix.TimerfdSettime(dn.timerFD, 0, &spec, nil)
}

func (dn *direction) timerLoop(wg *sync.WaitGroup) {
	defer wg.Done()
	var expirations [8]byte
	for {
		if _, err := dn.timer.Read(expirations[:]); err != nil {
			if errors.Is(err, unix.EINTR) || errors.Is(err, unix.EAGAIN) {
				continue
			}
			return
		}
		dn.mu.Lock()
		dn.drain(time.Now())
		dn.arm()
		dn.mu.Unlock()
	}
}

// capture offers the frame to the captures at point. Called with mu held.
func (dn *direction) capture(point CapturePoint, ts time.Time, f *Frame) {
	for _, c := range dn.captures {
		if c.point == point {
			c.offer(ts, f.Data)
		}
	}
}

// stop ends the goroutines' work: nothing is written any more, and closing
// the files wakes them.
func (dn *direction) stop() {
	dn.mu.Lock()
	dn.closed = true
	dn.mu.Unlock()
	dn.timer.Close()
}

// discard releases the frames still held, once the goroutines are gone.
func (dn *direction) discard() {
	dn.mu.Lock()
	defer dn.mu.Unlock()
	for f := dn.pipe.queue.popFront(); f != nil; f = dn.pipe.queue.popFront() {
		packets, _ := f.wire()
		dn.pipe.c.Queued -= uint64(packets)
		f.release()
	}
}

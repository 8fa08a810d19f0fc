package ike

import "time"

// Clock is the engine's source of time and timers. Tests inject a manual
// clock (package ipsec/stack/sim) so that retransmissions, lifetimes and DPD
// happen when the test says, not when the machine gets to them.
type Clock interface {
	Now() time.Time
	// AfterFunc calls f in its own goroutine (or the caller's, for a manual
	// clock) once d has passed, unless the timer is stopped first.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a pending AfterFunc.
type Timer interface {
	// Stop prevents the call if it has not happened; it reports whether it
	// did so.
	Stop() bool
}

// SystemClock is the real clock.
type SystemClock struct{}

func (SystemClock) Now() time.Time { return time.Now() }

func (SystemClock) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }

// timer is one of the engine's timers. Its callback runs under the engine's
// lock, and only if nobody stopped the timer first: a callback that lost the
// race with stop finds stopped set and does nothing.
type timer struct {
	t       Timer
	stopped bool
}

// after arms a timer whose callback runs f under the engine's lock, unless
// the timer was stopped (or the engine closed) in the meantime.
func (e *Engine) after(d time.Duration, f func()) *timer {
	tm := &timer{}
	tm.t = e.clock.AfterFunc(d, func() {
		e.mu.Lock()
		defer e.mu.Unlock()
		if tm.stopped || e.closed {
			return
		}
		tm.stopped = true
		f()
	})
	return tm
}

// stop cancels a timer; a nil timer is fine. Called under the engine's lock,
// so a callback that is already waiting for the lock sees stopped and returns.
func (tm *timer) stop() {
	if tm == nil || tm.stopped {
		return
	}
	tm.stopped = true
	tm.t.Stop()
}

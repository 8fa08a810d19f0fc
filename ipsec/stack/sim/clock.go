package sim

import (
	"slices"
	"sync"
	"time"

	"github.com/ipseclab/ipseclab/ipsec/ike"
)

// Clock is a manual clock: time moves only when the test calls Advance,
// and timers fire then, in deadline order, on the caller's goroutine. It
// satisfies ike.Clock, and its Now can drive the data plane (esp.Config.Now).
type Clock struct {
	mu     sync.Mutex
	now    time.Time
	seq    uint64
	timers []*clockTimer
}

type clockTimer struct {
	c    *Clock
	when time.Time
	seq  uint64 // orders timers with the same deadline by creation
	f    func()
}

// NewClock returns a clock showing start.
func NewClock(start time.Time) *Clock { return &Clock{now: start} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// AfterFunc arranges for f to run when the clock has been advanced by d.
func (c *Clock) AfterFunc(d time.Duration, f func()) ike.Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	t := &clockTimer{c: c, when: c.now.Add(d), seq: c.seq, f: f}
	c.timers = append(c.timers, t)
	return t
}

// Stop implements ike.Timer.
func (t *clockTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	i := slices.Index(t.c.timers, t)
	if i < 0 {
		return false
	}
	t.c.timers = slices.Delete(t.c.timers, i, i+1)
	return true
}

// Advance moves the clock forward by d, running every timer that falls due,
// each with the clock set to its deadline, including timers that those
// timers arm within the interval.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	target := c.now.Add(d)
	c.mu.Unlock()
	for {
		c.mu.Lock()
		var next *clockTimer
		for _, t := range c.timers {
			if !t.when.After(target) && (next == nil || t.when.Before(next.when) || (t.when.Equal(next.when) && t.seq < next.seq)) {
				next = t
			}
		}
		if next == nil {
			c.now = target
			c.mu.Unlock()
			return
		}
		c.timers = slices.DeleteFunc(c.timers, func(t *clockTimer) bool { return t == next })
		if next.when.After(c.now) {
			c.now = next.when
		}
		c.mu.Unlock()
		next.f()
	}
}

// Pending is the number of armed timers.
func (c *Clock) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}

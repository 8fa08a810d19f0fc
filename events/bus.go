package events

import (
	"sync"
	"time"
)

// Bus fans events out to subscribers. Publish never blocks and never drops: each
// subscriber has its own unbounded queue, so a slow terminal cannot stall the ESP
// path and a script expectation cannot miss the event it waits for.
type Bus struct {
	lab string
	now func() time.Time

	mu      sync.Mutex
	seq     uint64
	subs    map[*Subscription]struct{}
	history history // the most recent events, for late readers
	histCap int     // events kept at most
	histMax int     // bytes kept at most
	closed  bool
}

// Option configures a Bus.
type Option func(*Bus)

// WithClock injects the clock that stamps events (tests use a fake one).
func WithClock(now func() time.Time) Option { return func(b *Bus) { b.now = now } }

// WithHistory sets how many recent events the bus keeps for Since (default
// 65536).
func WithHistory(n int) Option { return func(b *Bus) { b.histCap = n } }

// WithHistoryBytes bounds the memory the kept events take, as estimated by
// their footprint (default 16 MiB): events are not all alike, and a peer's
// offer or a long log line should not let the history grow without bound.
func WithHistoryBytes(n int) Option { return func(b *Bus) { b.histMax = n } }

// NewBus returns a bus for the named lab.
func NewBus(lab string, opts ...Option) *Bus {
	b := &Bus{lab: lab, now: time.Now, subs: map[*Subscription]struct{}{}, histCap: 65536, histMax: 16 << 20}
	for _, o := range opts {
		o(b)
	}
	return b
}

// Lab is the name of the lab the bus belongs to.
func (b *Bus) Lab() string { return b.lab }

// Publish stamps the event with a sequence number, the lab's name and (when
// unset) the time, and hands it to every subscriber whose filter accepts it.
// It returns the stamped event. A nil Bus accepts and discards events, so that
// components can run without one in unit tests.
func (b *Bus) Publish(e Event) Event {
	if b == nil {
		return e
	}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return e
	}
	b.seq++
	e.Seq = b.seq
	if e.Time.IsZero() {
		e.Time = b.now()
	}
	if e.Lab == "" {
		e.Lab = b.lab
	}
	if e.Level == "" {
		e.Level = Info
	}
	if b.histCap > 0 {
		size := e.footprint()
		if b.history.len() >= b.histCap || b.history.bytes+size > b.histMax {
			b.trimHistory()
		}
		b.history.add(e, size)
	}
	for s := range b.subs {
		if s.filter == nil || s.filter(&e) {
			s.push(e)
		}
	}
	b.mu.Unlock()
	return e
}

// trimHistory drops the oldest events until at most half of each bound is
// used, so that trimming costs O(1) a publish over time.
func (b *Bus) trimHistory() {
	for b.history.len() > 0 && (b.history.len() > b.histCap/2 || b.history.bytes > b.histMax/2) {
		b.history.dropOldest()
	}
}

// Since returns the kept events with a sequence number above seq, oldest first.
func (b *Bus) Since(seq uint64) []Event {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []Event
	b.history.each(func(e *Event) bool {
		if e.Seq > seq {
			out = append(out, *e)
		}
		return true
	})
	return out
}

// Subscribe registers a subscriber. A nil filter accepts every event. Events
// published from now on arrive on the subscription's channel, in order.
func (b *Bus) Subscribe(filter func(*Event) bool) *Subscription {
	return b.subscribe(filter, false)
}

// SubscribeWithHistory is Subscribe, but the channel first replays the kept
// history that passes the filter, so nothing between "before" and "now" is lost.
func (b *Bus) SubscribeWithHistory(filter func(*Event) bool) *Subscription {
	return b.subscribe(filter, true)
}

func (b *Bus) subscribe(filter func(*Event) bool, replay bool) *Subscription {
	s := &Subscription{bus: b, filter: filter, c: make(chan Event), wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	b.mu.Lock()
	if replay {
		b.history.each(func(e *Event) bool {
			if filter == nil || filter(e) {
				s.queue = append(s.queue, *e)
			}
			return true
		})
	}
	if b.closed {
		s.closing = true
	} else {
		b.subs[s] = struct{}{}
	}
	b.mu.Unlock()
	go s.pump()
	s.signal()
	return s
}

// Close stops accepting events. Every subscriber still receives what was
// published before Close, then its channel is closed.
func (b *Bus) Close() {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return
	}
	b.closed = true
	subs := b.subs
	b.subs = map[*Subscription]struct{}{}
	b.mu.Unlock()
	for s := range subs {
		s.mu.Lock()
		s.closing = true
		s.mu.Unlock()
		s.signal()
	}
}

// Subscription is one reader of the bus.
type Subscription struct {
	bus    *Bus
	filter func(*Event) bool
	c      chan Event
	wake   chan struct{} // something was queued, or closing began
	stop   chan struct{} // closed by Close
	done   chan struct{} // closed when pump has returned

	mu      sync.Mutex
	queue   []Event // queue[head:] waits to be delivered
	head    int
	closing bool // deliver what is queued, then close c
	stopped bool // stop now
}

// C delivers the events. It is closed after Close, or after the bus closed and
// everything queued was delivered.
func (s *Subscription) C() <-chan Event { return s.c }

// Close unsubscribes. Queued events are discarded.
func (s *Subscription) Close() {
	s.bus.mu.Lock()
	delete(s.bus.subs, s)
	s.bus.mu.Unlock()
	s.mu.Lock()
	if !s.stopped {
		s.stopped = true
		s.queue, s.head = nil, 0
		close(s.stop)
	}
	s.mu.Unlock()
	s.signal()
	<-s.done
}

func (s *Subscription) push(e Event) {
	s.mu.Lock()
	s.queue = append(s.queue, e)
	s.mu.Unlock()
	s.signal()
}

func (s *Subscription) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// maxIdleQueue is the most events an emptied subscriber queue keeps room for.
const maxIdleQueue = 1024

func (s *Subscription) pump() {
	defer close(s.done)
	defer close(s.c)
	for {
		s.mu.Lock()
		if s.stopped {
			s.mu.Unlock()
			return
		}
		if s.head == len(s.queue) {
			// Emptied: the next events reuse the queue's array from its
			// start, rather than append ever further into new ones; an
			// array a burst made large goes.
			s.queue, s.head = s.queue[:0], 0
			if cap(s.queue) > maxIdleQueue {
				s.queue = nil
			}
			closing := s.closing
			s.mu.Unlock()
			if closing {
				return
			}
			<-s.wake
			continue
		}
		e := s.queue[s.head]
		s.queue[s.head] = Event{}
		s.head++
		s.mu.Unlock()
		select {
		case s.c <- e:
		case <-s.stop:
			return
		}
	}
}

// Publisher publishes on behalf of one node, connection or link, so callers do
// not repeat those fields on every event.
type Publisher struct {
	Bus  *Bus
	Node string
	Conn string
	Link string
}

// Publish fills the publisher's node, connection and link where the event leaves
// them empty, then publishes it.
func (p Publisher) Publish(e Event) Event {
	if e.Node == "" {
		e.Node = p.Node
	}
	if e.Conn == "" {
		e.Conn = p.Conn
	}
	if e.Link == "" {
		e.Link = p.Link
	}
	return p.Bus.Publish(e)
}

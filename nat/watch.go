package nat

import (
	"cmp"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/ti-mo/conntrack"
	"github.com/ti-mo/netfilter"
	"github.com/vishvananda/netns"

	"github.com/ipseclab/ipseclab/events"
)

// watcher turns conntrack's new and destroy events in the NAT's namespace into
// NATMappingNew and NATMappingExpired events on the lab's bus.
//
// It keeps the set of mappings it has announced. If the kernel drops events
// (the socket's buffer overflowed under a flood of new flows), the listener
// fails; the watcher subscribes again and reconciles that set with a dump of
// the table, so the announcements catch up: mappings made meanwhile are
// announced as new, and announced mappings that vanished meanwhile as gone.
// Each mapping is announced at most once each way.
type watcher struct {
	ns  netns.NsHandle
	pub events.Publisher

	stop chan struct{}
	done chan struct{}

	mu      sync.Mutex
	live    map[uint32]Mapping // announced and not yet gone
	flushed map[uint32]bool    // being deleted by Flush
}

// eventReadBuffer is the conntrack event socket's receive buffer; a burst of
// this many bytes of events (some thousands) is absorbed while the watcher
// publishes. (A variable so that a test can make it overflow.)
var eventReadBuffer = 4 << 20

// subscription is one conntrack event socket and its decoder.
type subscription struct {
	conn   *conntrack.Conn
	events chan conntrack.Event
	errs   chan error
}

func subscribe(ns netns.NsHandle) (*subscription, error) {
	c, err := dialConntrack(ns)
	if err != nil {
		return nil, err
	}
	if err := c.SetReadBuffer(eventReadBuffer); err != nil {
		c.Close()
		return nil, fmt.Errorf("conntrack: event socket buffer: %w", err)
	}
	s := &subscription{conn: c, events: make(chan conntrack.Event, 256)}
	// One decoder keeps events in the kernel's order: a mapping's destroy
	// never overtakes its new.
	s.errs, err = c.Listen(s.events, 1, []netfilter.NetlinkGroup{netfilter.GroupCTNew, netfilter.GroupCTDestroy})
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("conntrack: listen for events: %w", err)
	}
	return s, nil
}

// close closes the socket. conntrack.Conn.Close waits for the decoder, which
// may be blocked handing over an event, so the channels are drained meanwhile.
func (s *subscription) close() {
	closed := make(chan struct{})
	go func() { s.conn.Close(); close(closed) }()
	for {
		select {
		case <-s.events:
		case <-s.errs:
		case <-closed:
			return
		}
	}
}

// startWatcher subscribes before returning, so that no mapping made after it
// returns goes unannounced.
func startWatcher(ns netns.NsHandle, pub events.Publisher) (*watcher, error) {
	s, err := subscribe(ns)
	if err != nil {
		return nil, err
	}
	w := &watcher{ns: ns, pub: pub, stop: make(chan struct{}), done: make(chan struct{}),
		live: map[uint32]Mapping{}, flushed: map[uint32]bool{}}
	go w.run(s)
	return w, nil
}

func (w *watcher) close() {
	close(w.stop)
	<-w.done
}

// Conntrack's garbage collector reaps expired entries late: with few entries
// it may sleep a minute between scans (GC_SCAN_INTERVAL_MAX in
// nf_conntrack_core.c), and a mapping would be announced gone long after the
// NAT stopped honouring it. But a dump evicts the expired entries it walks
// past, with a destroy event each. So the watcher dumps the table when the
// next mapping is due to expire; a mapping refreshed meanwhile only moves that
// time on. Conntrack reports time left in whole seconds, rounded down, hence
// the slack.
const sweepSlack = 250 * time.Millisecond

func (w *watcher) run(s *subscription) {
	defer close(w.done)
	sweep := time.NewTimer(time.Hour)
	sweep.Stop()
	defer sweep.Stop()
	var due time.Time // zero when no sweep is scheduled
	schedule := func(after time.Duration) {
		at := time.Now().Add(after + sweepSlack)
		if due.IsZero() || at.Before(due) {
			due = at
			sweep.Reset(time.Until(at))
		}
	}
	for {
		select {
		case <-w.stop:
			s.close()
			return
		case ev := <-s.events:
			if m, isNew := w.handle(ev); isNew {
				schedule(m.TimeLeft)
			}
		case <-sweep.C:
			due = time.Time{}
			ms, err := show(w.ns)
			if err != nil {
				schedule(time.Second)
				break
			}
			if len(ms) > 0 {
				schedule(slices.MinFunc(ms, func(a, b Mapping) int { return cmp.Compare(a.TimeLeft, b.TimeLeft) }).TimeLeft)
			}
		case <-s.errs:
			s.close()
			if s = w.resubscribe(); s == nil {
				return
			}
			schedule(0)
		}
	}
}

// resubscribe opens a new event socket, then reconciles the announced set with
// the table. It returns nil when the watcher is stopped meanwhile.
func (w *watcher) resubscribe() *subscription {
	for {
		s, err := subscribe(w.ns)
		if err == nil {
			if err = w.reconcile(); err == nil {
				return s
			}
			s.close()
		}
		select {
		case <-w.stop:
			return nil
		case <-time.After(time.Second):
		}
	}
}

func (w *watcher) reconcile() error {
	current, err := show(w.ns)
	if err != nil {
		return err
	}
	present := map[uint32]bool{}
	for _, m := range current {
		present[m.ID] = true
		w.announceNew(m)
	}
	w.mu.Lock()
	var gone []Mapping
	for id, m := range w.live {
		if !present[id] {
			gone = append(gone, m)
		}
	}
	w.mu.Unlock()
	for _, m := range gone {
		w.announceGone(m)
	}
	return nil
}

// handle announces a mapping's creation or end; it returns the mapping and
// true for a creation.
func (w *watcher) handle(ev conntrack.Event) (Mapping, bool) {
	if ev.Flow == nil {
		return Mapping{}, false
	}
	m, ok := mappingOf(ev.Flow, time.Now())
	if !ok {
		return Mapping{}, false
	}
	switch ev.Type {
	case conntrack.EventNew:
		w.announceNew(m)
		return m, true
	case conntrack.EventDestroy:
		w.announceGone(m)
	}
	return Mapping{}, false
}

func (w *watcher) announceNew(m Mapping) {
	w.mu.Lock()
	_, known := w.live[m.ID]
	w.live[m.ID] = m
	w.mu.Unlock()
	if known {
		return
	}
	explain := "Replies to the outside address and port go back to the inside host while the mapping lives."
	if m.Forwarded {
		explain = "A declared port forward: the NAT sends packets for its outside address and port to the inside host."
	} else if m.PortChanged() {
		explain = "The NAT changed the source port too: the peer sees a port the host never chose, and NAT-D detects the translation."
	}
	w.pub.Publish(events.Event{
		Kind:    events.NATMappingNew,
		Message: "new mapping " + m.String(),
		Explain: explain,
		Fields:  m.fields(),
	})
}

// announceGone publishes the end of a mapping: "flush" if Flush deleted it,
// "expired" otherwise (idle past its timeout, or a closed TCP connection
// whose last timer ran out).
//
// Only announced mappings are announced gone, once: after a resubscription,
// the reconciliation and a late destroy event may both report the same end.
func (w *watcher) announceGone(m Mapping) {
	w.mu.Lock()
	_, known := w.live[m.ID]
	delete(w.live, m.ID)
	flushed := w.flushed[m.ID]
	delete(w.flushed, m.ID)
	w.mu.Unlock()
	if !known {
		return
	}
	fields := m.fields()
	if m.Age > 0 {
		fields["lifetime"] = m.Age.Round(time.Second).String()
	}
	e := events.Event{Kind: events.NATMappingExpired, Fields: fields}
	if flushed {
		fields["reason"] = "flush"
		e.Message = "mapping dropped by flush: " + m.String()
		e.Explain = "The NAT forgot the mapping; packets from the peer to the old address and port now go nowhere."
	} else {
		fields["reason"] = "expired"
		e.Message = "mapping expired: " + m.String()
		e.Explain = "Idle longer than the NAT's timeout. The next packet from inside gets a new mapping, maybe a new port; NAT-T keepalives (RFC 3948 section 4) exist to prevent this."
	}
	w.pub.Publish(e)
}

// expectFlush marks mappings that Flush is about to delete, so their destroy
// events say why.
func (w *watcher) expectFlush(ids []uint32) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, id := range ids {
		w.flushed[id] = true
	}
}

// forgetFlush unmarks a mapping that Flush did not delete after all (it was
// gone already), so a later entry with a recycled id is not mislabelled.
func (w *watcher) forgetFlush(id uint32) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.flushed, id)
}

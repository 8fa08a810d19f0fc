package impair

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/vishvananda/netns"

	"github.com/ipseclab/ipseclab/events"
	"github.com/ipseclab/ipseclab/impair/netem"
)

// ErrClosed is returned by a closed link's methods.
var ErrClosed = errors.New("link closed")

// Endpoint is one end of a link: an interface of a node.
type Endpoint struct {
	Node  string         // the node, e.g. "laptop"
	Iface string         // the interface inside it, as the lab file names it, e.g. "eth0"
	Netns netns.NsHandle // the node's network namespace, where the TAP device is created
}

func (e Endpoint) String() string { return e.Node + ":" + e.Iface }

// Config describes a link to create.
type Config struct {
	// Name is the link's identity, e.g. "laptop:eth0--home-nat:eth0". It
	// seeds the PRNGs, derives the MAC addresses and names the link in events.
	Name string
	A, B Endpoint
	Seed uint64 // the lab's seed
	// Params are the lab file's settings, applied from the first frame;
	// Reset returns to them.
	Params netem.Params
	// Events is where the link publishes; its Link field is set to Name when
	// empty. A zero Publisher (nil Bus) discards events.
	Events events.Publisher
	// CountersEvery is how often LinkCounters are published, when they
	// changed. 0: only once, when the link closes.
	CountersEvery time.Duration
}

// Link is a point-to-point link between two nodes: a TAP device in each
// node's namespace, joined by the lab process through one Pipeline per
// direction. Any link can be impaired, taken down or captured at any time.
// Its methods are safe for concurrent use.
type Link struct {
	cfg  Config
	pub  events.Publisher
	ends [2]*tap
	dirs [2]*direction
	wg   sync.WaitGroup

	mu       sync.Mutex // serializes changes
	params   netem.Params
	captures []*Capture
	closed   bool
	stopPub  chan struct{}
	pubDone  chan struct{}
}

// New creates the link: the TAP devices A.Iface in A's namespace and B.Iface in
// B's, with MAC addresses derived from the link's name, up, with no address.
// The deployer then configures them like any interface (addresses, MTU,
// routes). Frames flow as soon as New returns.
func New(cfg Config) (_ *Link, err error) {
	if cfg.Name == "" {
		cfg.Name = cfg.A.String() + "--" + cfg.B.String()
	}
	if err := cfg.Params.Validate(); err != nil {
		return nil, fmt.Errorf("link %s: %w", cfg.Name, err)
	}
	l := &Link{cfg: cfg, pub: cfg.Events, params: cfg.Params, stopPub: make(chan struct{}), pubDone: make(chan struct{})}
	if l.pub.Link == "" {
		l.pub.Link = cfg.Name
	}
	defer func() {
		if err != nil {
			l.teardown((*tap).remove)
			l.discard()
		}
	}()
	for i, e := range []Endpoint{cfg.A, cfg.B} {
		t, err := openTAP(e.Netns, e.Iface, linkMAC(cfg.Name, e))
		if err != nil {
			return nil, fmt.Errorf("link %s, endpoint %s: %w", cfg.Name, e, err)
		}
		l.ends[i] = t
	}
	for _, d := range []netem.Dir{netem.AtoB, netem.BtoA} {
		src, dst := l.ends[0], l.ends[1]
		if d == netem.BtoA {
			src, dst = dst, src
		}
		dn, err := newDirection(d, src, dst, NewPipeline(cfg.Seed, cfg.Name, d))
		if err != nil {
			return nil, fmt.Errorf("link %s: %w", cfg.Name, err)
		}
		dn.onStop = l.readerStopped
		l.dirs[d] = dn
	}
	if err := l.applyLocked(cfg.Params, true); err != nil {
		return nil, fmt.Errorf("link %s: %w", cfg.Name, err)
	}
	for _, dn := range l.dirs {
		l.wg.Add(2)
		go dn.readLoop(&l.wg)
		go dn.timerLoop(&l.wg)
	}
	go l.publishCounters()
	if withoutDown(cfg.Params) != (netem.Params{}) {
		l.pub.Publish(events.Event{Kind: events.LinkImpair, Message: fmt.Sprintf("%s impaired: %s", cfg.Name, cfg.Params),
			Fields: map[string]any{"params": cfg.Params}})
	}
	if cfg.Params.Down {
		l.pub.Publish(events.Event{Kind: events.LinkDown, Message: cfg.Name + " is down (as declared)"})
	}
	return l, nil
}

// Name is the link's identity.
func (l *Link) Name() string { return l.cfg.Name }

// Endpoints returns the two ends; direction a-to-b runs from the first.
func (l *Link) Endpoints() (a, b Endpoint) { return l.cfg.A, l.cfg.B }

// Params returns the settings in force.
func (l *Link) Params() netem.Params {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.params
}

// Initial returns the settings the link was created with (the lab file's).
func (l *Link) Initial() netem.Params { return l.cfg.Params }

// Update merges a change into the settings (see Change for the rule) and
// applies the result from the next frame on. It returns the settings in
// force: an invalid result is refused and the link keeps what it had.
func (l *Link) Update(c netem.Change) (netem.Params, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	err := l.setLocked(c.Apply(l.params), c.String())
	return l.params, err
}

// Set replaces the settings as a whole.
func (l *Link) Set(p netem.Params) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.setLocked(p, "")
}

// Reset returns the link to the settings it was created with.
func (l *Link) Reset() error { return l.Set(l.cfg.Params) }

// SetDown takes the link down (every frame dropped, both carriers off) or
// brings it back up, keeping its other settings.
func (l *Link) SetDown(down bool) error {
	_, err := l.Update(netem.Change{Value: netem.Params{Down: down}, Link: netem.FieldDown})
	return err
}

func (l *Link) setLocked(p netem.Params, change string) error {
	if l.closed {
		return ErrClosed
	}
	if err := p.Validate(); err != nil {
		return err
	}
	old := l.params
	// The pipelines take p whatever happens; an error here is a device that
	// refused an offload or carrier change, and the link still behaves as p
	// says (frames are cut into packets in user space if need be).
	err := l.applyLocked(p, false)
	l.params = p
	if old.Down != p.Down {
		kind, state := events.LinkUp, "up"
		if p.Down {
			kind, state = events.LinkDown, "down"
		}
		l.pub.Publish(events.Event{Kind: kind, Message: fmt.Sprintf("%s is %s", l.cfg.Name, state)})
	}
	if withoutDown(old) != withoutDown(p) {
		msg := fmt.Sprintf("%s impairment now: %s", l.cfg.Name, p)
		if change != "" {
			msg = fmt.Sprintf("%s impairment changed (%s), now: %s", l.cfg.Name, change, p)
		}
		l.pub.Publish(events.Event{Kind: events.LinkImpair, Message: msg, Fields: map[string]any{"params": p, "change": change}})
	}
	return err
}

func withoutDown(p netem.Params) netem.Params {
	p.Down = false
	return p
}

// applyLocked puts p into the pipelines and devices. Going down, frames stop
// before the carriers drop; coming up, carriers return before frames flow.
func (l *Link) applyLocked(p netem.Params, initial bool) error {
	wasDown := l.params.Down && !initial
	apply := func(dn *direction) error { return dn.apply(p.Dir(dn.d), p.MTU, p.Down) }
	switch {
	case p.Down && !wasDown:
		return errors.Join(l.forEachDir(apply), l.setCarriers(false))
	case !p.Down && wasDown:
		return errors.Join(l.setCarriers(true), l.forEachDir(apply))
	default:
		return l.forEachDir(apply)
	}
}

func (l *Link) forEachDir(fn func(*direction) error) error {
	var errs []error
	for _, dn := range l.dirs {
		dn.mu.Lock()
		errs = append(errs, fn(dn))
		dn.mu.Unlock()
	}
	return errors.Join(errs...)
}

func (l *Link) setCarriers(up bool) error {
	return errors.Join(l.ends[0].setCarrier(up), l.ends[1].setCarrier(up))
}

// Counters returns each direction's counters.
func (l *Link) Counters() (aToB, bToA Counters) {
	c := [2]Counters{}
	for i, dn := range l.dirs {
		dn.mu.Lock()
		c[i] = dn.pipe.Counters()
		dn.mu.Unlock()
	}
	return c[0], c[1]
}

func (l *Link) countersEvent() events.Event {
	a, b := l.Counters()
	return events.Event{Kind: events.LinkCounters,
		Message: fmt.Sprintf("%s: %s %d sent %d delivered %d lost; %s %d sent %d delivered %d lost",
			l.cfg.Name, netem.AtoB, a.Sent, a.Delivered, a.Lost, netem.BtoA, b.Sent, b.Delivered, b.Lost),
		Fields: map[string]any{netem.AtoB.String(): a, netem.BtoA.String(): b}}
}

func (l *Link) publishCounters() {
	defer close(l.pubDone)
	if l.cfg.CountersEvery <= 0 {
		<-l.stopPub
		return
	}
	t := time.NewTicker(l.cfg.CountersEvery)
	defer t.Stop()
	var last [2]Counters
	for {
		select {
		case <-l.stopPub:
			return
		case <-t.C:
			a, b := l.Counters()
			if [2]Counters{a, b} != last {
				last = [2]Counters{a, b}
				l.pub.Publish(l.countersEvent())
			}
		}
	}
}

// readerStopped is told when a direction's device failed under it, e.g.
// because its namespace was deleted while the link ran.
func (l *Link) readerStopped(err error) {
	l.pub.Publish(events.Event{Kind: events.LinkDown, Level: events.Error,
		Message: fmt.Sprintf("%s stopped forwarding: %v", l.cfg.Name, err)})
}

// attach adds a capture to the directions it watches; they stop taking
// super-frames.
func (l *Link) attach(c *Capture) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	l.captures = append(l.captures, c)
	var errs []error
	for _, d := range c.dirs {
		dn := l.dirs[d]
		dn.mu.Lock()
		dn.captures = append(dn.captures, c)
		errs = append(errs, dn.setReal(true))
		dn.mu.Unlock()
	}
	return errors.Join(errs...)
}

// detach removes a capture; offloads come back when nothing needs real packets.
func (l *Link) detach(c *Capture) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.captures = slices.DeleteFunc(l.captures, func(x *Capture) bool { return x == c })
	for _, d := range c.dirs {
		dn := l.dirs[d]
		dn.mu.Lock()
		dn.captures = slices.DeleteFunc(dn.captures, func(x *Capture) bool { return x == c })
		if !l.closed {
			n := l.params.Dir(d)
			_ = dn.setReal(perPacket(n) || l.params.MTU > 0 || len(dn.captures) > 0)
		}
		dn.mu.Unlock()
	}
}

// Close stops the link: captures end, frames still held are dropped, the TAP
// devices are removed with everything the deployer put on them, and the final
// counters are published.
func (l *Link) Close() error { return l.stop((*tap).remove) }

// Release stops the link as Close does but leaves its TAP devices in their
// namespaces, for a deployment that deletes the namespaces next: they take
// every device with them in one batch, far faster than removing each.
func (l *Link) Release() error { return l.stop((*tap).release) }

func (l *Link) stop(end func(*tap) error) error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true // from here on no change and no new capture
	caps := slices.Clone(l.captures)
	l.mu.Unlock()
	for _, c := range caps {
		c.stop()
	}
	err := l.teardown(end)
	<-l.pubDone
	l.pub.Publish(l.countersEvent())
	l.discard()
	return err
}

// CloseAll closes links concurrently. Removing a TAP device waits for the
// kernel's RCU grace periods (tens of milliseconds on a small VM); closed
// together, the waits overlap, and a lab's links go in a few milliseconds each.
func CloseAll(links ...*Link) error {
	errs := make([]error, len(links))
	var wg sync.WaitGroup
	for i, l := range links {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = l.Close()
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// teardown stops the goroutines and ends the devices' files.
func (l *Link) teardown(end func(*tap) error) error {
	for _, dn := range l.dirs {
		if dn != nil {
			dn.stop()
		}
	}
	var errs []error
	for _, t := range l.ends {
		if t != nil {
			errs = append(errs, end(t))
		}
	}
	l.wg.Wait()
	close(l.stopPub)
	return errors.Join(errs...)
}

// discard releases the frames still held once nothing forwards any more.
func (l *Link) discard() {
	for _, dn := range l.dirs {
		if dn != nil {
			dn.discard()
		}
	}
}

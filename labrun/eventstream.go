package labrun

import (
	"bytes"
	"encoding/json"
	"io"
	"sync"
	"time"

	"github.com/ipseclab/ipseclab/events"
)

// maxEventBatch bounds the JSON lines WriteEventLines gathers into one
// write, and eventBatchDelay how long it waits for more after the first.
const (
	maxEventBatch   = 64 << 10
	eventBatchDelay = time.Millisecond
)

// WriteEventLines writes the events of sub, a subscription to bus, to w as
// JSON lines (events.Event.MarshalJSONLine), until the subscription ends,
// stop is closed or a write fails. It gathers the events of a millisecond
// into one write, followed by one flush (when flush is not nil): a
// negotiation publishes some forty events within a millisecond, and writing
// them one by one cost the lab process a system call and a wakeup of the
// reader each.
func WriteEventLines(w io.Writer, bus *events.Bus, sub *events.Subscription, stop <-chan struct{}, flush func()) error {
	var buf bytes.Buffer
	c := sub.C()
	timer := time.NewTimer(eventBatchDelay)
	defer timer.Stop()
	for c != nil {
		select {
		case e, ok := <-c:
			if !ok {
				return nil
			}
			buf.Write(eventLines.line(bus, &e))
		case <-stop:
			return nil
		}
		timer.Reset(eventBatchDelay)
	gather:
		for buf.Len() < maxEventBatch {
			select {
			case e, ok := <-c:
				if !ok {
					c = nil // write what was gathered, then return
					break gather
				}
				buf.Write(eventLines.line(bus, &e))
			case <-timer.C:
				break gather
			case <-stop:
				return nil
			}
		}
		if _, err := w.Write(buf.Bytes()); err != nil {
			return err
		}
		buf.Reset()
		if flush != nil {
			flush()
		}
	}
	return nil
}

// eventLines keeps the JSON lines of the newest events: the lab process
// writes every event twice, to its log and to the stream `run` reads, and
// encoding it took a quarter of that process's time in a script of
// negotiations. The second writer finds the line the first one encoded.
var eventLines lineCache

// lineCache is a small table of encoded events by bus and sequence number;
// a slot holds the last event that hashed to it.
type lineCache struct {
	mu    sync.Mutex
	slots [1024]cachedLine
}

var encodeBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

type cachedLine struct {
	bus  *events.Bus
	seq  uint64
	line []byte
}

// line returns e's JSON line, encoded now or taken from the cache; nil if it
// cannot be encoded. The caller must not modify it.
func (c *lineCache) line(bus *events.Bus, e *events.Event) []byte {
	s := &c.slots[e.Seq%uint64(len(c.slots))]
	c.mu.Lock()
	if s.bus == bus && s.seq == e.Seq {
		line := s.line
		c.mu.Unlock()
		return line
	}
	c.mu.Unlock()
	// Encoded into a reused buffer, each line costs one allocation of its
	// own size (MarshalJSONLine's costs two, and a buffer grown from nothing
	// five or six).
	buf := encodeBuffers.Get().(*bytes.Buffer)
	defer encodeBuffers.Put(buf)
	buf.Reset()
	if err := json.NewEncoder(buf).Encode(e); err != nil {
		return nil
	}
	line := bytes.Clone(buf.Bytes())
	c.mu.Lock()
	*s = cachedLine{bus, e.Seq, line}
	c.mu.Unlock()
	return line
}

package web

import (
	"sort"
	"strconv"
	"sync"
)

// hub keeps the event history of one source (a live lab or a recorded run)
// as the JSON lines the stream sends, and wakes the streams when more
// arrive. Every event is encoded once, however many browsers watch.
type hub struct {
	mu      sync.Mutex
	entries []entry
	bytes   int           // the lines' total size
	ended   bool          // the source has nothing more
	wake    chan struct{} // closed and replaced when an event arrives or the source ends
	maxLen  int           // events kept at most
	maxSize int           // bytes kept at most
}

// entry is one event: its sequence number, and its frame on the stream
// ("id: SEQ\nevent: ev\ndata: LINE\n\n"), built once for every browser;
// line is the JSON line within it.
type entry struct {
	seq   uint64
	frame []byte
	line  []byte
}

// newEntry frames an event's JSON line (without its newline).
func newEntry(seq uint64, line []byte) entry {
	f := make([]byte, 0, len(line)+40)
	f = append(f, "id: "...)
	f = strconv.AppendUint(f, seq, 10)
	f = append(f, "\nevent: ev\ndata: "...)
	start := len(f)
	f = append(f, line...)
	f = append(f, "\n\n"...)
	return entry{seq: seq, frame: f, line: f[start : start+len(line) : start+len(line)]}
}

// Bounds of the history a server keeps: a class's lab left up for a day
// must not grow without bound. When either is reached, the oldest half
// goes; a browser that connects later starts from what is kept.
const (
	defaultMaxEvents = 1 << 19
	defaultMaxBytes  = 128 << 20
)

func newHub() *hub {
	return &hub{wake: make(chan struct{}), maxLen: defaultMaxEvents, maxSize: defaultMaxBytes}
}

// add appends an event. Events arrive in increasing sequence order; one
// whose number is not above the last (a reconnected lab stream repeating
// itself) is ignored.
func (h *hub) add(seq uint64, line []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.ended {
		return
	}
	if n := len(h.entries); n > 0 && seq <= h.entries[n-1].seq {
		return
	}
	if len(h.entries) >= h.maxLen || h.bytes+len(line) > h.maxSize {
		h.trim()
	}
	h.entries = append(h.entries, newEntry(seq, line))
	h.bytes += len(line)
	close(h.wake)
	h.wake = make(chan struct{})
}

func (h *hub) trim() {
	drop := len(h.entries) / 2
	for _, e := range h.entries[:drop] {
		h.bytes -= len(e.line)
	}
	// A new array: streams may be reading the old one.
	kept := make([]entry, len(h.entries)-drop, len(h.entries))
	copy(kept, h.entries[drop:])
	h.entries = kept
}

// end marks the source finished.
func (h *hub) end() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.ended {
		h.ended = true
		close(h.wake)
		h.wake = make(chan struct{})
	}
}

// after returns the kept events with a sequence number above seq (the
// slice is shared: read it, do not change it), whether the source has
// ended, and a channel closed when there is more.
func (h *hub) after(seq uint64) ([]entry, bool, <-chan struct{}) {
	h.mu.Lock()
	defer h.mu.Unlock()
	i := sort.Search(len(h.entries), func(i int) bool { return h.entries[i].seq > seq })
	return h.entries[i:len(h.entries):len(h.entries)], h.ended, h.wake
}

// get returns the line of event seq, if it is kept.
func (h *hub) get(seq uint64) ([]byte, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	i := sort.Search(len(h.entries), func(i int) bool { return h.entries[i].seq >= seq })
	if i < len(h.entries) && h.entries[i].seq == seq {
		return h.entries[i].line, true
	}
	return nil, false
}

// count is how many events are kept.
func (h *hub) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.entries)
}

// each calls fn for every kept event, oldest first, until it returns false.
func (h *hub) each(fn func(entry) bool) {
	h.mu.Lock()
	es := h.entries[:len(h.entries):len(h.entries)]
	h.mu.Unlock()
	for _, e := range es {
		if !fn(e) {
			return
		}
	}
}

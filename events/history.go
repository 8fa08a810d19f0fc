package events

// history keeps the most recent events for late readers, bounded in events
// and in estimated bytes. It grows and shrinks by chunks of a fixed size:
// a slice grown by doubling copied the whole history each time, and the
// fresh memory each copy needed cost page faults and zeroing that a script
// of negotiations paid on every other publish, under the bus's lock.
type history struct {
	chunks []*histChunk // oldest first; the last one fills
	head   int          // events of chunks[0] before head are gone
	n      int          // events kept
	bytes  int          // their footprints' sum
	spare  *histChunk   // an emptied chunk, for the next one needed
}

const histChunkLen = 512

type histChunk struct {
	events [histChunkLen]Event
	sizes  [histChunkLen]int32
	n      int // events[:n] are filled
}

func (h *history) len() int { return h.n }

func (h *history) add(e Event, size int) {
	last := (*histChunk)(nil)
	if k := len(h.chunks); k > 0 {
		last = h.chunks[k-1]
	}
	if last == nil || last.n == histChunkLen {
		last = h.spare
		h.spare = nil
		if last == nil {
			last = new(histChunk)
		}
		h.chunks = append(h.chunks, last)
	}
	last.events[last.n] = e
	last.sizes[last.n] = int32(size)
	last.n++
	h.n++
	h.bytes += size
}

// dropOldest forgets the oldest event.
func (h *history) dropOldest() {
	c := h.chunks[0]
	c.events[h.head] = Event{} // for the garbage collector
	h.bytes -= int(c.sizes[h.head])
	h.head++
	h.n--
	if h.head < c.n {
		return
	}
	// The oldest chunk is used up: the last one, if it is also the only
	// one, starts again from its beginning.
	c.n, h.head = 0, 0
	if len(h.chunks) == 1 {
		return
	}
	h.chunks[0] = nil
	h.chunks = h.chunks[1:]
	h.spare = c
}

// each calls f for every kept event, oldest first, until f returns false.
func (h *history) each(f func(*Event) bool) {
	for i, c := range h.chunks {
		from := 0
		if i == 0 {
			from = h.head
		}
		for j := from; j < c.n; j++ {
			if !f(&c.events[j]) {
				return
			}
		}
	}
}

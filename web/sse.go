package web

import (
	"bufio"
	"net/http"
	"strconv"
	"time"
)

// flushInterval is the least time between two writes to one stream: a
// negotiation publishes some forty events within a millisecond, and a
// browser animating them gains nothing from forty writes. Each stream
// gathers what arrived meanwhile into one write, so that fifty browsers
// watching cost the server fifty writes per interval at most, whatever the
// lab's event rate.
const flushInterval = 20 * time.Millisecond

// serveEvents streams the history after Last-Event-ID (or ?since=SEQ;
// from the beginning without either), then `live`, then each event as it
// arrives, and `end` once the source has nothing more. The stream stays
// open after `end` (with its pings), so that a browser's EventSource does
// not reconnect in a loop; the page closes it.
func (s *Server) serveEvents(w http.ResponseWriter, r *http.Request) {
	var since uint64
	if v := r.Header.Get("Last-Event-ID"); v != "" {
		since, _ = strconv.ParseUint(v, 10, 64)
	} else if v := r.URL.Query().Get("since"); v != "" {
		since, _ = strconv.ParseUint(v, 10, 64)
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusOK)
		return
	}
	rc := http.NewResponseController(w)
	bw := bufio.NewWriterSize(w, 32<<10)
	flush := func() bool {
		if bw.Flush() != nil {
			return false
		}
		return rc.Flush() == nil
	}
	// The browser's reconnection delay after a dropped connection.
	bw.WriteString("retry: 2000\n\n")

	cursor := since
	write := func(es []entry) {
		for _, e := range es {
			bw.WriteString("id: ")
			bw.Write(strconv.AppendUint(nil, e.seq, 10))
			bw.WriteString("\nevent: ev\ndata: ")
			bw.Write(e.line)
			bw.WriteString("\n\n")
			cursor = e.seq
		}
	}
	es, ended, wake := s.hub.after(cursor)
	write(es)
	bw.WriteString("event: live\ndata: {}\n\n")
	endSent := false
	if ended {
		bw.WriteString("event: end\ndata: {}\n\n")
		endSent = true
	}
	if !flush() {
		return
	}
	ping := time.NewTicker(s.cfg.PingInterval)
	defer ping.Stop()
	last := time.Now()
	for {
		if endSent {
			wake = nil // nothing more will come
		}
		select {
		case <-r.Context().Done():
			return
		case <-ping.C:
			bw.WriteString(": ping\n\n")
			if !flush() {
				return
			}
			continue
		case <-wake:
		}
		// Gather what arrives within the interval into one write.
		if d := flushInterval - time.Since(last); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-r.Context().Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
		es, ended, wake = s.hub.after(cursor)
		write(es)
		if ended && !endSent {
			bw.WriteString("event: end\ndata: {}\n\n")
			endSent = true
		}
		if !flush() {
			return
		}
		last = time.Now()
	}
}

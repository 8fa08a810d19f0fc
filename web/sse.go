package web

import (
	"bufio"
	"net"
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

// writeTimeout drops a browser that takes no data for this long (a
// laptop closed without closing its connection), rather than keep its
// goroutine.
const writeTimeout = 30 * time.Second

var (
	liveFrame = []byte("event: live\ndata: {}\n\n")
	endFrame  = []byte("event: end\ndata: {}\n\n")
	pingFrame = []byte(": ping\n\n")
)

// sseHeader is the response's head on a hijacked connection: the stream
// ends when the connection does (HTTP/1.1 without a length or chunks),
// which EventSource reads as it reads any stream.
const sseHeader = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\nX-Accel-Buffering: no\r\n" +
	"X-Content-Type-Options: nosniff\r\nReferrer-Policy: no-referrer\r\nConnection: close\r\n\r\n" +
	"retry: 2000\n\n"

// serveEvents streams the history after Last-Event-ID (or ?since=SEQ;
// from the beginning without either), then `live`, then each event as it
// arrives, and `end` once the source has nothing more. The stream stays
// open after `end` (with its pings), so that a browser's EventSource does
// not reconnect in a loop; the page closes it.
//
// Every event's frame is built once (hub): a stream writes the frames of
// what it has not sent yet straight from the shared history to its
// connection, in one writev, with no copy per browser in between.
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
	var out frameWriter
	if hj, ok := w.(http.Hijacker); ok && r.ProtoMajor == 1 {
		conn, _, err := hj.Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		c := &connWriter{conn: conn, gone: make(chan struct{})}
		// The browser sends nothing more: a read returns when it goes.
		go func() {
			var b [1]byte
			_, _ = conn.Read(b[:])
			close(c.gone)
		}()
		if !c.write(net.Buffers{[]byte(sseHeader)}) {
			return
		}
		out = c
	} else {
		h.Set("Connection", "close")
		rw := &responseWriter{w: w, rc: http.NewResponseController(w), bw: bufio.NewWriterSize(w, 32<<10), gone: r.Context().Done()}
		rw.bw.WriteString("retry: 2000\n\n")
		out = rw
	}
	s.stream(r, out, since)
}

// frameWriter is where a stream's frames go.
type frameWriter interface {
	write(net.Buffers) bool // false: the browser is gone
	done() <-chan struct{}  // closed when the browser goes
}

// connWriter writes frames to a hijacked connection.
type connWriter struct {
	conn net.Conn
	gone chan struct{}
}

func (c *connWriter) write(b net.Buffers) bool {
	_ = c.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	_, err := b.WriteTo(c.conn)
	return err == nil
}

func (c *connWriter) done() <-chan struct{} { return c.gone }

// responseWriter writes frames through the ResponseWriter (HTTP/2, or a
// recorder in tests).
type responseWriter struct {
	w    http.ResponseWriter
	rc   *http.ResponseController
	bw   *bufio.Writer
	gone <-chan struct{}
}

func (r *responseWriter) write(b net.Buffers) bool {
	for _, f := range b {
		r.bw.Write(f)
	}
	if r.bw.Flush() != nil {
		return false
	}
	return r.rc.Flush() == nil
}

func (r *responseWriter) done() <-chan struct{} { return r.gone }

// stream sends the frames after since, then follows the history.
func (s *Server) stream(r *http.Request, out frameWriter, since uint64) {
	cursor := since
	var bufs net.Buffers
	frames := func(es []entry) {
		for _, e := range es {
			bufs = append(bufs, e.frame)
			cursor = e.seq
		}
	}
	es, ended, wake := s.hub.after(cursor)
	frames(es)
	bufs = append(bufs, liveFrame)
	endSent := ended
	if ended {
		bufs = append(bufs, endFrame)
	}
	if !out.write(bufs) {
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
		case <-out.done():
			return
		case <-ping.C:
			if !out.write(net.Buffers{pingFrame}) {
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
			case <-out.done():
				t.Stop()
				return
			case <-t.C:
			}
		}
		bufs = bufs[:0]
		es, ended, wake = s.hub.after(cursor)
		frames(es)
		if ended && !endSent {
			bufs = append(bufs, endFrame)
			endSent = true
		}
		if len(bufs) > 0 && !out.write(bufs) {
			return
		}
		last = time.Now()
	}
}

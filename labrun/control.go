package labrun

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/ipseclab/ipseclab/events"
)

// The control socket speaks HTTP/1.1 with JSON bodies over a unix socket under
// /run/ipseclab/<lab>/. Event streams are JSON lines.

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// writeError sends {"error": "..."} with a status code.
func writeError(w http.ResponseWriter, code int, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
}

func (r *Runtime) handleInfo(w http.ResponseWriter, _ *http.Request) {
	info, err := Inspect(r.Lab)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	info.PID = r.state.PID
	info.Status = r.state.Status
	info.Seed = r.Seed
	info.Started = r.state.Started
	info.Links = r.Links()
	writeJSON(w, info)
}

func (r *Runtime) handleEvents(w http.ResponseWriter, req *http.Request) { serveEvents(r.Bus, w, req) }

// serveEvents streams events as JSON lines: first the kept history after
// ?since=SEQ (default: all kept), then new ones as they happen; with
// ?history=none, only new ones.
func serveEvents(bus *events.Bus, w http.ResponseWriter, req *http.Request) {
	since, _ := strconv.ParseUint(req.URL.Query().Get("since"), 10, 64)
	flusher, _ := w.(http.Flusher)
	w.Header().Set("Content-Type", "application/x-ndjson")
	filter := func(e *events.Event) bool { return e.Seq > since }
	var sub *events.Subscription
	if req.URL.Query().Get("history") == "none" {
		sub = bus.Subscribe(filter)
	} else {
		sub = bus.SubscribeWithHistory(filter)
	}
	defer sub.Close()
	flush := func() {}
	if flusher != nil {
		flush = flusher.Flush
	}
	flush()
	_ = WriteEventLines(w, bus, sub, req.Context().Done(), flush)
}

// Client talks to a lab process.
type Client struct {
	Socket string
}

// DialLab returns a client for a deployed lab, or an error saying the lab is
// not running.
func DialLab(lab string) (*Client, error) {
	st, err := ReadState(lab)
	if err != nil {
		return nil, err
	}
	if !st.LabProcessAlive() {
		return nil, fmt.Errorf("the process of lab %s (pid %d) is not running; `ipseclab destroy --name %s` cleans up", lab, st.PID, lab)
	}
	return &Client{Socket: st.Socket}, nil
}

func (c *Client) http(timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", c.Socket)
		}},
	}
}

// Do sends a request with a JSON body (in may be nil) and decodes the JSON
// answer into out (may be nil). An {"error": ...} answer becomes the error.
func (c *Client) Do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://lab"+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http(0).Do(req)
	if err != nil {
		return fmt.Errorf("lab process: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		var e struct{ Error string }
		if json.NewDecoder(resp.Body).Decode(&e) == nil && e.Error != "" {
			return errors.New(e.Error)
		}
		return fmt.Errorf("lab process answered %s", resp.Status)
	}
	if out == nil {
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// Stream sends a request and returns the response body for the caller to read
// (pcap captures, event streams).
func (c *Client) Stream(ctx context.Context, method, path string, in any) (io.ReadCloser, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://lab"+path, body)
	if err != nil {
		return nil, err
	}
	resp, err := c.http(0).Do(req)
	if err != nil {
		return nil, fmt.Errorf("lab process: %w", err)
	}
	if resp.StatusCode >= 300 {
		defer resp.Body.Close()
		var e struct{ Error string }
		if json.NewDecoder(resp.Body).Decode(&e) == nil && e.Error != "" {
			return nil, errors.New(e.Error)
		}
		return nil, fmt.Errorf("lab process answered %s", resp.Status)
	}
	return resp.Body, nil
}

// Info returns the lab's inspection data from the lab process.
func (c *Client) Info(ctx context.Context) (*LabInfo, error) {
	var info LabInfo
	return &info, c.Do(ctx, "GET", "/v1/info", nil, &info)
}

// Events streams events after seq to fn until ctx ends, the lab shuts down, or
// fn returns false. caughtUp, when not nil, is called whenever every event
// that has arrived has gone to fn and the next has still to come: where a
// reader that buffers its output flushes it, so that what it shows is never
// behind the lab and yet costs one write per burst of events, not one per
// line (a script of negotiations brings some forty events a pair).
func (c *Client) Events(ctx context.Context, since uint64, fn func(events.Event) bool, caughtUp func()) error {
	return c.events(ctx, "/v1/events?since="+strconv.FormatUint(since, 10), fn, caughtUp)
}

// Follow streams the events that happen from now on, as Events does.
func (c *Client) Follow(ctx context.Context, fn func(events.Event) bool, caughtUp func()) error {
	return c.events(ctx, "/v1/events?history=none", fn, caughtUp)
}

// maxEventLine bounds one event's JSON line from the lab process.
const maxEventLine = 16 << 20

func (c *Client) events(ctx context.Context, path string, fn func(events.Event) bool, caughtUp func()) error {
	body, err := c.Stream(ctx, "GET", path, nil)
	if err != nil {
		return err
	}
	defer body.Close()
	r := newLineReader(body)
	for {
		line, err := r.next()
		if err != nil {
			if ctx.Err() != nil || err == io.EOF {
				return nil
			}
			return err
		}
		var e events.Event
		if err := decodeEventLine(line, &e); err != nil {
			return fmt.Errorf("bad event from lab process: %w", err)
		}
		if !fn(e) {
			return nil
		}
		if caughtUp != nil && !r.lineReady() {
			caughtUp()
		}
	}
}

// lineReader reads newline-terminated lines and tells whether the next one
// is already at hand.
type lineReader struct {
	br   *bufio.Reader
	long []byte // a line longer than br's buffer, gathered in pieces
}

func newLineReader(r io.Reader) *lineReader {
	return &lineReader{br: bufio.NewReaderSize(r, 1<<20)}
}

// next returns the next line without its newline; it is valid until the
// next call.
func (l *lineReader) next() ([]byte, error) {
	l.long = l.long[:0]
	for {
		piece, err := l.br.ReadSlice('\n')
		switch {
		case err == nil && len(l.long) == 0:
			return piece[:len(piece)-1], nil
		case err == nil:
			l.long = append(l.long, piece[:len(piece)-1]...)
			return l.long, nil
		case errors.Is(err, bufio.ErrBufferFull):
			l.long = append(l.long, piece...)
			if len(l.long) > maxEventLine {
				return nil, fmt.Errorf("an event line from the lab process is longer than %d bytes", maxEventLine)
			}
		default:
			// At io.EOF a line without its newline is one the lab process
			// died while writing: the stream ends before it.
			return nil, err
		}
	}
}

// lineReady reports whether a whole line is already buffered, so that the
// next call to next will not wait.
func (l *lineReader) lineReady() bool {
	n := l.br.Buffered()
	if n == 0 {
		return false
	}
	b, _ := l.br.Peek(n)
	return bytes.IndexByte(b, '\n') >= 0
}

// Shutdown asks the lab process to destroy the lab and exit.
func (c *Client) Shutdown(timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return c.Do(ctx, "POST", "/v1/shutdown", nil, nil)
}

// decodeBody reads a JSON request body strictly.
func decodeBody(req *http.Request, v any) error {
	dec := json.NewDecoder(req.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("bad request: %w", err)
	}
	return nil
}

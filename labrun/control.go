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
// fn returns false.
func (c *Client) Events(ctx context.Context, since uint64, fn func(events.Event) bool) error {
	return c.events(ctx, "/v1/events?since="+strconv.FormatUint(since, 10), fn)
}

// Follow streams the events that happen from now on.
func (c *Client) Follow(ctx context.Context, fn func(events.Event) bool) error {
	return c.events(ctx, "/v1/events?history=none", fn)
}

func (c *Client) events(ctx context.Context, path string, fn func(events.Event) bool) error {
	body, err := c.Stream(ctx, "GET", path, nil)
	if err != nil {
		return err
	}
	defer body.Close()
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var e events.Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return fmt.Errorf("bad event from lab process: %w", err)
		}
		if !fn(e) {
			return nil
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	return sc.Err()
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

// Package web serves the lab's live view to browsers: the page (embedded
// assets), the lab's topology, its event stream over Server-Sent Events
// with the history first, the state of its NAT boxes and SAs, and each
// IKE message or ESP packet decoded layer by layer, decrypted.
//
// The server is read-only: it answers GET and HEAD of its own resources
// and nothing else, and it holds no handle that could change the lab.
// Its events come from a source the caller feeds (Add, End): a live lab's
// stream, or a recorded run read from a file.
package web

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	gojson "github.com/goccy/go-json"

	"github.com/ipseclab/ipseclab/events"
	"github.com/ipseclab/ipseclab/topology"
)

// Mode says where the events come from.
type Mode string

const (
	Live   Mode = "live"   // a running lab
	Replay Mode = "replay" // a run recorded with `run --json`
)

// StateFunc returns the running lab's state for /api/state: a value that
// marshals to {"nat": {NODE: [mapping...]}, "sas": {NODE: [sa...]}}.
type StateFunc func(ctx context.Context) (any, error)

// Config is what a Server serves.
type Config struct {
	Mode Mode
	// Lab is the lab's topology; nil when it is not known (a recorded run
	// whose lab file cannot be found): /api/lab then names the nodes the
	// events name.
	Lab *topology.Lab
	// Name names the lab when Lab is nil or was renamed (run --name).
	Name string
	// State answers /api/state; nil answers {}.
	State StateFunc
	// PingInterval is the time between keep-alive comments on an idle
	// stream (default 15 s).
	PingInterval time.Duration
}

// Server is the web view of one lab. Its zero value is not usable; use
// NewServer.
type Server struct {
	cfg    Config
	hub    *hub
	assets fs.FS
	index  []byte
	state  stateCache
}

// NewServer returns a server with an empty history.
func NewServer(cfg Config) *Server {
	if cfg.PingInterval <= 0 {
		cfg.PingInterval = 15 * time.Second
	}
	if cfg.Name == "" && cfg.Lab != nil {
		cfg.Name = cfg.Lab.Name
	}
	sub, err := fs.Sub(Assets, "assets")
	if err != nil {
		panic(err) // the embedded directory is there by construction
	}
	index, _ := fs.ReadFile(sub, "index.html")
	return &Server{cfg: cfg, hub: newHub(), assets: sub, index: index}
}

// Add appends an event to the history and sends it to every stream.
// Events must come in increasing sequence order; one that does not is
// ignored.
func (s *Server) Add(e *events.Event) error {
	line, err := gojson.Marshal(e)
	if err != nil {
		return err
	}
	s.hub.add(e.Seq, line)
	return nil
}

// AddLine is Add for an event already encoded as its JSON line (a recorded
// run's line, as read).
func (s *Server) AddLine(seq uint64, line []byte) {
	s.hub.add(seq, bytes.TrimRight(line, "\r\n"))
}

// End says the source has nothing more: every stream sends `end` once it
// has sent the history.
func (s *Server) End() { s.hub.end() }

// Events is how many events the server keeps.
func (s *Server) Events() int { return s.hub.count() }

// ServeHTTP routes the server's resources.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	route, ok := s.route(r.URL.Path)
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Errorf("no such resource: %s", r.URL.Path))
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.Set("Allow", "GET, HEAD")
		writeError(w, http.StatusMethodNotAllowed, fmt.Errorf("%s is not allowed: this view is read-only (GET and HEAD only)", r.Method))
		return
	}
	route(w, r)
}

// route finds the handler of a path.
func (s *Server) route(path string) (http.HandlerFunc, bool) {
	switch path {
	case "/", "/index.html":
		return s.serveIndex, true
	case "/api/lab":
		return s.serveLab, true
	case "/api/events":
		return s.serveEvents, true
	case "/api/state":
		return s.serveState, true
	case "/api/replay":
		if s.cfg.Mode == Replay {
			return s.serveReplay, true
		}
		return nil, false
	}
	if rest, ok := strings.CutPrefix(path, "/api/packet/"); ok {
		if _, err := strconv.ParseUint(rest, 10, 64); err == nil {
			return s.servePacket, true
		}
		return nil, false
	}
	if rest, ok := strings.CutPrefix(path, "/assets/"); ok && fs.ValidPath(rest) {
		if b, err := fs.ReadFile(s.assets, rest); err == nil {
			return func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Cache-Control", "no-cache")
				http.ServeContent(w, r, rest, time.Time{}, bytes.NewReader(b))
			}, true
		}
	}
	return nil, false
}

func (s *Server) serveIndex(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	http.ServeContent(w, r, "index.html", time.Time{}, bytes.NewReader(s.index))
}

func (s *Server) serveLab(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, s.LabView())
}

func (s *Server) serveState(w http.ResponseWriter, r *http.Request) {
	if s.cfg.State == nil || s.cfg.Mode == Replay {
		writeJSON(w, struct{}{})
		return
	}
	b, err := s.state.get(r.Context(), s.cfg.State)
	if err != nil {
		writeError(w, http.StatusBadGateway, fmt.Errorf("the lab's state: %w", err))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(b)
}

// stateTTL is how long an answer of the lab's state serves every browser:
// a class of fifty polling it costs the lab process one question a
// second, not fifty.
const stateTTL = time.Second

// stateCache shares the lab's state among the browsers: one question to
// the lab at a time, its answer kept for stateTTL.
type stateCache struct {
	mu       sync.Mutex
	answer   []byte
	err      error
	at       time.Time
	inflight chan struct{} // closed when the question being asked is answered
}

func (c *stateCache) get(ctx context.Context, ask StateFunc) ([]byte, error) {
	for {
		c.mu.Lock()
		if !c.at.IsZero() && time.Since(c.at) < stateTTL {
			b, err := c.answer, c.err
			c.mu.Unlock()
			return b, err
		}
		if wait := c.inflight; wait != nil {
			c.mu.Unlock()
			select {
			case <-wait:
				continue
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		done := make(chan struct{})
		c.inflight = done
		c.mu.Unlock()

		// Asked on behalf of every browser: one that goes away does not
		// cancel the question for the others.
		qctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		st, err := ask(qctx)
		cancel()
		var b []byte
		if err == nil {
			if b, err = json.Marshal(st); err == nil {
				b = append(b, '\n')
			}
		}
		c.mu.Lock()
		c.answer, c.err, c.at, c.inflight = b, err, time.Now(), nil
		c.mu.Unlock()
		close(done)
		return b, err
	}
}

func (s *Server) serveReplay(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, map[string]int{"events": s.hub.count()})
}

func (s *Server) servePacket(w http.ResponseWriter, r *http.Request) {
	seq, _ := strconv.ParseUint(strings.TrimPrefix(r.URL.Path, "/api/packet/"), 10, 64)
	line, ok := s.hub.get(seq)
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Errorf("no event %d (not yet, or no longer kept)", seq))
		return
	}
	var e events.Event
	if err := gojson.Unmarshal(line, &e); err != nil {
		writeError(w, http.StatusNotFound, fmt.Errorf("event %d cannot be read: %v", seq, err))
		return
	}
	p, err := DecodePacket(&e)
	if err != nil {
		writeError(w, http.StatusNotFound, err)
		return
	}
	if r.URL.Query().Get("keys") == "1" {
		p.Keys = s.keysFor(&e)
	}
	writeJSON(w, p)
}

func writeJSON(w http.ResponseWriter, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(append(b, '\n'))
}

// writeError answers {"error": "..."} with a status code.
func writeError(w http.ResponseWriter, code int, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	b, _ := json.Marshal(map[string]string{"error": err.Error()})
	_, _ = w.Write(append(b, '\n'))
}

// DefaultAddr is where the view listens unless told otherwise: this
// machine only. A classroom's projector on another machine needs an
// address given explicitly.
const DefaultAddr = "127.0.0.1:8080"

// Listen opens the view's listening socket. An empty addr is DefaultAddr;
// an address without a host (":8080") is loopback too, so that the view
// reaches other machines only when an address says so ("0.0.0.0:8080",
// "192.0.2.10:8080"). Port 0 picks a free port.
func Listen(addr string) (net.Listener, error) {
	if addr == "" {
		addr = DefaultAddr
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		if _, perr := strconv.ParseUint(addr, 10, 16); perr == nil {
			host, port = "", addr // a port alone
		} else {
			return nil, fmt.Errorf("web address %q: want HOST:PORT, like %s or 0.0.0.0:8080 for other machines", addr, DefaultAddr)
		}
	}
	if host == "" {
		host = "127.0.0.1"
	}
	l, err := net.Listen("tcp", net.JoinHostPort(host, port))
	if err != nil {
		return nil, fmt.Errorf("web view: %w", err)
	}
	return l, nil
}

// URL is the address to print for a listener: http://HOST:PORT/.
func URL(l net.Listener) string { return "http://" + l.Addr().String() + "/" }

// Serve serves s on l until ctx ends, then closes the streams and returns.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second, BaseContext: func(net.Listener) context.Context { return ctx }}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	_ = srv.Close()
	if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

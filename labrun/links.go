package labrun

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/ipseclab/ipseclab/events"
	"github.com/ipseclab/ipseclab/impair"
	"github.com/ipseclab/ipseclab/impair/netem"
	"github.com/ipseclab/ipseclab/topology"
)

// ImpairFactory makes every point-to-point link an impairable pair of TAP
// devices joined by the lab process, so that any link can be delayed, made
// lossy, taken down or captured at any time.
type ImpairFactory struct {
	Seed uint64
	Bus  *events.Bus
}

// NewWire implements WireFactory.
func (f ImpairFactory) NewWire(link *topology.Link, a, b *Namespace) (Wire, error) {
	cfg := impair.Config{
		Name:          link.Name,
		A:             impair.Endpoint{Node: link.Endpoints[0].Node, Iface: link.Endpoints[0].Iface, Netns: a.Handle},
		B:             impair.Endpoint{Node: link.Endpoints[1].Node, Iface: link.Endpoints[1].Iface, Netns: b.Handle},
		Seed:          f.Seed,
		Events:        events.Publisher{Bus: f.Bus, Link: link.Name},
		CountersEvery: 5 * time.Second,
	}
	if link.Impair != nil {
		cfg.Params = *link.Impair
	}
	return impair.New(cfg)
}

// link returns the impairable link a name refers to (an endpoint such as
// "isp:eth0", or the full "a:eth0--b:eth0").
func (r *Runtime) link(name string) (*impair.Link, error) {
	l := r.Lab.FindLink(name)
	if l == nil {
		return nil, fmt.Errorf("lab %s has no link with endpoint %q", r.Lab.Name, name)
	}
	il, ok := r.Deployment.Wire(l.Name).(*impair.Link)
	if !ok {
		return nil, fmt.Errorf("link %s cannot be impaired", l.Name)
	}
	return il, nil
}

// LinkStatus is a link's impairment and counters, per direction.
type LinkStatus struct {
	Name     string             `json:"name"`
	AtoB     string             `json:"a_to_b"` // "alice:eth0 → gw:eth1"
	BtoA     string             `json:"b_to_a"`
	Impair   string             `json:"impair"`     // as tc qdisc show prints it; "" when unimpaired
	Dirs     [2]string          `json:"directions"` // each direction's settings, a-to-b then b-to-a
	Counters [2]impair.Counters `json:"counters"`
}

func (r *Runtime) linkStatus(il *impair.Link) LinkStatus {
	ab, ba := il.Counters()
	a, b := il.Endpoints()
	as, bs := a.Node+":"+a.Iface, b.Node+":"+b.Iface
	st := LinkStatus{Name: il.Name(), AtoB: as + " → " + bs, BtoA: bs + " → " + as, Counters: [2]impair.Counters{ab, ba}}
	p := il.Params()
	if p != (netem.Params{}) {
		st.Impair = p.String()
	}
	for i, d := range []netem.Dir{netem.AtoB, netem.BtoA} {
		var parts []string
		if n := p.Dir(d); n != (netem.Netem{}) {
			parts = append(parts, n.String())
		}
		if p.MTU > 0 {
			// The link's MTU drops oversized frames in both directions.
			parts = append(parts, fmt.Sprintf("mtu %d", p.MTU))
		}
		st.Dirs[i] = strings.Join(parts, " ")
	}
	if p.Down {
		st.Dirs = [2]string{"down", "down"}
	}
	return st
}

// Links returns every link's status, in the lab file's order.
func (r *Runtime) Links() []LinkStatus {
	var out []LinkStatus
	for _, l := range r.Lab.Topology.Links {
		if il, ok := r.Deployment.Wire(l.Name).(*impair.Link); ok {
			out = append(out, r.linkStatus(il))
		}
	}
	return out
}

// ImpairRequest changes a link at run time.
type ImpairRequest struct {
	Link  string   `json:"link"`
	Args  []string `json:"args,omitempty"`  // --delay 50ms --loss 20% ... (merged into the current settings)
	Reset bool     `json:"reset,omitempty"` // back to the lab file's settings first
}

// impairLink applies a change: reset first if asked, then merge.
func (r *Runtime) impairLink(link string, reset bool, change *netem.Change) (LinkStatus, error) {
	il, err := r.link(link)
	if err != nil {
		return LinkStatus{}, err
	}
	if reset {
		if err := il.Reset(); err != nil {
			return LinkStatus{}, err
		}
	}
	if change != nil && !change.IsZero() {
		if _, err := il.Update(*change); err != nil {
			return LinkStatus{}, err
		}
	}
	return r.linkStatus(il), nil
}

func (r *Runtime) startLinks() {
	r.RegisterAction("impair", func(_ context.Context, s *topology.Step) error {
		_, err := r.impairLink(s.Impair.Link, s.Impair.Reset, s.Impair.Set)
		return err
	})
	r.RegisterAction("link", func(_ context.Context, s *topology.Step) error {
		il, err := r.link(s.Link.Name)
		if err != nil {
			return err
		}
		return il.SetDown(s.Link.Down)
	})
	r.Handle("GET /v1/links", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, r.Links()) })
	r.Handle("POST /v1/links/impair", func(w http.ResponseWriter, req *http.Request) {
		var ir ImpairRequest
		if err := decodeBody(req, &ir); err != nil {
			writeError(w, http.StatusBadRequest, err)
			return
		}
		var change *netem.Change
		if len(ir.Args) > 0 {
			c, err := netem.ParseChange(ir.Args)
			if err != nil {
				writeError(w, http.StatusBadRequest, err)
				return
			}
			change = &c
		}
		st, err := r.impairLink(ir.Link, ir.Reset, change)
		if err != nil {
			writeError(w, http.StatusBadRequest, err)
			return
		}
		writeJSON(w, st)
	})
	r.Handle("GET /v1/links/capture", r.handleCapture)
}

// handleCapture streams a link's packets as pcap until the client goes away.
func (r *Runtime) handleCapture(w http.ResponseWriter, req *http.Request) {
	il, err := r.link(req.URL.Query().Get("link"))
	if err != nil {
		writeError(w, http.StatusNotFound, err)
		return
	}
	opt := impair.CaptureOptions{}
	switch req.URL.Query().Get("point") {
	case "", "receiver":
		opt.Point = impair.AtReceiver
	case "sender":
		opt.Point = impair.AtSender
	default:
		writeError(w, http.StatusBadRequest, fmt.Errorf("capture point %q is neither receiver nor sender", req.URL.Query().Get("point")))
		return
	}
	w.Header().Set("Content-Type", "application/vnd.tcpdump.pcap")
	fw := &flushWriter{w: w}
	if f, ok := w.(http.Flusher); ok {
		fw.f = f
	}
	c, err := il.Capture(fw, opt)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	select {
	case <-req.Context().Done():
	case <-c.Done():
	case <-r.shutdown:
	}
	_ = c.Close()
}

// flushWriter pushes every pcap record to the client at once, for live
// viewing with `| tshark -r -`.
type flushWriter struct {
	w interface{ Write([]byte) (int, error) }
	f http.Flusher
}

func (fw *flushWriter) Write(b []byte) (int, error) {
	n, err := fw.w.Write(b)
	if fw.f != nil {
		fw.f.Flush()
	}
	return n, err
}

// Links asks the lab process for every link's impairment and counters.
func (c *Client) Links(ctx context.Context) ([]LinkStatus, error) {
	var out []LinkStatus
	return out, c.Do(ctx, "GET", "/v1/links", nil, &out)
}

// Impair changes a link at run time.
func (c *Client) Impair(ctx context.Context, ir ImpairRequest) (LinkStatus, error) {
	var st LinkStatus
	return st, c.Do(ctx, "POST", "/v1/links/impair", ir, &st)
}

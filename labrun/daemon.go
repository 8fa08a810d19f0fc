package labrun

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/vishvananda/netns"

	"github.com/ipseclab/ipseclab/events"
	"github.com/ipseclab/ipseclab/ipsec/ike"
	"github.com/ipseclab/ipseclab/ipsec/stack"
	"github.com/ipseclab/ipseclab/topology"
)

// Daemon is ipseclab's IPsec stack running on its own, outside a lab, in the
// network namespace it was started in, so that it can meet a peer on a real
// host or in a namespace ipseclab did not create. It answers `ipseclab sas
// --socket`, `stats --socket` and `tunnel` requests on its control socket.
type Daemon struct {
	Config *topology.DaemonConfig
	gw     *gatewayNode
	srv    *http.Server
	done   chan struct{}
	once   sync.Once
}

// StartDaemon starts the stack in the calling process's network namespace.
func StartDaemon(cfg *topology.DaemonConfig, bus *events.Bus) (*Daemon, error) {
	h, err := netns.Get()
	if err != nil {
		return nil, err
	}
	scfg := stack.Config{Node: cfg.Node, Events: bus, Host: stack.Namespace{Handle: h}, PublishKeys: cfg.PublishKeys}
	for _, dc := range cfg.Connections {
		// Alone, the daemon starts `start: start` connections itself.
		scfg.Connections = append(scfg.Connections, IKEConnection(dc.Side, ike.StartStart))
	}
	st, err := stack.New(scfg)
	if err != nil {
		return nil, err
	}
	if err := st.Start(); err != nil {
		return nil, err
	}
	d := &Daemon{Config: cfg, gw: &gatewayNode{name: cfg.Node, stack: st}, done: make(chan struct{})}
	if err := os.MkdirAll(filepath.Dir(cfg.Socket), privateDir); err != nil {
		st.Close()
		return nil, err
	}
	_ = os.Remove(cfg.Socket)
	ln, err := net.Listen("unix", cfg.Socket)
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("control socket %s: %w", cfg.Socket, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/sas", func(w http.ResponseWriter, req *http.Request) {
		sas, err := d.gw.SAs(req.Context())
		if err != nil {
			writeError(w, http.StatusInternalServerError, err)
			return
		}
		writeJSON(w, sas)
	})
	mux.HandleFunc("GET /v1/stats", func(w http.ResponseWriter, req *http.Request) {
		st, err := d.gw.Stats(req.Context())
		if err != nil {
			writeError(w, http.StatusInternalServerError, err)
			return
		}
		writeJSON(w, []NodeStats{st})
	})
	mux.HandleFunc("POST /v1/tunnel", tunnelHandler(func(ctx context.Context, tr TunnelRequest) error {
		if tr.Up {
			return d.gw.Initiate(ctx, tr.Connection)
		}
		return d.gw.Terminate(ctx, tr.Connection)
	}))
	mux.HandleFunc("GET /v1/events", func(w http.ResponseWriter, req *http.Request) { serveEvents(bus, w, req) })
	mux.HandleFunc("POST /v1/shutdown", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, map[string]string{"status": "shutting down"})
		d.stop()
	})
	d.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = d.srv.Serve(ln) }()
	return d, nil
}

func (d *Daemon) stop() { d.once.Do(func() { close(d.done) }) }

// Done is closed when a client asked the daemon to stop.
func (d *Daemon) Done() <-chan struct{} { return d.done }

// Close sends Deletes for every SA, stops the stack and removes the socket.
func (d *Daemon) Close() error {
	d.stop()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	_ = d.srv.Shutdown(ctx)
	cancel()
	_ = d.srv.Close()
	err := d.gw.stack.Close()
	_ = os.Remove(d.Config.Socket)
	return err
}

package labrun

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipseclab/ipseclab/events"
	"github.com/ipseclab/ipseclab/nat"
	"github.com/ipseclab/ipseclab/topology"
)

// Runtime is the lab process: it owns the deployment and everything that must
// keep running while the lab is up, and serves the control socket that the
// other CLI verbs talk to.
type Runtime struct {
	Lab        *topology.Lab
	Bus        *events.Bus
	Deployment *Deployment
	Seed       uint64

	state    *State
	mux      *http.ServeMux
	srv      *http.Server
	shutdown chan struct{} // closed when a client asks the lab to go away
	once     sync.Once
	closers  []func() error // components, closed in reverse order

	nats        map[string]*nat.Box
	ipsec       map[string]IPsecNode
	publishKeys bool
	keys        atomic.Pointer[keyTables] // set while CaptureAll records; charon's log reader reads it

	scriptMu sync.Mutex
	actions  map[string]ActionFunc
	counters CounterFunc
}

// RuntimeOptions configure a lab process.
type RuntimeOptions struct {
	Bus  *events.Bus
	File string // where the lab came from, recorded in the state
	// PublishKeys makes the IPsec stacks publish every derived key
	// (events.KeysDerived), for teaching and for Wireshark's tables.
	PublishKeys bool
}

// StartRuntime deploys the lab and starts serving its control socket. On
// failure nothing is left: not namespaces, not state.
func StartRuntime(ctx context.Context, lab *topology.Lab, opt RuntimeOptions) (_ *Runtime, err error) {
	if err := CheckRoot(); err != nil {
		return nil, err
	}
	if st, err := ReadState(lab.Name); err == nil && st.LabProcessAlive() {
		return nil, fmt.Errorf("lab %s is already deployed (lab process %d): run `ipseclab destroy --name %s` first", lab.Name, st.PID, lab.Name)
	}
	if existing, _ := ListNetns(LabPrefix(lab.Name)); len(existing) > 0 {
		return nil, fmt.Errorf("lab %s is already deployed or left over (namespace %s exists): run `ipseclab destroy --name %s` first", lab.Name, existing[0], lab.Name)
	}
	r := &Runtime{Lab: lab, Bus: opt.Bus, mux: http.NewServeMux(), shutdown: make(chan struct{}), publishKeys: opt.PublishKeys}
	if lab.Seed != nil {
		r.Seed = *lab.Seed
		r.Bus.Publish(events.Event{Kind: events.LabSeed, Message: fmt.Sprintf("seed %d (from the lab file)", r.Seed),
			Fields: map[string]any{"seed": r.Seed, "chosen": false, "file": opt.File, "source": string(lab.Source)}})
	} else {
		r.Seed = rand.Uint64() % 1_000_000
		r.Bus.Publish(events.Event{Kind: events.LabSeed, Message: fmt.Sprintf("seed %d (chosen for this run; add `seed: %d` to the lab file to replay it)", r.Seed, r.Seed),
			Fields: map[string]any{"seed": r.Seed, "chosen": true, "file": opt.File, "source": string(lab.Source)}})
	}

	// Record what will be created before creating it.
	planned := make([]string, 0, len(lab.Topology.Nodes)+1)
	for _, n := range lab.NodeNames() {
		planned = append(planned, NodeNetns(lab.Name, n))
	}
	if len(lab.Topology.LANs) > 0 {
		planned = append(planned, LANNetns(lab.Name))
	}
	start, err := ProcessStart(os.Getpid())
	if err != nil {
		return nil, fmt.Errorf("lab process: %w", err)
	}
	r.state = &State{Lab: lab.Name, File: opt.File, PID: os.Getpid(), PIDStart: start, Socket: SocketPath(lab.Name),
		Namespaces: planned, Started: time.Now(), Status: "deploying", Seed: r.Seed}
	if err := WriteState(r.state); err != nil {
		return nil, fmt.Errorf("record lab state in %s: %w", StateDir(lab.Name), err)
	}
	if err := os.WriteFile(StateLabFile(lab.Name), lab.Source, privateFile); err != nil {
		_ = os.RemoveAll(StateDir(lab.Name))
		return nil, err
	}
	defer func() {
		if err != nil {
			r.closeComponents()
			if r.Deployment != nil {
				_ = r.Deployment.Destroy()
			}
			_ = os.RemoveAll(StateDir(lab.Name))
		}
	}()

	// The lab PKI before anything else: the IPsec nodes start with its
	// credentials, and it goes with the state directory.
	if err := SetupLabPKI(lab, opt.Bus); err != nil {
		return nil, err
	}
	r.Deployment, err = Deploy(ctx, lab, Options{Bus: opt.Bus, Wires: ImpairFactory{Seed: r.Seed, Bus: opt.Bus}})
	if err != nil {
		r.Deployment = nil // Deploy rolled back already
		return nil, err
	}
	r.startLinks()
	if err := r.startNATs(); err != nil {
		return nil, err
	}
	if err := r.startIPsec(ctx); err != nil {
		return nil, err
	}
	if err := r.serveControl(); err != nil {
		return nil, err
	}
	r.state.Status = "up"
	if err := WriteState(r.state); err != nil {
		return nil, err
	}
	return r, nil
}

// Handle adds a control endpoint (components register theirs).
func (r *Runtime) Handle(pattern string, h http.HandlerFunc) { r.mux.HandleFunc(pattern, h) }

// AddCloser registers a component to stop at shutdown, before the namespaces go.
func (r *Runtime) AddCloser(f func() error) { r.closers = append(r.closers, f) }

// ShutdownRequested is closed when a client asked the lab to shut down.
func (r *Runtime) ShutdownRequested() <-chan struct{} { return r.shutdown }

func (r *Runtime) serveControl() error {
	path := SocketPath(r.Lab.Name)
	_ = os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return fmt.Errorf("control socket %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return err
	}
	r.mux.HandleFunc("GET /v1/info", r.handleInfo)
	r.mux.HandleFunc("GET /v1/events", r.handleEvents)
	r.mux.HandleFunc("POST /v1/shutdown", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, map[string]string{"status": "shutting down"})
		r.requestShutdown()
	})
	r.srv = &http.Server{Handler: r.mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = r.srv.Serve(ln) }()
	return nil
}

func (r *Runtime) requestShutdown() {
	r.once.Do(func() { close(r.shutdown) })
}

func (r *Runtime) closeComponents() {
	for i := len(r.closers) - 1; i >= 0; i-- {
		_ = r.closers[i]()
	}
	r.closers = nil
}

// Shutdown stops the components, removes the lab and its state.
func (r *Runtime) Shutdown() error {
	r.requestShutdown()
	r.state.Status = "destroying"
	_ = WriteState(r.state)
	if r.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = r.srv.Shutdown(ctx) // lets the shutdown request's reply go out
		cancel()
		_ = r.srv.Close() // event streams never finish by themselves
	}
	r.closeComponents()
	var errs []error
	if r.Deployment != nil {
		errs = append(errs, r.Deployment.Destroy())
	}
	errs = append(errs, os.RemoveAll(StateDir(r.Lab.Name)))
	return errors.Join(errs...)
}

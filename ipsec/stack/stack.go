// Package stack is one node's IPsec implementation: the IKEv1 engine (package
// ike) and the esp data plane, with the sockets between them and the network.
// It opens the data plane (TUN device, raw ESP/AH sockets, the NAT-T port
// 4500 shared with IKE) and a UDP 500 socket per local address, all through a
// Host: a network namespace of this machine (Namespace), or a simulated
// network for unit tests (package sim). It installs the policies of trap
// connections, wires the data plane's acquires and expiries to the engine,
// and offers initiate, terminate, list, crash and restart.
//
//	UDP 500 socket(s) ─┐   ┌─▶ queue of first messages ──────┐
//	                   ├───┤   (bounded; a flood is dropped   ├─▶ one goroutine ─▶ ike.Engine.Receive
//	NAT-T port 4500 ───┘   │    here, counted)                 │   (the other queue first)
//	                       └─▶ queue of the rest ─────────────┘
//	ike.Engine ─▶ transport ─▶ UDP 500 socket, or the data plane's SendIKE (marker added)
//	esp data plane ─▶ Hooks{Acquire, Expire, Mapping} ─▶ ike.Engine.HandleAcquire, HandleExpire, HandleMapping
package stack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/ipseclab/ipseclab/events"
	"github.com/ipseclab/ipseclab/ipsec/esp"
	"github.com/ipseclab/ipseclab/ipsec/fault"
	"github.com/ipseclab/ipseclab/ipsec/ike"
)

// Host is where a stack opens its data plane and IKE sockets.
type Host interface {
	// OpenDataPlane creates and starts the node's data plane.
	OpenDataPlane(cfg esp.Config) (*esp.DataPlane, error)
	// ListenIKE binds a UDP socket for IKE (port 500).
	ListenIKE(local netip.AddrPort) (net.PacketConn, error)
	// SetVirtualIP puts on the node (add) or takes off it an address that
	// Mode Config lent: the source of the node's packets into the tunnel.
	SetVirtualIP(addr netip.Prefix, add bool) error
}

// Config configures one node's stack.
type Config struct {
	Node   string
	Events *events.Bus // nil: no events
	Host   Host

	// Connections, in the vocabulary of swanctl.conf (see ike.Connection):
	// name, role, addresses, identities, PSK, mode, IKE proposals and
	// lifetime, DPD, NAT-T, retransmission, and the child's selectors, ESP or
	// AH proposals (with the PFS group), mode, lifetimes, start action and
	// replay window.
	Connections []ike.Connection

	// PublishKeys publishes events.KeysDerived with every derived key.
	PublishKeys bool

	// DataPlane tunes the data plane (counters interval, packets described,
	// ...). Node, Events, Hooks and Now are the stack's to set.
	DataPlane esp.Config

	Clock  ike.Clock // nil: the real clock
	Rand   io.Reader // nil: crypto/rand
	Tuning ike.Tuning

	// ReceiveQueue is how many received IKE datagrams wait for the engine
	// before more are dropped; 0: 1024.
	ReceiveQueue int
	// ReceiveQueueBytes bounds the bytes of the large datagrams among them
	// (over largeDatagram bytes): a first message may carry a 60 KB offer,
	// and a flood of those must neither take the memory nor crowd out the
	// few hundred bytes of a real first message; 0: 4 MiB.
	ReceiveQueueBytes int
}

// Status is what `ipseclab sas` shows of a node.
type Status struct {
	Node string `json:"node"`
	ike.Status
}

// Stats are the node's counters outside any SA.
type Stats struct {
	IKE          ike.Stats `json:"ike"`
	DataPlane    esp.Stats `json:"data_plane"`
	QueueDropped uint64    `json:"ike_queue_dropped"` // received IKE datagrams dropped before the engine
	SocketErrors uint64    `json:"ike_socket_errors"`
}

// Stack is one node's IPsec stack.
type Stack struct {
	cfg Config
	pub events.Publisher

	mu      sync.Mutex // serialises Start, Crash, Restart and Close
	running *instance
	closed  bool
}

// instance is one life of the stack, from Start (or Restart) to Crash or
// Close: the engine, the data plane, the sockets and the receive goroutines.
type instance struct {
	engine  *ike.Engine
	dp      *esp.DataPlane
	sockets map[netip.Addr]net.PacketConn
	first   chan ike.Packet // messages that start a negotiation (no responder cookie)
	rest    chan ike.Packet // everything else: served first
	done    chan struct{}   // closed to stop the receive paths
	wg      sync.WaitGroup

	queued     atomic.Int64 // bytes of large datagrams waiting in first and rest
	queueBytes int
	// serving is held by whoever runs the engine's receive path: deliver,
	// or a socket reader that found nothing waiting (readSocket); pending
	// counts the datagrams enqueued and not yet served.
	serving sync.Mutex
	pending atomic.Int64

	mu      sync.Mutex
	dropped uint64
	sockErr uint64
}

// New checks the configuration. Nothing is opened until Start.
func New(cfg Config) (*Stack, error) {
	if cfg.Host == nil {
		return nil, errors.New("stack: no host to run on")
	}
	for _, c := range cfg.Connections {
		if err := c.Validate(); err != nil {
			return nil, fmt.Errorf("stack %s: %w", cfg.Node, err)
		}
	}
	if cfg.ReceiveQueue == 0 {
		cfg.ReceiveQueue = 1024
	}
	if cfg.ReceiveQueueBytes == 0 {
		cfg.ReceiveQueueBytes = 4 << 20
	}
	return &Stack{cfg: cfg, pub: events.Publisher{Bus: cfg.Events, Node: cfg.Node}}, nil
}

// Start opens the data plane and the sockets, installs the policies of trap
// connections and initiates those that start at once.
func (s *Stack) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("stack: closed")
	}
	if s.running != nil {
		return errors.New("stack: already running")
	}
	in, err := s.open()
	if err != nil {
		return err
	}
	s.running = in
	return in.engine.Start()
}

// open brings up one instance.
func (s *Stack) open() (_ *instance, err error) {
	in := &instance{
		sockets: map[netip.Addr]net.PacketConn{}, done: make(chan struct{}),
		first: make(chan ike.Packet, s.cfg.ReceiveQueue), rest: make(chan ike.Packet, s.cfg.ReceiveQueue),
		queueBytes: s.cfg.ReceiveQueueBytes,
	}
	defer func() {
		if err != nil {
			in.close()
		}
	}()
	dpc := s.cfg.DataPlane
	dpc.Node, dpc.Events, dpc.Hooks = s.cfg.Node, s.cfg.Events, esp.Hooks{}
	if s.cfg.Clock != nil {
		dpc.Now = s.cfg.Clock.Now
	}
	if in.dp, err = s.cfg.Host.OpenDataPlane(dpc); err != nil {
		return nil, fmt.Errorf("stack %s: data plane: %w", s.cfg.Node, err)
	}
	for _, c := range s.cfg.Connections {
		if in.sockets[c.Local] != nil {
			continue
		}
		pc, err := s.cfg.Host.ListenIKE(netip.AddrPortFrom(c.Local, 500))
		if err != nil {
			return nil, fmt.Errorf("stack %s: IKE socket on %s:500: %w", s.cfg.Node, c.Local, err)
		}
		in.sockets[c.Local] = pc
	}
	in.engine, err = ike.New(ike.Config{
		Node: s.cfg.Node, Events: s.cfg.Events, Connections: s.cfg.Connections,
		Transport: in, DataPlane: in.dp, Clock: s.cfg.Clock, Rand: s.cfg.Rand,
		PublishKeys: s.cfg.PublishKeys, Tuning: s.cfg.Tuning, VirtualIP: s.virtualIP(in),
	})
	if err != nil {
		return nil, fmt.Errorf("stack %s: %w", s.cfg.Node, err)
	}
	in.dp.SetHooks(esp.Hooks{Acquire: in.engine.HandleAcquire, Expire: in.engine.HandleExpire, Mapping: in.engine.HandleMapping, UnknownSPI: in.engine.HandleUnknownSPI})
	in.dp.HandleIKE(func(src netip.AddrPort, msg []byte) {
		in.enqueue(ike.Packet{Local: netip.AddrPortFrom(netip.Addr{}, 4500), Remote: src, Data: msg})
	})
	for addr, pc := range in.sockets {
		in.wg.Add(1)
		go in.readSocket(addr, pc)
	}
	in.wg.Add(1)
	go in.deliver()
	return in, nil
}

// readSocket moves datagrams from a UDP 500 socket to the receive queue.
func (in *instance) readSocket(addr netip.Addr, pc net.PacketConn) {
	defer in.wg.Done()
	buf := make([]byte, 65536)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			select {
			case <-in.done:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			in.mu.Lock()
			in.sockErr++
			in.mu.Unlock()
			continue
		}
		ua, ok := from.(*net.UDPAddr)
		if !ok {
			continue
		}
		src := ua.AddrPort()
		src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
		p := ike.Packet{Local: netip.AddrPortFrom(addr, 500), Remote: src, Data: append([]byte(nil), buf[:n]...)}
		// With nothing waiting and the engine idle, the reader serves a
		// datagram of a negotiation under way itself: handing it to
		// deliver woke a second goroutine, often on the other processor,
		// for every message. Queued datagrams keep their order. First
		// messages always queue, behind the others: a reader busy serving
		// a flood of them would leave later messages in the socket's
		// buffer, out of reach of the queues' priority.
		if !firstMessage(p.Data) && in.pending.Load() == 0 && in.serving.TryLock() {
			if in.pending.Load() == 0 {
				in.engine.Receive(p)
				in.serving.Unlock()
				continue
			}
			in.serving.Unlock()
		}
		in.enqueue(p)
	}
}

// enqueue hands a datagram to the engine's goroutine, dropping it when its
// queue is full, as a full socket buffer would. First messages (no responder
// cookie yet) wait in a queue of their own, served only when nothing else
// waits: a flood of forged first messages then cannot delay the later
// messages of a real negotiation long enough for its half-open SA to be
// pushed out.
func (in *instance) enqueue(p ike.Packet) {
	q := in.rest
	if firstMessage(p.Data) {
		q = in.first
	}
	large := int64(0)
	if len(p.Data) > largeDatagram {
		large = int64(len(p.Data))
	}
	if in.queued.Add(large) > int64(in.queueBytes) {
		in.queued.Add(-large)
		in.drop()
		return
	}
	in.pending.Add(1)
	select {
	case q <- p:
	case <-in.done:
		in.pending.Add(-1)
	default:
		in.pending.Add(-1)
		in.queued.Add(-large)
		in.drop()
	}
}

// firstMessage reports whether an IKE datagram has no responder cookie: the
// first message of a negotiation, which anyone can send.
func firstMessage(data []byte) bool {
	return len(data) >= 16 && [8]byte(data[8:16]) == [8]byte{}
}

// largeDatagram is the size above which a received IKE datagram counts
// against ReceiveQueueBytes. Real Main Mode and Quick Mode messages with a
// few proposals are well under it.
const largeDatagram = 2048

func (in *instance) drop() {
	in.mu.Lock()
	in.dropped++
	in.mu.Unlock()
}

// receive hands a queued datagram to the engine.
func (in *instance) receive(p ike.Packet) {
	if len(p.Data) > largeDatagram {
		in.queued.Add(-int64(len(p.Data)))
	}
	in.serving.Lock()
	in.engine.Receive(p)
	in.serving.Unlock()
	in.pending.Add(-1)
}

// deliver runs the engine's receive path, one datagram at a time, the
// messages of negotiations under way before new ones.
func (in *instance) deliver() {
	defer in.wg.Done()
	for {
		select {
		case p := <-in.rest:
			in.receive(p)
			continue
		default:
		}
		select {
		case p := <-in.rest:
			in.receive(p)
		case p := <-in.first:
			in.receive(p)
		case <-in.done:
			return
		}
	}
}

// SendIKE implements ike.Transport: port 4500 goes through the data plane's
// NAT-T port (which adds the non-ESP marker), anything else through the UDP
// 500 socket of the local address.
func (in *instance) SendIKE(local, remote netip.AddrPort, msg []byte) error {
	if local.Port() == 4500 {
		return in.dp.SendIKE(remote, msg)
	}
	pc := in.sockets[local.Addr()]
	if pc == nil {
		return fmt.Errorf("no IKE socket on %s", local.Addr())
	}
	_, err := pc.WriteTo(msg, net.UDPAddrFromAddrPort(remote))
	return err
}

// SendKeepalive implements ike.Transport.
func (in *instance) SendKeepalive(remote netip.AddrPort) error { return in.dp.SendKeepalive(remote) }

// close stops the receive paths and closes the sockets and the data plane.
func (in *instance) close() error { return in.end(false) }

// end is close, or with release, closes the data plane with Release.
func (in *instance) end(release bool) error {
	close(in.done)
	var errs []error
	for _, pc := range in.sockets {
		errs = append(errs, pc.Close())
	}
	if in.dp != nil {
		in.dp.HandleIKE(nil)
		if release {
			errs = append(errs, in.dp.Release())
		} else {
			errs = append(errs, in.dp.Close())
		}
	}
	in.wg.Wait()
	return errors.Join(errs...)
}

func (in *instance) stats() Stats {
	in.mu.Lock()
	defer in.mu.Unlock()
	return Stats{IKE: in.engine.Stats(), DataPlane: in.dp.Stats(), QueueDropped: in.dropped, SocketErrors: in.sockErr}
}

// current returns the running instance, or an error saying why there is none.
func (s *Stack) current() (*instance, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return nil, fmt.Errorf("stack %s: closed", s.cfg.Node)
	case s.running == nil:
		return nil, fmt.Errorf("stack %s: not running (crashed, or not started)", s.cfg.Node)
	}
	return s.running, nil
}

// Initiate negotiates a connection's SAs and returns once they are up.
func (s *Stack) Initiate(ctx context.Context, conn string) error {
	in, err := s.current()
	if err != nil {
		return err
	}
	return in.engine.Initiate(ctx, conn)
}

// Terminate deletes a connection's SAs, sending Delete payloads to the peer.
func (s *Stack) Terminate(ctx context.Context, conn string) error {
	in, err := s.current()
	if err != nil {
		return err
	}
	return in.engine.Terminate(ctx, conn)
}

// InjectFault arms a protocol fault (package fault): on the IKE engine for
// plane ike, on the data plane's outbound path for plane esp. A crash or
// restart forgets it with the rest of the state.
func (s *Stack) InjectFault(f fault.Fault) error {
	in, err := s.current()
	if err != nil {
		return err
	}
	if f.Plane == fault.ESP {
		return in.dp.InjectFault(f)
	}
	return in.engine.InjectFault(f)
}

// ClearFaults disarms every fault of the node and returns how many were
// armed.
func (s *Stack) ClearFaults() int {
	in, err := s.current()
	if err != nil {
		return 0
	}
	return in.engine.ClearFaults() + in.dp.ClearFaults()
}

// ArmedFaults lists the node's armed faults, IKE's then ESP's, with what
// remains of each.
func (s *Stack) ArmedFaults() []fault.Left {
	in, err := s.current()
	if err != nil {
		return nil
	}
	return append(in.engine.ArmedFaults(), in.dp.ArmedFaults()...)
}

// SAs lists the ISAKMP SAs and IPsec SA pairs, with their counters. A stack
// that is not running has none.
func (s *Stack) SAs() Status {
	st := Status{Node: s.cfg.Node}
	if in, err := s.current(); err == nil {
		st.Status = in.engine.SAs()
	}
	return st
}

// Stats returns the node's counters.
func (s *Stack) Stats() Stats {
	if in, err := s.current(); err == nil {
		return in.stats()
	}
	return Stats{}
}

// DataPlane returns the running data plane (nil when not running), for
// traffic counters and tests.
func (s *Stack) DataPlane() *esp.DataPlane {
	if in, err := s.current(); err == nil {
		return in.dp
	}
	return nil
}

// Crash loses all state at once, as a reboot would: nothing is sent, the
// sockets and the TUN device close, the SAs are gone.
func (s *Stack) Crash() {
	s.mu.Lock()
	defer s.mu.Unlock()
	in := s.running
	if in == nil {
		return
	}
	s.running = nil
	in.engine.Abandon()
	in.close()
	s.pub.Publish(events.Event{
		Kind: events.StackCrashed, Step: events.StepTermination, Level: events.Warn,
		Message: fmt.Sprintf("the IPsec stack of %s crashed: every SA is lost, and the peers were not told", s.cfg.Node),
		Explain: "The peers still hold their SAs: they notice through DPD, or when this node comes back and sends INITIAL-CONTACT.",
	})
}

// Restart brings a crashed stack back, empty, with its policies.
func (s *Stack) Restart() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("stack: closed")
	}
	if s.running != nil {
		return errors.New("stack: running; crash it first")
	}
	in, err := s.open()
	if err != nil {
		return err
	}
	s.running = in
	s.pub.Publish(events.Event{
		Kind:    events.StackRestarted,
		Message: fmt.Sprintf("the IPsec stack of %s restarted with no SAs", s.cfg.Node),
		Explain: "Its first phase 1 with each peer will carry INITIAL-CONTACT, telling the peer to drop the SAs it still holds for this node.",
	})
	return in.engine.Start()
}

// Release stops the stack at once, sending nothing, as Crash does but
// silently, and leaves its data plane's device and routes for the deletion
// of its namespace to remove (esp.DataPlane.Release): what a lab's destroy
// does, where every peer goes too.
func (s *Stack) Release() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	in := s.running
	s.running = nil
	if in == nil {
		return nil
	}
	in.engine.Abandon()
	return in.end(true)
}

// Close deletes every SA (telling the peers) and releases everything.
func (s *Stack) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	in := s.running
	s.running = nil
	if in == nil {
		return nil
	}
	in.engine.Close()
	return in.close()
}

// virtualIP is the engine's VirtualIP hook: the address Mode Config gave a
// connection goes on the node, where the data plane's routes into the TUN
// take it as their source (esp/linux: localAddressIn), so that the node's
// own packets match the connection's selectors; it comes off when the lease
// ends.
func (s *Stack) virtualIP(in *instance) func(conn string, l ike.Lease) {
	held := map[string]netip.Prefix{}
	return func(conn string, l ike.Lease) {
		if old, ok := held[conn]; ok && old != l.Addr {
			if err := s.cfg.Host.SetVirtualIP(old, false); err != nil {
				s.publishVirtualIPError(conn, old, err)
			}
			delete(held, conn)
		}
		if !l.Addr.IsValid() {
			return
		}
		if err := s.cfg.Host.SetVirtualIP(l.Addr, true); err != nil {
			s.publishVirtualIPError(conn, l.Addr, err)
			return
		}
		held[conn] = l.Addr
	}
}

func (s *Stack) publishVirtualIPError(conn string, addr netip.Prefix, err error) {
	if s.cfg.Events == nil {
		return
	}
	events.Publisher{Bus: s.cfg.Events, Node: s.cfg.Node, Conn: conn}.Publish(events.Event{
		Kind: events.ModeConfig, Level: events.Error,
		Message: fmt.Sprintf("the address %s from Mode Config could not be set on %s: %v", addr, s.cfg.Node, err),
	})
}

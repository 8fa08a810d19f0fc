package esp

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipseclab/ipseclab/events"
)

// Hooks are the data plane's calls into IKE. They run one at a time, in order,
// on a goroutine of their own, never on the packet path, so they may block.
type Hooks struct {
	// Acquire: an outbound packet matched a policy that has no SA. It fires
	// once per policy until an SA is installed or Config.AcquireRetry passed.
	Acquire func(AcquireRequest)
	// Expire: an SA reached a soft lifetime (rekey now) or a hard one (the SA
	// is already removed).
	Expire func(Expiry)
	// Mapping: an authenticated packet showed that a NAT in front of the
	// peer changed its mapping; the SAs already send to the new endpoint.
	Mapping func(MappingChange)
	// UnknownSPI: an ESP or AH packet arrived for an SPI with no SA (the
	// sender holds an SA we lost), at most once per UnknownSPIInterval.
	UnknownSPI func(UnknownSPI)
}

// UnknownSPI describes an inbound packet whose SPI matches no SA.
type UnknownSPI struct {
	Protocol Protocol
	SPI      uint32
	Peer     netip.AddrPort // the sender; port 0 for ESP or AH straight in IP
}

// UnknownSPIInterval spaces the Hooks.UnknownSPI calls: a peer sending a
// stream into a lost SA makes one report, not one per packet.
const UnknownSPIInterval = 100 * time.Millisecond

// Expiry describes an SA that reached a lifetime.
type Expiry struct {
	Conn     string
	ID       SAID
	Dir      Direction
	Hard     bool
	Reason   string // "bytes", "packets" or "sequence numbers"
	Counters Counters
}

// Config configures a DataPlane.
type Config struct {
	Node   string      // for events
	Events *events.Bus // nil: no events
	Hooks  Hooks

	// Now is the clock for acquire retries, drop-event rate limiting and SA
	// ages. Nil: time.Now.
	Now func() time.Time
	// AcquireRetry: zero means DefaultAcquireRetry.
	AcquireRetry time.Duration
	// CountersInterval publishes every SA's counters this often; zero: only
	// when an SA is removed (and on PublishCounters).
	CountersInterval time.Duration
	// DescribePackets is how many packets per SA get an ESPPacket event;
	// zero means 3, negative none.
	DescribePackets int
	// DropEventInterval spaces ESPDrop events per SA (and for drops with no
	// SA); zero means one second.
	DropEventInterval time.Duration
}

// Stats are the data plane's node-wide counters: what happened outside any
// SA, and the drops of every SA summed. An SA's own counters go with it when
// it is deleted or rekeyed; these last as long as the data plane, as Linux's
// /proc/net/xfrm_stat does.
type Stats struct {
	NoPolicy       uint64 `json:"no_policy"`       // outbound packet matched no policy
	NotIPv4        uint64 `json:"not_ipv4"`        // outbound packet that was not IPv4 (IPv6 is not supported)
	UnknownSPI     uint64 `json:"unknown_spi"`     // inbound packet for no installed SA
	Malformed      uint64 `json:"malformed"`       // inbound packet too broken to find its SA
	Keepalives     uint64 `json:"nat_keepalives"`  // RFC 3948 §2.3 keepalives received
	IKEReceived    uint64 `json:"ike_received"`    // non-ESP-marked packets handed to IKE
	IKEDropped     uint64 `json:"ike_dropped"`     // ... with no IKE handler registered
	AcquireHeld    uint64 `json:"acquire_held"`    // packets currently held for acquires
	AcquireDropped uint64 `json:"acquire_dropped"` // packets dropped from full acquire queues
	SendErrors     uint64 `json:"send_errors"`     // batches the network refused
	DeviceErrors   uint64 `json:"device_errors"`   // TUN read or write errors
	MappingChanges uint64 `json:"mapping_changes"` // peers followed to a new NAT mapping (mapping.go)

	// The drops of SAs, by reason, summed over every SA there has been.
	ReplayDrops       uint64 `json:"replay_drops"`       // repeated, or left of the replay window
	IntegrityFailures uint64 `json:"integrity_failures"` // ICV check failed
	PolicyDrops       uint64 `json:"policy_drops"`       // wrong endpoints or encapsulation for the SA, or an inner packet outside its selectors
	SAMalformed       uint64 `json:"sa_malformed"`       // an SA's packet too short or badly padded, or its inner packet broken
	SeqExhausted      uint64 `json:"seq_exhausted"`      // outbound packets on an SA whose sequence numbers ran out
	Dummies           uint64 `json:"tfc_dummies"`        // RFC 4303 §2.6 dummy packets, discarded as the peer meant
}

type stats struct {
	noPolicy, notIPv4, unknownSPI, malformed, keepalives, ikeReceived, ikeDropped atomic.Uint64
	sendErrors, deviceErrors, mappingChanges                                      atomic.Uint64
	saDrops                                                                       [dropReasons]atomic.Uint64
}

// DataPlane is one node's IPsec data plane: SPD, SAD and the packet paths
// between a Device and a Network. Create it with New and attach its I/O with
// Start: package linux does both in a network namespace (TUN, sockets and
// policy routes), tests and simulations with I/O of their own.
type DataPlane struct {
	cfg Config
	pub events.Publisher
	now func() time.Time

	mu       sync.Mutex // serialises changes to the SPD and SAD
	spd      atomic.Pointer[spd]
	inbound  atomic.Pointer[map[inKey]*saState]
	sad      sad
	reserved map[inKey]bool // SPIs handed out by AllocateSPI, not yet installed
	routes   Routes         // nil without a kernel to route into the device
	paths    pathMTUs       // the path MTU toward each peer, as last looked up
	maxPath  int            // the largest path MTU used, and the size of the segment buffers (Routes.MaxPathMTU)

	dev Device
	net Network

	ike   atomic.Pointer[func(src netip.AddrPort, msg []byte)]
	hooks atomic.Pointer[Hooks]

	st       stats
	lastDrop atomic.Int64
	// batchTime is when the batch in progress began (unix nanoseconds): the
	// time an SA's packets are stamped with, read from the clock once per
	// batch rather than once per packet.
	batchTime atomic.Int64
	// lastUnknownSPI is when Hooks.UnknownSPI was last called (unix nanoseconds).
	lastUnknownSPI atomic.Int64
	notes          notifier

	closed  atomic.Bool
	stop    chan struct{}
	workers sync.WaitGroup
}

// New returns a data plane with no I/O attached; Start attaches it.
func New(cfg Config) *DataPlane {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.AcquireRetry <= 0 {
		cfg.AcquireRetry = DefaultAcquireRetry
	}
	if cfg.DescribePackets == 0 {
		cfg.DescribePackets = 3
	}
	if cfg.DropEventInterval <= 0 {
		cfg.DropEventInterval = time.Second
	}
	d := &DataPlane{
		cfg:      cfg,
		pub:      events.Publisher{Bus: cfg.Events, Node: cfg.Node},
		now:      cfg.Now,
		sad:      sad{all: map[SAID]*saState{}},
		reserved: map[inKey]bool{},
		maxPath:  ethernetMTU,
		stop:     make(chan struct{}),
	}
	d.hooks.Store(&cfg.Hooks)
	d.spd.Store(&spd{byKey: map[PolicyKey]*policy{}})
	empty := map[inKey]*saState{}
	d.inbound.Store(&empty)
	d.notes.start()
	return d
}

// SetHooks replaces the callbacks into IKE, for a stack created after the data
// plane.
func (d *DataPlane) SetHooks(h Hooks) { d.hooks.Store(&h) }

// Start runs the packet paths: one goroutine reading the device, one per
// receiver of the network. routes, if not nil, routes each policy into the
// device with its SA's inner MTU, and sizes the packet buffers; call Start
// before adding policies.
func (d *DataPlane) Start(dev Device, net Network, routes Routes) {
	d.dev, d.net, d.routes = dev, net, routes
	if routes != nil {
		d.maxPath = routes.MaxPathMTU()
	}
	d.workers.Add(1)
	go d.routineOutbound()
	for _, r := range net.Receivers() {
		d.workers.Add(1)
		go d.routineInbound(r)
	}
	if d.cfg.CountersInterval > 0 {
		d.workers.Add(1)
		go d.routineEvery(d.cfg.CountersInterval, d.PublishCounters)
	}
	if d.routes != nil {
		d.workers.Add(1)
		go d.routineEvery(pathMTUInterval, d.refreshRouteMTUs)
	}
}

// pathMTUInterval is how often the path MTU toward each peer is looked up
// again: the kernel lowers it when a router on the way answers a protected
// packet with ICMP "fragmentation needed" (RFC 1191), and raises it again
// when that entry expires.
const pathMTUInterval = time.Second

// refreshRouteMTUs keeps each route into the TUN at its current SA's inner
// MTU as the path MTU toward the peer changes.
//
// The path MTU matters only to packets that go out: an SA that sent nothing
// since the last look keeps its route's MTU, and the kernel is not asked.
// A lab of hundreds of idle road warriors otherwise spent a fifth of its
// time in these lookups and the garbage they make.
func (d *DataPlane) refreshRouteMTUs() {
	for _, p := range d.spd.Load().policies {
		sa := p.current.Load()
		if sa == nil || sa.dead.Load() {
			continue
		}
		seq := sa.seq.Load()
		if p.mtuSA == sa && p.mtuSeq == seq {
			continue
		}
		p.mtuSA, p.mtuSeq = sa, seq
		d.setRouteMTU(p, sa, true)
	}
	d.paths.forgetOlder(d.now().Add(-2 * pathMTUInterval))
}

// pathMTUs remembers the path MTU toward each peer as the kernel last gave
// it. Installing an SA takes it from here when it is recent: the lookup is
// a netlink round trip, and each side of every negotiation made one while
// the other side waited.
type pathMTUs struct {
	mu sync.Mutex
	m  map[netip.Addr]pathMTU
}

type pathMTU struct {
	mtu int
	at  time.Time
}

// get returns the path MTU toward peer if it was looked up after since.
func (c *pathMTUs) get(peer netip.Addr, since time.Time) (int, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[peer]
	if !ok || e.at.Before(since) {
		return 0, false
	}
	return e.mtu, true
}

func (c *pathMTUs) put(peer netip.Addr, mtu int, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[netip.Addr]pathMTU{}
	}
	c.m[peer] = pathMTU{mtu, at}
}

// forgetOlder drops what was looked up before t: peers gone, or idle.
func (c *pathMTUs) forgetOlder(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for peer, e := range c.m {
		if e.at.Before(t) {
			delete(c.m, peer)
		}
	}
}

// routineEvery calls f every interval until the data plane closes.
func (d *DataPlane) routineEvery(interval time.Duration, f func()) {
	defer d.workers.Done()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-d.stop:
			return
		case <-t.C:
			f()
		}
	}
}

// Close stops the packet paths, closes the device and the network, undoes
// the routes, and publishes the final counters of every SA.
func (d *DataPlane) Close() error { return d.close(false) }

// Release is Close for a data plane whose network namespace is about to be
// deleted, as a lab's are at destroy: the packet paths stop and the sockets
// close, but a device or routes that can be released (a Releaser) are left
// for the namespace's deletion to remove, all at once, and no counters are
// published.
func (d *DataPlane) Release() error { return d.close(true) }

// Releaser is a Device or Routes that can let go of what it holds without
// removing it from the kernel, for the deletion of its namespace to remove.
type Releaser interface{ Release() error }

func (d *DataPlane) close(release bool) error {
	if !d.closed.CompareAndSwap(false, true) {
		return nil
	}
	close(d.stop)
	end := func(c interface{ Close() error }) error {
		if r, ok := c.(Releaser); ok && release {
			return r.Release()
		}
		return c.Close()
	}
	var errs []error
	if d.dev != nil {
		errs = append(errs, end(d.dev))
	}
	if d.net != nil {
		errs = append(errs, d.net.Close())
	}
	if d.routes != nil {
		errs = append(errs, end(d.routes))
	}
	d.workers.Wait()
	if !release {
		d.PublishCounters()
	}
	d.notes.close()
	return errors.Join(errs...)
}

// AddPolicy installs a policy, or replaces the one with the same connection
// and selectors (see Policy); replacing keeps its outbound SAs and the packets
// it holds for an acquire.
func (d *DataPlane) AddPolicy(p Policy) error {
	np, err := newPolicy(p)
	if err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	cur := d.spd.Load()
	if old := cur.byKey[p.Key()]; old != nil {
		np.outs = old.outs
		np.refreshCurrent()
		old.acqMu.Lock()
		np.held, np.acquiring, np.acquired, np.negotiating = old.held, old.acquiring, old.acquired, old.negotiating
		old.held = nil
		old.acqMu.Unlock()
		np.heldDrops.Store(old.heldDrops.Load())
	} else if d.routes != nil {
		if err := d.routes.AddRoute(np.Policy); err != nil {
			return err
		}
	}
	d.spd.Store(cur.with(np))
	return nil
}

// DeletePolicy removes the policy with p's connection and selectors, and its
// route. Its SAs stay until deleted; the packets it held are dropped.
func (d *DataPlane) DeletePolicy(p Policy) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	cur := d.spd.Load()
	old := cur.byKey[p.Key()]
	if old == nil {
		return fmt.Errorf("no policy %s ⇄ %s for connection %q", p.LocalTS, p.RemoteTS, p.Conn)
	}
	d.spd.Store(cur.without(p.Key()))
	if d.routes != nil {
		return d.routes.DeleteRoute(old.Policy)
	}
	return nil
}

// SetNegotiating tells the data plane whether IKE is already negotiating SAs
// for the policy k, as a Quick Mode responder is between QM2 and QM3 (it
// installs the policy with QM2 so that a reply overtaking QM3 waits for the
// SA). While set, a packet that finds the policy without an SA is held as for
// an acquire, but silently: no Acquire event, no Hooks.Acquire, since this
// node is not starting anything. Installing an outbound SA for the policy
// sends the held packets and clears the flag; IKE clears it itself when the
// negotiation fails.
func (d *DataPlane) SetNegotiating(k PolicyKey, negotiating bool) error {
	p := d.spd.Load().byKey[k]
	if p == nil {
		return fmt.Errorf("no policy %s ⇄ %s for connection %q", k.LocalTS, k.RemoteTS, k.Conn)
	}
	p.acqMu.Lock()
	p.negotiating = negotiating
	p.acqMu.Unlock()
	return nil
}

// Held is how many packets a policy holds, waiting for an outbound SA.
func (d *DataPlane) Held(k PolicyKey) int {
	p := d.spd.Load().byKey[k]
	if p == nil {
		return 0
	}
	p.acqMu.Lock()
	defer p.acqMu.Unlock()
	return len(p.held)
}

// Policies lists the installed policies, most specific first.
func (d *DataPlane) Policies() []Policy {
	var out []Policy
	for _, p := range d.spd.Load().policies {
		out = append(out, p.Policy)
	}
	return out
}

// AllocateSPI picks a random unused inbound SPI for IKE to offer, and reserves
// it until an SA with it is installed or ReleaseSPI is called.
func (d *DataPlane) AllocateSPI(proto Protocol) (uint32, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	in := *d.inbound.Load()
	for range 1000 {
		var b [4]byte
		rand.Read(b[:])
		spi := binary.BigEndian.Uint32(b[:])
		k := inKey{proto, spi}
		if spi < 256 || in[k] != nil || d.reserved[k] {
			continue
		}
		d.reserved[k] = true
		return spi, nil
	}
	return 0, errors.New("no free SPI")
}

// ReleaseSPI gives back an SPI from AllocateSPI that was never installed.
func (d *DataPlane) ReleaseSPI(proto Protocol, spi uint32) {
	d.mu.Lock()
	delete(d.reserved, inKey{proto, spi})
	d.mu.Unlock()
}

// AddSA installs an SA. An Outbound SA becomes its policy's current SA at once
// (make before break: the previous one stays installed, unused, until
// deleted), and packets held for an acquire are sent through it. An Inbound SA
// is accepted alongside every other installed one until deleted.
func (d *DataPlane) AddSA(cfg SAConfig) error {
	sa, err := newSA(cfg, d.now())
	if err != nil {
		return err
	}
	d.mu.Lock()
	if d.sad.all[sa.id] != nil {
		d.mu.Unlock()
		return fmt.Errorf("SA %s is already installed", sa.id)
	}
	var p *policy
	if cfg.Dir == Inbound {
		k := inKey{cfg.Protocol, cfg.SPI}
		cur := *d.inbound.Load()
		if cur[k] != nil {
			d.mu.Unlock()
			return fmt.Errorf("inbound %s SPI %08x is already in use", cfg.Protocol, cfg.SPI)
		}
		n := cloneInbound(cur)
		n[k] = sa
		d.inbound.Store(&n)
		delete(d.reserved, k)
	} else {
		p = d.spd.Load().byKey[sa.cfg.policyKey()]
		if p == nil {
			d.mu.Unlock()
			return fmt.Errorf("outbound SA %s: connection %q has no policy %s ⇄ %s", sa.id, cfg.Conn, sa.cfg.LocalTS, sa.cfg.RemoteTS)
		}
		p.outs = append(p.outs, sa)
		p.current.Store(sa)
	}
	d.sad.all[sa.id] = sa
	d.mu.Unlock()

	if p != nil {
		d.setRouteMTU(p, sa, false)
		d.sendHeld(p)
	}
	return nil
}

// setRouteMTU gives the policy's route the outbound SA's inner MTU, so that
// the hosts behind learn it from the gateway: the PMTU propagation of RFC
// 4301 §8.2, with the kernel's forwarding sending the ICMP messages. fresh
// asks the kernel for the path MTU; otherwise a look at the same peer within
// pathMTUInterval serves, as refreshRouteMTUs corrects the route within
// that interval anyway.
func (d *DataPlane) setRouteMTU(p *policy, sa *saState, fresh bool) {
	if d.routes == nil {
		return
	}
	peer := sa.cfg.Remote
	if e := sa.encapPeer.Load(); e != nil {
		peer = e.Addr()
	}
	path, ok := 0, false
	now := d.now()
	if !fresh {
		path, ok = d.paths.get(peer, now.Add(-pathMTUInterval))
	}
	if !ok {
		var err error
		if path, err = d.routes.PathMTU(peer); err != nil {
			// Without a route to the peer nothing is sent anyway; the
			// policy keeps the MTU it has, and the next look may find one.
			return
		}
		d.paths.put(peer, path, now)
	}
	// The data plane's buffers hold packets of maxPath bytes: a larger path
	// is used as that.
	path = min(path, d.maxPath)
	mtu := path - sa.overhead()
	sa.innerMTU.Store(int32(mtu))
	routeMTU, changed, err := d.routes.SetRouteMTU(p.Policy, mtu)
	if err != nil {
		// The route keeps the smaller MTU it had, which works.
		d.st.deviceErrors.Add(1)
		return
	}
	if !changed {
		return
	}
	msg := fmt.Sprintf("route %s into the TUN: MTU %d = path %d − %d (%s)", p.RemoteTS, mtu, path, sa.overhead(), sa.overheadParts())
	if routeMTU != mtu {
		msg = fmt.Sprintf("route %s into the TUN: MTU %d, the smallest of the policies that share it; this SA's is %d = path %d − %d (%s)",
			p.RemoteTS, routeMTU, mtu, path, sa.overhead(), sa.overheadParts())
	}
	d.pub.Publish(events.Event{
		Kind: events.RouteMTU, Step: events.StepData, Conn: sa.cfg.Conn, Level: events.Info,
		Message: msg,
		Explain: "An SA makes every packet longer; the route into the TUN tells the hosts behind the gateway how large an inner packet may be so that the protected one still fits the path, and TCP sizes its segments to match.",
		SA:      d.saInfo(sa),
		Fields:  map[string]any{"mtu": routeMTU, "sa_mtu": mtu, "path_mtu": path, "overhead": sa.overhead()},
	})
}

// DeleteSA removes an SA and publishes its final counters. Deleting an
// outbound policy's current SA falls back to the newest one still installed.
func (d *DataPlane) DeleteSA(id SAID) error {
	sa := d.removeSA(id)
	if sa == nil {
		return fmt.Errorf("no SA %s", id)
	}
	d.publishCounters(sa, "deleted")
	return nil
}

func (d *DataPlane) removeSA(id SAID) *saState {
	d.mu.Lock()
	defer d.mu.Unlock()
	sa := d.sad.all[id]
	if sa == nil {
		return nil
	}
	delete(d.sad.all, id)
	sa.dead.Store(true)
	if sa.cfg.Dir == Inbound {
		n := cloneInbound(*d.inbound.Load())
		delete(n, inKey{sa.cfg.Protocol, sa.cfg.SPI})
		d.inbound.Store(&n)
		return sa
	}
	for _, p := range d.spd.Load().policies {
		if i := indexOf(p.outs, sa); i >= 0 {
			p.outs = append(p.outs[:i:i], p.outs[i+1:]...)
			p.refreshCurrent()
		}
	}
	return sa
}

// UpdateEncap moves the peer's end of a UDP-encapsulated SA to remote, in
// place: its keys, sequence numbers and replay window stay. IKE calls it when
// an authenticated message shows that a NAT between the peers changed its
// mapping, since ESP in UDP uses the addresses and ports IKE uses (RFC 3948
// §2.1). An outbound SA sends there from now on; an inbound one, which accepts
// its packets from any source, only reports the new endpoint.
func (d *DataPlane) UpdateEncap(id SAID, remote netip.AddrPort) error {
	if !remote.Addr().Is4() || remote.Port() == 0 {
		return fmt.Errorf("SA %s: the UDP endpoint %s needs an IPv4 address and a port", id, remote)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	sa := d.sad.all[id]
	switch {
	case sa == nil:
		return fmt.Errorf("no SA %s", id)
	case sa.cfg.Encap == nil:
		return fmt.Errorf("SA %s is not UDP-encapsulated", id)
	}
	sa.encapPeer.Store(&remote)
	return nil
}

func indexOf(s []*saState, sa *saState) int {
	for i, x := range s {
		if x == sa {
			return i
		}
	}
	return -1
}

// SAStatus is what `ipseclab sas` shows of one SA.
type SAStatus struct {
	ID        SAID      `json:"-"`
	Conn      string    `json:"connection"`
	Dir       string    `json:"dir"`
	Protocol  string    `json:"protocol"`
	SPI       string    `json:"spi"`
	Mode      string    `json:"mode"`
	Proposal  string    `json:"proposal"`
	UDPEncap  bool      `json:"udp_encap,omitempty"`
	Local     string    `json:"local"`
	Remote    string    `json:"remote"`
	LocalTS   string    `json:"local_ts"`
	RemoteTS  string    `json:"remote_ts"`
	Installed time.Time `json:"installed"`
	Current   bool      `json:"current,omitempty"` // outbound: the SA its policy uses now
	Seq       uint64    `json:"seq"`               // outbound: last sent; inbound: highest accepted
	MTU       int       `json:"mtu,omitempty"`     // outbound: the largest inner packet that fits the path
	Counters  Counters  `json:"counters"`
}

// SAs lists the installed SAs, by connection, then direction, then age.
func (d *DataPlane) SAs() []SAStatus {
	d.mu.Lock()
	var list []*saState
	for _, sa := range d.sad.all {
		list = append(list, sa)
	}
	d.mu.Unlock()
	sort.Slice(list, func(i, j int) bool {
		a, b := list[i], list[j]
		if a.cfg.Conn != b.cfg.Conn {
			return a.cfg.Conn < b.cfg.Conn
		}
		if a.cfg.Dir != b.cfg.Dir {
			return a.cfg.Dir < b.cfg.Dir
		}
		return a.installed.Before(b.installed)
	})
	out := make([]SAStatus, 0, len(list))
	for _, sa := range list {
		out = append(out, d.status(sa))
	}
	return out
}

func (d *DataPlane) status(sa *saState) SAStatus {
	c := &sa.cfg
	s := SAStatus{
		ID: sa.id, Conn: c.Conn, Dir: c.Dir.String(), Protocol: c.Protocol.String(),
		SPI: fmt.Sprintf("%08x", c.SPI), Mode: c.Mode.String(), Proposal: c.Proposal(),
		UDPEncap: c.Encap != nil, Local: c.Local.String(), Remote: c.Remote.String(),
		LocalTS: c.LocalTS.String(), RemoteTS: c.RemoteTS.String(),
		Installed: sa.installed, Counters: sa.c.snapshot(),
	}
	if peer := sa.encapPeer.Load(); peer != nil {
		s.Local = netip.AddrPortFrom(c.Local, c.Encap.LocalPort).String()
		s.Remote = peer.String()
	}
	if c.Dir == Outbound {
		s.Seq = sa.seq.Load()
		s.MTU = int(sa.innerMTU.Load())
		if p := d.spd.Load().byKey[c.policyKey()]; p != nil && p.current.Load() == sa {
			s.Current = true
		}
	} else {
		s.Seq = sa.replay.Top()
	}
	return s
}

// LastUsed is when the SA last carried a packet (to the start of its batch),
// as Linux's XFRM reports an SA's use time: dead peer detection takes an
// inbound packet as a sign of life. Zero if it never did, or is not
// installed.
func (d *DataPlane) LastUsed(id SAID) time.Time {
	d.mu.Lock()
	sa := d.sad.all[id]
	d.mu.Unlock()
	if sa == nil {
		return time.Time{}
	}
	if t := sa.lastUsed.Load(); t != 0 {
		return time.Unix(0, t)
	}
	return time.Time{}
}

// Stats returns the counters kept outside any SA.
func (d *DataPlane) Stats() Stats {
	s := Stats{
		NoPolicy: d.st.noPolicy.Load(), NotIPv4: d.st.notIPv4.Load(),
		UnknownSPI: d.st.unknownSPI.Load(), Malformed: d.st.malformed.Load(),
		Keepalives: d.st.keepalives.Load(), IKEReceived: d.st.ikeReceived.Load(),
		IKEDropped: d.st.ikeDropped.Load(), SendErrors: d.st.sendErrors.Load(),
		DeviceErrors: d.st.deviceErrors.Load(), MappingChanges: d.st.mappingChanges.Load(),

		ReplayDrops: d.st.saDrops[dropReplay].Load(), IntegrityFailures: d.st.saDrops[dropIntegrity].Load(),
		PolicyDrops: d.st.saDrops[dropPolicy].Load(), SAMalformed: d.st.saDrops[dropMalformed].Load(),
		SeqExhausted: d.st.saDrops[dropSeqExhausted].Load(), Dummies: d.st.saDrops[dropDummy].Load(),
	}
	for _, p := range d.spd.Load().policies {
		p.acqMu.Lock()
		s.AcquireHeld += uint64(len(p.held))
		p.acqMu.Unlock()
		s.AcquireDropped += p.heldDrops.Load()
	}
	return s
}

// account counts a packet that went through sa and applies its lifetimes.
func (d *DataPlane) account(sa *saState, n int) {
	if t := d.batchTime.Load(); sa.lastUsed.Load() != t {
		sa.lastUsed.Store(t)
	}
	pk := sa.c.packets.Add(1)
	by := sa.c.bytes.Add(uint64(n))
	lt := &sa.cfg.Lifetime
	switch {
	case lt.HardPackets != 0 && pk >= lt.HardPackets:
		d.expire(sa, true, "packets")
	case lt.HardBytes != 0 && by >= lt.HardBytes:
		d.expire(sa, true, "bytes")
	case sa.softFired.Load():
	case lt.SoftPackets != 0 && pk >= lt.SoftPackets:
		d.expire(sa, false, "packets")
	case lt.SoftBytes != 0 && by >= lt.SoftBytes:
		d.expire(sa, false, "bytes")
	}
}

// expire handles a soft or hard lifetime: once each per SA.
func (d *DataPlane) expire(sa *saState, hard bool, reason string) {
	if hard {
		if d.removeSA(sa.id) == nil {
			return // already gone
		}
	} else if !sa.softFired.CompareAndSwap(false, true) {
		return
	}
	x := Expiry{Conn: sa.cfg.Conn, ID: sa.id, Dir: sa.cfg.Dir, Hard: hard, Reason: reason, Counters: sa.c.snapshot()}
	// A soft limit starts a rekey, a new Quick Mode: it belongs to phase 2,
	// not to the SA's end.
	kind, step := "soft", events.StepPhase2
	if hard {
		kind, step = "hard", events.StepTermination
	}
	d.pub.Publish(events.Event{
		Kind: events.SAExpired, Step: step, Conn: sa.cfg.Conn, Level: events.Info,
		Message: fmt.Sprintf("%s SA %s reached its %s lifetime in %s", sa.cfg.Dir, sa.id, kind, reason),
		Explain: map[bool]string{
			false: "A soft lifetime asks IKE to negotiate a replacement SA before the hard limit.",
			true:  "A hard lifetime removes the SA: traffic needs a new SA from IKE.",
		}[hard],
		SA:     d.saInfo(sa),
		Fields: map[string]any{"hard": hard, "limit": reason, "packets": x.Counters.Packets, "bytes": x.Counters.Bytes},
	})
	if hard {
		d.publishCounters(sa, "expired")
	}
	if h := d.hooks.Load().Expire; h != nil {
		d.notes.post(func() { h(x) })
	}
}

func (d *DataPlane) saInfo(sa *saState) *events.SAInfo {
	c := &sa.cfg
	info := &events.SAInfo{
		Type: c.Protocol.String(), Proposal: c.Proposal(), Mode: c.Mode.String(), Encap: c.Encap != nil,
		LocalTS: c.LocalTS.String(), RemoteTS: c.RemoteTS.String(),
		Local: c.Local.String(), Remote: c.Remote.String(),
	}
	if c.Dir == Inbound {
		info.SPIIn = fmt.Sprintf("%08x", c.SPI)
	} else {
		info.SPIOut = fmt.Sprintf("%08x", c.SPI)
	}
	return info
}

// PublishCounters publishes an SACounters event for every installed SA.
func (d *DataPlane) PublishCounters() {
	d.mu.Lock()
	var list []*saState
	for _, sa := range d.sad.all {
		list = append(list, sa)
	}
	d.mu.Unlock()
	for _, sa := range list {
		d.publishCounters(sa, "periodic")
	}
}

func (d *DataPlane) publishCounters(sa *saState, why string) {
	c := sa.c.snapshot()
	d.pub.Publish(events.Event{
		Kind: events.SACounters, Step: events.StepData, Conn: sa.cfg.Conn,
		Message: fmt.Sprintf("%s SA %s: %d packets, %d bytes, drops: %d replay, %d integrity, %d policy",
			sa.cfg.Dir, sa.id, c.Packets, c.Bytes, c.ReplayDrops, c.IntegrityFailures, c.PolicyDrops),
		SA: d.saInfo(sa),
		Fields: map[string]any{
			"why": why, "dir": sa.cfg.Dir.String(), "packets": c.Packets, "bytes": c.Bytes,
			"replay_drops": c.ReplayDrops, "integrity_failures": c.IntegrityFailures,
			"policy_drops": c.PolicyDrops, "other_drops": c.OtherDrops,
		},
	})
}

// notifier runs callbacks one at a time, in order, off the packet path. Its
// queue is unbounded so that a slow IKE never stalls packets.
type notifier struct {
	mu   sync.Mutex
	q    []func()
	wake chan struct{}
	done chan struct{}
	quit bool
}

func (n *notifier) start() {
	n.wake = make(chan struct{}, 1)
	n.done = make(chan struct{})
	go func() {
		defer close(n.done)
		for {
			n.mu.Lock()
			q, quit := n.q, n.quit
			n.q = nil
			n.mu.Unlock()
			for _, f := range q {
				f()
			}
			if quit && len(q) == 0 {
				return
			}
			if len(q) == 0 {
				<-n.wake
			}
		}
	}()
}

func (n *notifier) post(f func()) {
	n.mu.Lock()
	n.q = append(n.q, f)
	n.mu.Unlock()
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

func (n *notifier) close() {
	n.mu.Lock()
	n.quit = true
	n.mu.Unlock()
	select {
	case n.wake <- struct{}{}:
	default:
	}
	<-n.done
}

package ike_test

import (
	"context"
	"fmt"
	mrand "math/rand/v2"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/ipseclab/ipseclab/events"
	"github.com/ipseclab/ipseclab/ipsec/esp"
	"github.com/ipseclab/ipseclab/ipsec/ike"
	"github.com/ipseclab/ipseclab/ipsec/proposal"
	"github.com/ipseclab/ipseclab/ipsec/stack/sim"
)

// The harness of this package's tests: two engines joined by a wire that
// delivers only when the test pumps it, one datagram at a time in the order
// sent, a manual clock, seeded randomness and a data plane that hands out
// SPIs in sequence. Everything an engine does is then a function of its
// seed: the same run gives the same bytes.

var (
	addrI = netip.MustParseAddr("192.0.2.1")
	addrR = netip.MustParseAddr("192.0.2.2")
)

// datagram is one message on the wire.
type datagram struct {
	from, to netip.AddrPort
	data     []byte
}

// wire queues what the engines send.
type wire struct {
	mu    sync.Mutex
	queue []datagram
	log   []datagram // everything ever sent
	// tamper, when set, may change a datagram on its way (after the log
	// recorded it as sent).
	tamper func(d *datagram)
}

// endpoint is one engine's transport.
type endpoint struct{ w *wire }

func (ep endpoint) SendIKE(local, remote netip.AddrPort, msg []byte) error {
	ep.w.mu.Lock()
	defer ep.w.mu.Unlock()
	d := datagram{local, remote, append([]byte(nil), msg...)}
	ep.w.queue = append(ep.w.queue, d)
	ep.w.log = append(ep.w.log, d)
	return nil
}

func (ep endpoint) SendKeepalive(netip.AddrPort) error { return nil }

// next takes the oldest queued datagram.
func (w *wire) next() (datagram, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.queue) == 0 {
		return datagram{}, false
	}
	d := w.queue[0]
	w.queue = w.queue[1:]
	if w.tamper != nil {
		w.tamper(&d)
	}
	return d, true
}

// fakeDataPlane is a data plane that records SAs and allocates SPIs in
// sequence.
type fakeDataPlane struct {
	mu       sync.Mutex
	next     uint32
	sas      map[esp.SAID]esp.SAConfig
	policies map[esp.PolicyKey]esp.Policy
	held     int // what Held reports: packets waiting for the outbound SA
	// policyErr, when set, is what AddPolicy answers: a kernel that
	// refuses the route.
	policyErr error
	// sent, when set, counts the datagrams on the wire so far; AddPolicy
	// notes it in policySent, so that a test can tell which message a
	// policy went in before.
	sent       func() int
	policySent map[esp.PolicyKey]int
}

func newFakeDataPlane(first uint32) *fakeDataPlane {
	return &fakeDataPlane{next: first, sas: map[esp.SAID]esp.SAConfig{}, policies: map[esp.PolicyKey]esp.Policy{}}
}

func (d *fakeDataPlane) AllocateSPI(esp.Protocol) (uint32, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.next++
	return d.next, nil
}
func (d *fakeDataPlane) ReleaseSPI(esp.Protocol, uint32) {}
func (d *fakeDataPlane) AddSA(c esp.SAConfig) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, dup := d.sas[c.ID()]; dup {
		return fmt.Errorf("SA %s exists", c.ID())
	}
	d.sas[c.ID()] = c
	return nil
}
func (d *fakeDataPlane) DeleteSA(id esp.SAID) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.sas, id)
	return nil
}
func (d *fakeDataPlane) AddPolicy(p esp.Policy) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.policyErr != nil {
		return d.policyErr
	}
	d.policies[p.Key()] = p
	if d.sent != nil {
		if d.policySent == nil {
			d.policySent = map[esp.PolicyKey]int{}
		}
		d.policySent[p.Key()] = d.sent()
	}
	return nil
}
func (d *fakeDataPlane) DeletePolicy(p esp.Policy) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.policies, p.Key())
	return nil
}
func (d *fakeDataPlane) Held(esp.PolicyKey) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.held
}
func (d *fakeDataPlane) SetNegotiating(k esp.PolicyKey, _ bool) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.policies[k]; !ok {
		return fmt.Errorf("no policy %+v", k)
	}
	return nil
}
func (d *fakeDataPlane) UpdateEncap(id esp.SAID, remote netip.AddrPort) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	c, ok := d.sas[id]
	if !ok || c.Encap == nil {
		return fmt.Errorf("no UDP-encapsulated SA %s", id)
	}
	c.Encap = &esp.UDPEncap{LocalPort: c.Encap.LocalPort, RemotePort: remote.Port()}
	d.sas[id] = c
	return nil
}
func (d *fakeDataPlane) SAs() []esp.SAStatus {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []esp.SAStatus
	for id := range d.sas {
		out = append(out, esp.SAStatus{ID: id})
	}
	return out
}

func (d *fakeDataPlane) LastUsed(esp.SAID) time.Time { return time.Time{} }

// pair is an initiator and a responder engine on one wire.
type pair struct {
	wire   *wire
	clock  *sim.Clock
	i, r   *ike.Engine
	dpI    *fakeDataPlane
	dpR    *fakeDataPlane
	byAddr map[netip.Addr]*ike.Engine
}

func conns(t testing.TB, mode ike.Mode, ikeP, espP string) (i, r ike.Connection) {
	ip, err := proposal.ParseList(proposal.IKE, []string{ikeP})
	if err != nil {
		t.Fatal(err)
	}
	ep, err := proposal.ParseList(proposal.ESP, []string{espP})
	if err != nil {
		t.Fatal(err)
	}
	i = ike.Connection{
		Name: "lab", Local: addrI, Remote: addrR, PSK: "secret", Mode: mode, Proposals: ip,
		Child: ike.Child{LocalTS: netip.MustParsePrefix("10.1.0.0/24"), RemoteTS: netip.MustParsePrefix("10.2.0.0/24"), Proposals: ep},
	}
	r = i
	r.Role, r.Local, r.Remote = ike.Responder, addrR, addrI
	r.Child.LocalTS, r.Child.RemoteTS = i.Child.RemoteTS, i.Child.LocalTS
	return i, r
}

func newPair(t testing.TB, seed uint64, ci, cr ike.Connection) *pair {
	return newPairOn(t, seed, ci, cr, nil)
}

// pairEpoch is when the simulated clock of a pair starts.
var pairEpoch = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// newPairOn is newPair with both engines publishing to bus (nil: none).
func newPairOn(t testing.TB, seed uint64, ci, cr ike.Connection, bus *events.Bus) *pair {
	return newPairKeys(t, seed, ci, cr, bus, false)
}

// newPairKeys is newPairOn whose engines also publish the keys they derive
// (Config.PublishKeys) when keys is set.
func newPairKeys(t testing.TB, seed uint64, ci, cr ike.Connection, bus *events.Bus, keys bool) *pair {
	p := &pair{wire: &wire{}, clock: sim.NewClock(pairEpoch), dpI: newFakeDataPlane(0x1000), dpR: newFakeDataPlane(0x2000)}
	engine := func(c ike.Connection, dp *fakeDataPlane, s uint64) *ike.Engine {
		var key [32]byte
		key[0], key[1] = byte(seed), byte(s)
		e, err := ike.New(ike.Config{Node: c.Local.String(), Events: bus, Connections: []ike.Connection{c}, Transport: endpoint{p.wire},
			DataPlane: dp, Clock: p.clock, Rand: mrand.NewChaCha8(key), PublishKeys: keys})
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	p.i, p.r = engine(ci, p.dpI, 1), engine(cr, p.dpR, 2)
	p.byAddr = map[netip.Addr]*ike.Engine{addrI: p.i, addrR: p.r}
	return p
}

// deliver hands the next queued datagram to its engine.
func (p *pair) deliver() bool {
	d, ok := p.wire.next()
	if !ok {
		return false
	}
	if e := p.byAddr[d.to.Addr()]; e != nil {
		e.Receive(ike.Packet{Local: d.to, Remote: d.from, Data: d.data})
	}
	return true
}

// initiate runs the initiator's Initiate while pumping the wire, and returns
// its result.
func (p *pair) initiate(t testing.TB) error {
	done := make(chan error, 1)
	go func() { done <- p.i.Initiate(context.Background(), "lab") }()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		if p.deliver() {
			continue
		}
		select {
		case err := <-done:
			for p.deliver() {
			}
			return err
		case <-time.After(time.Millisecond):
		}
	}
	t.Fatal("Initiate did not return")
	return nil
}

package esp

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultAcquireQueue is how many packets a policy holds while IKE negotiates
// its first SA, when the policy leaves QueueLimit at zero.
const DefaultAcquireQueue = 64

// DefaultAcquireRetry is how long after an unanswered acquire another packet
// may trigger the next one, like the kernel's larval SA lifetime.
const DefaultAcquireRetry = 30 * time.Second

// Policy is an SPD entry with action PROTECT (RFC 4301 §4.4.1): outbound
// packets from LocalTS to RemoteTS must go through an SA of the connection
// Conn. A packet from the TUN that matches no policy is dropped: the TUN only
// receives what the routes for protected subnets send it.
//
// An entry is its connection and its selectors (PolicyKey): a connection may
// hold several, one per pair of selectors it negotiated, as a responder that
// serves several peers does. An Outbound SA serves the entry with its own
// Conn, LocalTS and RemoteTS.
type Policy struct {
	Conn              string
	LocalTS, RemoteTS TrafficSelector
	QueueLimit        int // packets held while waiting for an SA; 0: DefaultAcquireQueue
}

// PolicyKey identifies an SPD entry.
type PolicyKey struct {
	Conn              string
	LocalTS, RemoteTS TrafficSelector
}

// Key is the entry the policy installs or replaces.
func (p Policy) Key() PolicyKey { return PolicyKey{p.Conn, p.LocalTS, p.RemoteTS} }

// policyKey is the entry an outbound SA serves.
func (c *SAConfig) policyKey() PolicyKey { return PolicyKey{c.Conn, c.LocalTS, c.RemoteTS} }

// AcquireRequest is what the data plane tells IKE when an outbound packet
// matched a policy that has no SA (step 1 of a tunnel's life).
type AcquireRequest struct {
	Conn              string
	LocalTS, RemoteTS TrafficSelector // the policy's selectors
	Src, Dst          netip.Addr      // the triggering packet
	Protocol          uint8
	SrcPort, DstPort  uint16
	Packet            string // the triggering packet, described for people
}

// policy is a Policy with its outbound SAs and its acquire state.
type policy struct {
	Policy
	prio int

	current atomic.Pointer[saState] // the newest live outbound SA, or nil

	// What refreshRouteMTUs last looked at (only its goroutine touches
	// them): the SA, and its sequence number then.
	mtuSA  *saState
	mtuSeq uint64

	// Guarded by the data plane's mutex: every installed outbound SA, oldest
	// first, so that deleting the newest falls back to the one before it.
	outs []*saState

	acqMu       sync.Mutex
	acquiring   bool
	acquired    time.Time // when the last acquire fired
	negotiating bool      // IKE already negotiates: hold without acquiring (DataPlane.SetNegotiating)
	held        [][]byte  // packets waiting for an SA, copies
	heldDrops   atomic.Uint64
}

func newPolicy(p Policy) (*policy, error) {
	if p.Conn == "" {
		return nil, errors.New("a policy needs a connection name")
	}
	for _, ts := range []TrafficSelector{p.LocalTS, p.RemoteTS} {
		if !ts.Prefix.IsValid() || !ts.Prefix.Addr().Is4() {
			return nil, fmt.Errorf("policy %s: selector %s: an IPv4 prefix is required", p.Conn, ts)
		}
	}
	if p.QueueLimit <= 0 {
		p.QueueLimit = DefaultAcquireQueue
	}
	return &policy{Policy: p, prio: p.LocalTS.specificity() + p.RemoteTS.specificity()}, nil
}

func (p *policy) matches(f *flow) bool {
	return p.LocalTS.matches(f.src, f, f.sport) && p.RemoteTS.matches(f.dst, f, f.dport)
}

// spd is an immutable, ordered snapshot of the policies. The data plane swaps
// in a new one on every change, so the per-packet lookup takes no lock.
type spd struct {
	policies []*policy // most specific first
	byKey    map[PolicyKey]*policy
}

func (s *spd) lookup(f *flow) *policy {
	for _, p := range s.policies {
		if p.matches(f) {
			return p
		}
	}
	return nil
}

// with returns the SPD with p added, replacing the entry with p's key.
func (s *spd) with(p *policy) *spd {
	n := s.without(p.Key())
	n.policies = append(n.policies, p)
	n.byKey[p.Key()] = p
	slices.SortStableFunc(n.policies, func(a, b *policy) int { return b.prio - a.prio })
	return n
}

// without returns the SPD without the entry k.
func (s *spd) without(k PolicyKey) *spd {
	n := &spd{byKey: make(map[PolicyKey]*policy, len(s.byKey)+1)}
	for _, q := range s.policies {
		if q.Key() != k {
			n.policies = append(n.policies, q)
			n.byKey[q.Key()] = q
		}
	}
	return n
}

// refreshCurrent points the policy at its newest live SA. Caller holds the data
// plane's mutex.
func (p *policy) refreshCurrent() {
	for i := len(p.outs) - 1; i >= 0; i-- {
		if !p.outs[i].dead.Load() {
			p.current.Store(p.outs[i])
			return
		}
	}
	p.current.Store(nil)
}

// hold queues a copy of a packet waiting for an SA and reports whether an
// acquire should fire now: the first time, and again once the previous one is
// older than retry, unless IKE already negotiates the policy's SAs. A full
// queue drops the new packet (tail drop, like the kernel's XFRM policy
// queue), counted. If an SA became current since the caller looked, the
// packet is not queued: hold returns the SA to send it through.
func (p *policy) hold(pkt []byte, now time.Time, retry time.Duration) (sa *saState, fire bool) {
	p.acqMu.Lock()
	defer p.acqMu.Unlock()
	// AddSA makes an SA current before it takes the held packets under this
	// lock: a packet queued after that would wait for the next SA.
	if sa := p.current.Load(); sa != nil {
		return sa, false
	}
	if len(p.held) < p.QueueLimit {
		p.held = append(p.held, append([]byte(nil), pkt...))
	} else {
		p.heldDrops.Add(1)
	}
	if p.negotiating {
		return nil, false
	}
	if !p.acquiring || now.Sub(p.acquired) >= retry {
		p.acquiring, p.acquired = true, now
		return nil, true
	}
	return nil, false
}

// release hands over the held packets once an outbound SA is installed,
// which also ends any acquire or negotiation.
func (p *policy) release() [][]byte {
	p.acqMu.Lock()
	defer p.acqMu.Unlock()
	held := p.held
	p.held, p.acquiring, p.negotiating = nil, false, false
	return held
}

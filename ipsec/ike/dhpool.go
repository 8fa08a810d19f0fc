package ike

import (
	"crypto/rand"
	"sync"

	"github.com/ipseclab/ipseclab/ipsec/isakmp"
	"github.com/ipseclab/ipseclab/ipsec/keymat"
)

// dhPool keeps one fresh Diffie-Hellman key per group drawn ahead, on a
// goroutine of its own: a negotiation takes it when it needs a key (the
// initiator at Main Mode 2/6, the responder at 3/6, Quick Mode with PFS),
// and the next is drawn meanwhile, on another core when there is one. Key
// generation (a fixed-base exponentiation in MODP2048, a scalar
// multiplication in Curve25519) then no longer lies between a message and
// its answer, which is most of a negotiation's time one after another. A
// key is still drawn only for one taken, taken at the same points as
// before, so a flood of first messages costs no more keys than it did.
//
// Only an engine on crypto/rand pools: with an injected random source (the
// deterministic tests), keys are drawn in line, in the order the exchanges
// ask for them, as before.
type dhPool struct {
	mu      sync.Mutex
	ready   map[isakmp.GroupDescription]*keymat.PrivateKey
	drawing map[isakmp.GroupDescription]bool
	closed  bool
	wg      sync.WaitGroup
}

// take returns a key of group g: the one drawn ahead if it is ready, else
// one drawn now; either way the next is drawn in the background.
func (p *dhPool) take(g *keymat.Group) (*keymat.PrivateKey, error) {
	id := g.ID()
	p.mu.Lock()
	k := p.ready[id]
	delete(p.ready, id)
	p.refill(g)
	p.mu.Unlock()
	if k != nil {
		return k, nil
	}
	return g.GenerateKey(rand.Reader)
}

// refill draws the next key of g unless one is ready or being drawn.
// p.mu is held.
func (p *dhPool) refill(g *keymat.Group) {
	id := g.ID()
	if p.closed || p.ready[id] != nil || p.drawing[id] {
		return
	}
	if p.drawing == nil {
		p.drawing = map[isakmp.GroupDescription]bool{}
		p.ready = map[isakmp.GroupDescription]*keymat.PrivateKey{}
	}
	p.drawing[id] = true
	p.wg.Go(func() {
		k, err := g.GenerateKey(rand.Reader)
		p.mu.Lock()
		defer p.mu.Unlock()
		delete(p.drawing, id)
		switch {
		case err != nil: // take draws in line then
		case p.closed:
			k.Zero()
		default:
			p.ready[id] = k
		}
	})
}

// close wipes the keys drawn ahead, waiting for those being drawn, and
// draws no more.
func (p *dhPool) close() {
	p.mu.Lock()
	p.closed = true
	for id, k := range p.ready {
		k.Zero()
		delete(p.ready, id)
	}
	p.mu.Unlock()
	p.wg.Wait()
}

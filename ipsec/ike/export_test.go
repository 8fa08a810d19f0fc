package ike

import (
	"errors"
	"fmt"

	"github.com/ipseclab/ipseclab/ipsec/isakmp"
)

// Phase1Probe keeps hold of the phase 1 state of an ISAKMP SA, so that a
// test can see what became of it once the exchange is over.
type Phase1Probe struct {
	sa *isakmpSA
	p1 *phase1
}

// ProbePhase1 returns a probe of the newest ISAKMP SA of the connection that
// is still in phase 1, or nil when none is.
func (e *Engine) ProbePhase1(conn string) *Phase1Probe {
	e.mu.Lock()
	defer e.mu.Unlock()
	c := e.byName[conn]
	for i := len(c.sas) - 1; i >= 0; i-- {
		if sa := c.sas[i]; sa.p1 != nil {
			return &Phase1Probe{sa: sa, p1: sa.p1}
		}
	}
	return nil
}

// Held reports whether the SA still holds its phase 1 state.
func (pr *Phase1Probe) Held() bool {
	pr.sa.e.mu.Lock()
	defer pr.sa.e.mu.Unlock()
	return pr.sa.p1 != nil
}

// Wiped reports what of the secrets the probed state held survives: nil
// when both nonces read zero and the private key refuses to compute a
// shared secret.
func (pr *Phase1Probe) Wiped() error {
	pr.sa.e.mu.Lock()
	defer pr.sa.e.mu.Unlock()
	p1 := pr.p1
	var errs []error
	if p1.dh == nil {
		errs = append(errs, errors.New("no Diffie-Hellman key was ever drawn"))
	} else if _, err := p1.dh.SharedSecret(p1.dh.Public()); err == nil {
		errs = append(errs, errors.New("the Diffie-Hellman private key still computes"))
	}
	for name, n := range map[string][]byte{"Ni_b": p1.ni, "Nr_b": p1.nr} {
		if len(n) == 0 {
			errs = append(errs, fmt.Errorf("%s was never set", name))
		}
		for _, b := range n {
			if b != 0 {
				errs = append(errs, fmt.Errorf("%s was not wiped", name))
				break
			}
		}
	}
	return errors.Join(errs...)
}

// PFSKeysWiped reports, for every Quick Mode the engine still remembers,
// whether its PFS private key refuses to compute: nil when all do. n is how
// many keys it looked at.
func (e *Engine) PFSKeysWiped() (n int, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	var errs []error
	for _, c := range e.conns {
		for _, sa := range c.sas {
			for mid, qm := range sa.quick {
				if qm.dh == nil {
					continue
				}
				n++
				if _, err := qm.dh.SharedSecret(qm.dh.Public()); err == nil {
					errs = append(errs, fmt.Errorf("the PFS key of Quick Mode %08x still computes", mid))
				}
			}
		}
	}
	return n, errors.Join(errs...)
}

// SendDPD sends an R-U-THERE (or, with ack, an R-U-THERE-ACK) with the given
// sequence number on the connection's established ISAKMP SA, as a peer that
// miscounts or replays would.
func (e *Engine) SendDPD(conn string, ack bool, seq uint32) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, sa := range e.byName[conn].sas {
		if sa.state == established {
			t := isakmp.NotifyRUThere
			if ack {
				t = isakmp.NotifyRUThereAck
			}
			e.sendInformational(sa, isakmp.NewDPD(t, sa.ckyI, sa.ckyR, seq))
			return nil
		}
	}
	return errors.New("no established ISAKMP SA")
}

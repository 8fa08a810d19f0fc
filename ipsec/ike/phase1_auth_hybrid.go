package ike

import (
	"crypto/hmac"
	"crypto/x509"
	"fmt"

	"github.com/ipseclab/ipseclab/ipsec/isakmp"
	"github.com/ipseclab/ipseclab/ipsec/keymat"
)

// Hybrid authentication (draft-ietf-ipsec-isakmp-hybrid-auth-05): phase 1 is
// asymmetric. The gateway proves itself as with signatures, with its
// certificate and SIG_R; the client, which has no certificate, sends HASH_I,
// which proves nothing here (SKEYID = prf(Ni_b | Nr_b, g^xy) holds no secret
// of the client's): it only binds the exchange. The client is authenticated
// after phase 1, by XAUTH, which Validate requires. The method number is
// HybridInitRSA (64221): the initiator of phase 1 is the client.
type hybridAuth struct {
	gateway bool
	sig     *pubkeyAuth // the gateway's signing, or the client's check of it
}

func newHybridAuth(e *Engine, c *Connection) *hybridAuth {
	h := &hybridAuth{gateway: c.Auth.Key != nil}
	if h.gateway {
		h.sig = newPubkeyAuth(e, c)
	} else {
		h.sig = &pubkeyAuth{cfg: &c.Auth, method: isakmp.AuthMethodRSASig, rand: e.rand, now: e.clock.Now}
	}
	h.sig.offered = isakmp.AuthMethodHybridInitRSA
	return h
}

func (h *hybridAuth) number() isakmp.AuthMethod { return isakmp.AuthMethodHybridInitRSA }

func (h *hybridAuth) keying(p *keymat.Phase1Params) { p.AuthMethod = isakmp.AuthMethodHybridInitRSA }

// requests: the client asks for the gateway's certificate; the gateway asks
// for none.
func (h *hybridAuth) requests() []isakmp.Payload {
	if h.gateway {
		return nil
	}
	return h.sig.requests()
}

func (h *hybridAuth) proof(hash []byte) ([]isakmp.Payload, error) {
	if h.gateway {
		return h.sig.proof(hash)
	}
	return []isakmp.Payload{&isakmp.Hash{Data: hash}}, nil
}

func (h *hybridAuth) carries(m *isakmp.Message) bool {
	if h.gateway {
		return isakmp.First[*isakmp.Hash](m) != nil
	}
	return h.sig.carries(m)
}

func (h *hybridAuth) verify(m *isakmp.Message, id *isakmp.ID, want []byte, who Role) error {
	if !h.gateway {
		return h.sig.verify(m, id, want, who)
	}
	if hash := isakmp.First[*isakmp.Hash](m); hash == nil || !hmac.Equal(hash.Data, want) {
		return fmt.Errorf("%s does not match: the exchange was altered", h.name(who))
	}
	return nil
}

// verifiedPeer is the gateway's certificate, on the client.
func (h *hybridAuth) verifiedPeer() *x509.Certificate { return h.sig.peer }

func (h *hybridAuth) name(who Role) string {
	if who == Initiator {
		return "HASH_I"
	}
	return "SIG_R"
}

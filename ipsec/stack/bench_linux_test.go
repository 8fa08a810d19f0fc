package stack_test

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/ipseclab/ipseclab/ipsec/ike"
	"github.com/ipseclab/ipseclab/ipsec/pki"
	"github.com/ipseclab/ipseclab/ipsec/stack"
	"github.com/ipseclab/ipseclab/strongswan/swantest"
)

// BenchmarkNegotiations measures Main Mode plus Quick Mode negotiations per
// second between two of our stacks in two namespaces, over real sockets, one
// after another (initiate, then terminate, like swantest's charon baseline),
// and beside it charon ↔ charon with the same proposals in the same run. It
// reports both rates and their ratio. The certificate baselines authenticate
// both pairs with signatures of the same key type, from a CA of their own.
func BenchmarkNegotiations(b *testing.B) {
	for _, bl := range append(swantest.NegotiationBaselines, swantest.CertNegotiationBaselines...) {
		b.Run(bl.Name, func(b *testing.B) {
			a, peer := nsPair(b)
			ca := ike.Connection{
				Name: "lab", Role: ike.Initiator, Local: a.outer, Remote: peer.outer, PSK: psk,
				Proposals: ikeProposals(b, bl.IKE),
				Child:     ike.Child{LocalTS: netip.PrefixFrom(a.inner, 32), RemoteTS: netip.PrefixFrom(peer.inner, 32), Proposals: espProposals(b, bl.ESP)},
			}
			cb := ca
			cb.Role, cb.Local, cb.Remote = ike.Responder, peer.outer, a.outer
			cb.Child.LocalTS, cb.Child.RemoteTS = ca.Child.RemoteTS, ca.Child.LocalTS
			if bl.Key != "" {
				ca.PSK, cb.PSK = "", ""
				ca.Auth, cb.Auth = benchCerts(b, pki.KeyType(bl.Key), a.outer, peer.outer)
			}
			sa := benchStack(b, a, ca)
			benchStack(b, peer, cb)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()

			b.ResetTimer()
			for range b.N {
				if err := sa.Initiate(ctx, "lab"); err != nil {
					b.Fatal(err)
				}
				if err := sa.Terminate(ctx, "lab"); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			ours := float64(b.N) / b.Elapsed().Seconds()

			// The baseline, on the same machine at the same moment.
			cfg := swantest.PairConfig{IKEProposal: bl.IKE, ESPProposal: bl.ESP}
			if bl.Key != "" {
				cfg.Certs = swantest.GenerateCerts(b, bl.Key)
			}
			pair := swantest.StartPair(b, cfg)
			n := min(b.N, 100)
			start := time.Now()
			for range n {
				if err := pair.Negotiate(ctx); err != nil {
					b.Fatal(err)
				}
			}
			charon := float64(n) / time.Since(start).Seconds()
			b.ReportMetric(ours, "negotiations/s")
			b.ReportMetric(charon, "charon-negotiations/s")
			b.ReportMetric(ours/charon, "x-charon")
		})
	}
}

// benchCerts is a CA and a certificate of key type kt for each of two
// addresses, as the two sides' authentication.
func benchCerts(b *testing.B, kt pki.KeyType, addrA, addrB netip.Addr) (ike.Auth, ike.Auth) {
	now := time.Now()
	ca, err := pki.NewCA("bench CA", kt, now.Add(-time.Hour), now.Add(24*time.Hour), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	auth := func(cn string, addr netip.Addr) ike.Auth {
		c, err := ca.Issue(pki.IssueRequest{Subject: pkix.Name{CommonName: cn}, IPs: []net.IP{addr.AsSlice()}, KeyType: kt,
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour)}, rand.Reader)
		if err != nil {
			b.Fatal(err)
		}
		return ike.Auth{Method: ike.AuthPubkey, Chain: c.Chain, Key: c.Key, CAs: []*x509.Certificate{ca.Cert}}
	}
	return auth("a", addrA), auth("b", addrB)
}

func benchStack(b testing.TB, n *nsNode, c ike.Connection) *stack.Stack {
	s, err := stack.New(stack.Config{Node: n.name, Host: stack.Namespace{Handle: n.h}, Connections: []ike.Connection{c}})
	if err != nil {
		b.Fatal(err)
	}
	if err := s.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

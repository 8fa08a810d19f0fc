package stack_test

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/ipseclab/ipseclab/ipsec/ike"
	"github.com/ipseclab/ipseclab/ipsec/stack"
	"github.com/ipseclab/ipseclab/strongswan/swantest"
)

// BenchmarkNegotiations measures Main Mode plus Quick Mode negotiations per
// second between two of our stacks in two namespaces, over real sockets, one
// after another (initiate, then terminate, like swantest's charon baseline),
// and beside it charon ↔ charon with the same proposals in the same run. It
// reports both rates and their ratio.
func BenchmarkNegotiations(b *testing.B) {
	for _, bl := range swantest.NegotiationBaselines {
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
			pair := swantest.StartPair(b, swantest.PairConfig{IKEProposal: bl.IKE, ESPProposal: bl.ESP})
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

func benchStack(b *testing.B, n *nsNode, c ike.Connection) *stack.Stack {
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

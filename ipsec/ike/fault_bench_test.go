package ike_test

import (
	"testing"

	"github.com/ipseclab/ipseclab/ipsec/ike"
)

// BenchmarkHarnessNegotiation is Main Mode plus Quick Mode between two
// engines over the harness's wire, driven in one goroutine (a start: start
// connection, the wire pumped until empty), with no fault armed: the send
// path's fault hooks, one nil check per message composed and sent, must
// cost nothing measurable here.
func BenchmarkHarnessNegotiation(b *testing.B) {
	ci, cr := conns(b, ike.MainMode, "aes128-sha256-curve25519", "aes128gcm16")
	ci.Child.Start = ike.StartStart
	for i := range b.N {
		p := newPair(b, uint64(i), ci, cr)
		if err := p.i.Start(); err != nil {
			b.Fatal(err)
		}
		for p.deliver() {
		}
		if len(p.r.SAs().IPsec) != 1 {
			b.Fatal("no IPsec SAs")
		}
	}
}

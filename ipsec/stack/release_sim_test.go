package stack_test

import (
	"testing"
	"time"

	"github.com/ipseclab/ipseclab/ipsec/ike"
)

// Close tells the peer (Delete payloads); Release, what a lab's destroy
// does, where every peer goes too, stops at once and tells it nothing.
func TestReleaseSendsNothingWhereCloseDeletes(t *testing.T) {
	for _, release := range []bool{false, true} {
		name := map[bool]string{false: "close", true: "release"}[release]
		t.Run(name, func(t *testing.T) {
			w := newWorld(t)
			ca, cb := connPair(t, ike.MainMode, "aes128-sha256-modp2048", "aes128gcm16")
			a, b := w.pair(ca, cb, nil)
			if err := a.stack.Initiate(ctx(t), "lab"); err != nil {
				t.Fatal(err)
			}
			checkPairMirrors(t, a, b)
			if release {
				if err := a.stack.Release(); err != nil {
					t.Fatal(err)
				}
			} else if err := a.stack.Close(); err != nil {
				t.Fatal(err)
			}
			if err := a.stack.Initiate(ctx(t), "lab"); err == nil {
				t.Error("a stopped stack initiated")
			}
			if isakmp, ipsec := a.established(); isakmp+ipsec != 0 {
				t.Errorf("the stopped stack still lists %d ISAKMP and %d IPsec SAs", isakmp, ipsec)
			}
			if release {
				w.run(3 * time.Second)
				if isakmp, ipsec := b.established(); isakmp != 1 || ipsec != 1 {
					t.Errorf("after Release the peer holds %d ISAKMP and %d IPsec SAs; it was told something", isakmp, ipsec)
				}
			} else {
				eventually(t, "the peer to delete its SAs", func() bool {
					isakmp, ipsec := b.established()
					return isakmp == 0 && ipsec == 0
				})
			}
		})
	}
}

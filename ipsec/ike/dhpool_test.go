package ike

import (
	"bytes"
	"crypto/rand"
	"testing"
	"time"

	"github.com/ipseclab/ipseclab/ipsec/isakmp"
	"github.com/ipseclab/ipseclab/ipsec/keymat"
)

// TestDHPoolDrawsAhead: each take returns a fresh key of the group that
// agrees with a peer on a secret; after a take the next key is drawn in the
// background and the following take gets it; close wipes what was drawn
// ahead and draws nothing more.
func TestDHPoolDrawsAhead(t *testing.T) {
	for _, id := range []isakmp.GroupDescription{isakmp.GroupMODP2048, isakmp.GroupCurve25519} {
		g, err := keymat.LookupGroup(id)
		if err != nil {
			t.Fatal(err)
		}
		t.Run(g.String(), func(t *testing.T) {
			var p dhPool
			peer, _ := g.GenerateKey(rand.Reader)
			seen := map[string]bool{}
			for i := range 4 {
				k, err := p.take(g)
				if err != nil {
					t.Fatal(err)
				}
				if k.Group() != g || seen[string(k.Public())] {
					t.Fatalf("take %d: group %s, public value seen before: %v", i, k.Group(), seen[string(k.Public())])
				}
				seen[string(k.Public())] = true
				a, errA := k.SharedSecret(peer.Public())
				b, errB := peer.SharedSecret(k.Public())
				if errA != nil || errB != nil || !bytes.Equal(a, b) {
					t.Fatalf("take %d: the key does not agree with a peer: %v, %v", i, errA, errB)
				}
				ahead := waitReady(t, &p, id)
				if next, _ := p.take(g); next != ahead {
					t.Fatalf("take %d: the key drawn ahead was not the next one taken", i)
				}
				seen[string(ahead.Public())] = true
			}
			// One is being drawn again (the last take asked for it).
			ahead := waitReady(t, &p, id)
			p.close()
			if _, err := ahead.SharedSecret(peer.Public()); err == nil {
				t.Error("a key drawn ahead outlived close")
			}
			if _, err := p.take(g); err != nil {
				t.Fatal(err)
			}
			p.mu.Lock()
			defer p.mu.Unlock()
			if len(p.ready) != 0 || len(p.drawing) != 0 {
				t.Errorf("a closed pool draws keys: %d ready, %d being drawn", len(p.ready), len(p.drawing))
			}
		})
	}
}

func waitReady(t *testing.T, p *dhPool, id isakmp.GroupDescription) *keymat.PrivateKey {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		p.mu.Lock()
		k := p.ready[id]
		p.mu.Unlock()
		if k != nil {
			return k
		}
	}
	t.Fatal("no key was drawn ahead")
	return nil
}

package ike_test

import (
	"bytes"
	"testing"

	"github.com/ipseclab/ipseclab/ipsec/ike"
)

// TestDeterministicTranscript: with the same seeds, clock and SPIs, two runs
// put the same bytes on the wire, message for message: the engine draws
// all its randomness (cookies, nonces, Diffie-Hellman keys, message IDs,
// DPD sequence numbers) from the injected reader.
func TestDeterministicTranscript(t *testing.T) {
	for _, mode := range []ike.Mode{ike.MainMode, ike.AggressiveMode} {
		t.Run(mode.String(), func(t *testing.T) {
			run := func(seed uint64) [][]byte {
				ci, cr := conns(t, mode, "aes128-sha256-curve25519", "aes128gcm16-curve25519")
				p := newPair(t, seed, ci, cr)
				if err := p.initiate(t); err != nil {
					t.Fatal(err)
				}
				var out [][]byte
				for _, d := range p.wire.log {
					out = append(out, d.data)
				}
				return out
			}
			a, b, c := run(1), run(1), run(2)
			want := 6 + 3
			if mode == ike.AggressiveMode {
				want = 3 + 3
			}
			if len(a) != want {
				t.Fatalf("%d messages, want %d", len(a), want)
			}
			if len(b) != len(a) {
				t.Fatalf("second run: %d messages", len(b))
			}
			for i := range a {
				if !bytes.Equal(a[i], b[i]) {
					t.Errorf("message %d differs between two runs with the same seed", i+1)
				}
				if bytes.Equal(a[i], c[i]) {
					t.Errorf("message %d is the same under another seed", i+1)
				}
			}
		})
	}
}

// TestEngineSAs: after a negotiation each side lists one established ISAKMP
// SA and one installed pair, with the data plane holding both SAs and the
// policy.
func TestEngineSAs(t *testing.T) {
	ci, cr := conns(t, ike.MainMode, "aes256-sha384-ecp384", "aes128-sha256-ecp256")
	p := newPair(t, 3, ci, cr)
	if err := p.initiate(t); err != nil {
		t.Fatal(err)
	}
	for _, side := range []struct {
		name string
		e    *ike.Engine
		dp   *fakeDataPlane
	}{{"initiator", p.i, p.dpI}, {"responder", p.r, p.dpR}} {
		st := side.e.SAs()
		if len(st.ISAKMP) != 1 || st.ISAKMP[0].State != "established" || st.ISAKMP[0].Proposal != "aes256-sha384-ecp384" {
			t.Errorf("%s ISAKMP: %+v", side.name, st.ISAKMP)
		}
		if len(st.IPsec) != 1 || st.IPsec[0].State != "installed" || st.IPsec[0].Proposal != "aes128-sha256-ecp256" {
			t.Errorf("%s IPsec: %+v", side.name, st.IPsec)
		}
		if len(side.dp.sas) != 2 || len(side.dp.policies) != 1 {
			t.Errorf("%s data plane: %d SAs, %d policies", side.name, len(side.dp.sas), len(side.dp.policies))
		}
		if s := side.e.Stats(); s.InternalErrors != 0 || s.Malformed != 0 {
			t.Errorf("%s stats: %+v", side.name, s)
		}
	}
	// The keys of each direction are the same on both ends.
	for id, out := range p.dpI.sas {
		in, ok := p.dpR.sas[id]
		if !ok || !bytes.Equal(in.EncKey, out.EncKey) || !bytes.Equal(in.IntegKey, out.IntegKey) || in.Dir == out.Dir {
			t.Errorf("SA %s: initiator and responder disagree", id)
		}
	}
}

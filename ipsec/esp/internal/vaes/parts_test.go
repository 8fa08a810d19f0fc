package vaes

import "testing"

func BenchmarkParts1400(b *testing.B) {
	g, _ := newGCM(make([]byte, 16))
	buf := make([]byte, 1400)
	aad := make([]byte, 8)
	var ctr, j0, tag [16]byte
	b.Run("ctr", func(b *testing.B) {
		for b.Loop() {
			ctrXOR(&g.ks.enc, g.ks.rounds, &ctr, &buf[0], &buf[0], 1400)
		}
	})
	b.Run("tag", func(b *testing.B) {
		for b.Loop() {
			tagAggregated(&g.pow, &g.kara, maxPowers-90, &aad[0], 8, &buf[0], 1400, &g.ks.enc, g.ks.rounds, &j0, &tag)
		}
	})
	b.Run("seal", func(b *testing.B) {
		n := make([]byte, 12)
		big := make([]byte, 1400, 1416)
		for b.Loop() {
			g.Seal(big[:0], n, big, aad)
		}
	})
	b.Run("open", func(b *testing.B) {
		n := make([]byte, 12)
		sealed := g.Seal(nil, n, buf, aad)
		out := make([]byte, 1400)
		for b.Loop() {
			if _, err := g.Open(out[:0], n, sealed, aad); err != nil {
				b.Fatal(err)
			}
		}
	})
}

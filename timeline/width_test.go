package timeline

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/rivo/uniseg"
)

// TestKnownWidthsAgreeWithUniseg: every rune the width fast path knows has
// uniseg's width, alone and beside any other of them (no two of them join
// into one grapheme cluster).
func TestKnownWidthsAgreeWithUniseg(t *testing.T) {
	var runes []rune
	for r := rune(0); r < 0x20000; r++ {
		if w := knownWidth(r); w > 0 {
			runes = append(runes, r)
			if u := uniseg.StringWidth(string(r)); u != w {
				t.Errorf("U+%04X %q: uniseg width %d, the fast path says %d", r, r, u, w)
			}
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 300000 {
		a, b := runes[rng.IntN(len(runes))], runes[rng.IntN(len(runes))]
		if i < len(runes) {
			a, b = runes[i], '🔒' // each beside the emoji, both ways
			if i%2 == 1 {
				a, b = b, a
			}
		}
		s := string(a) + string(b)
		if w := knownWidth(a) + knownWidth(b); uniseg.StringWidth(s) != w || uniseg.GraphemeClusterCount(s) != 2 {
			t.Fatalf("%q: uniseg width %d in %d clusters, the fast path says %d in 2", s, uniseg.StringWidth(s), uniseg.GraphemeClusterCount(s), w)
		}
	}
}

// TestWidthsAndCuts: the fast path and uniseg agree on timeline lines,
// with and without colour codes, and cut splits where uniseg's clusters do.
func TestWidthsAndCuts(t *testing.T) {
	lines := []string{
		"gw-a  ── Main Mode 1/6: SA, VID×5 ────────────────▶ gw-b  [office]",
		"↳ The first packet that needs protection and finds no SA asks IKE",
		"\033[1;32m✔ passed\033[0m  expect phase1-up",
		"🔒 ESP in UDP",
		"café · naïve → résumé",
		"e\u0301 combining",
		"⚡ fault injected: gw-b dropped Main Mode 4/6",
		"\033[31mkeep \033 lone escape\033[0m",
	}
	for _, l := range lines {
		plain := StripANSI(l)
		if strings.Contains(plain, "\033[") && !strings.Contains(l, " \033 ") {
			t.Errorf("StripANSI(%q) = %q: a colour code is left", l, plain)
		}
		if got, want := DisplayWidth(l), uniseg.StringWidth(plain); got != want {
			t.Errorf("DisplayWidth(%q) = %d, uniseg says %d", l, got, want)
		}
		for n := 1; n < 12; n++ {
			head, tail := cut(plain, n)
			if head+tail != plain || head == "" && plain != "" {
				t.Fatalf("cut(%q, %d) = %q + %q", plain, n, head, tail)
			}
			if w := uniseg.StringWidth(head); w > n && uniseg.GraphemeClusterCount(head) > 1 {
				t.Errorf("cut(%q, %d): head %q is %d columns", plain, n, head, w)
			}
		}
	}
	if got := StripANSI("a\033[1;32mb\033[0mc"); got != "abc" {
		t.Errorf("StripANSI: %q", got)
	}
	if got := StripANSI("a\033 b\033[x"); got != "a\033 b\033[x" {
		t.Errorf("StripANSI changed what is not a colour code: %q", got)
	}
}

package timeline

import (
	"regexp"
	"strings"

	"github.com/rivo/uniseg"
)

var ansi = regexp.MustCompile("\033\\[[0-9;]*m")

// StripANSI removes colour codes.
func StripANSI(s string) string { return ansi.ReplaceAllString(s, "") }

// DisplayWidth is how many terminal columns s takes. A terminal counts
// columns, not bytes or runes: 🔒 takes two, a combining accent none, a
// colour code none.
func DisplayWidth(s string) int { return uniseg.StringWidth(StripANSI(s)) }

// Wrap breaks plain text (no colour codes) into lines of at most first
// columns for the first line and rest for the others. It breaks at spaces,
// and inside a word only when the word alone is wider than a line (a long
// address list, a key).
func Wrap(s string, first, rest int) []string {
	first, rest = max(first, 1), max(rest, 1)
	var lines []string
	line, lw := "", 0
	avail := first
	flush := func() {
		lines = append(lines, strings.TrimRight(line, " "))
		line, lw, avail = "", 0, rest
	}
	for _, word := range strings.Split(s, " ") {
		ww := uniseg.StringWidth(word)
		switch {
		case lw > 0 && lw+1+ww <= avail:
			line, lw = line+" "+word, lw+1+ww
			continue
		case lw > 0:
			flush()
		}
		for ww > avail {
			head, tail := cut(word, avail)
			line = head
			flush()
			word = tail
			ww = uniseg.StringWidth(word)
		}
		line, lw = word, ww
	}
	if lw > 0 || len(lines) == 0 {
		lines = append(lines, line)
	}
	return lines
}

// cut splits s after at most n columns, between grapheme clusters, never
// returning an empty head (a glyph wider than n still goes on a line).
func cut(s string, n int) (head, tail string) {
	w, i := 0, 0
	state := -1
	rest := s
	for len(rest) > 0 {
		var cluster string
		var cw int
		cluster, rest, cw, state = uniseg.FirstGraphemeClusterInString(rest, state)
		if w+cw > n && i > 0 {
			break
		}
		w += cw
		i += len(cluster)
	}
	return s[:i], s[i:]
}

// pad fills s with spaces up to n columns.
func pad(s string, n int) string {
	if w := DisplayWidth(s); w < n {
		return s + strings.Repeat(" ", n-w)
	}
	return s
}

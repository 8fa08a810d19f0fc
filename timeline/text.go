package timeline

import (
	"strings"
	"unicode/utf8"

	"github.com/rivo/uniseg"
)

// StripANSI removes colour codes (ESC [ digits and semicolons m).
func StripANSI(s string) string {
	i := strings.IndexByte(s, '\033')
	if i < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i >= 0 {
		b.WriteString(s[:i])
		j := i + 1
		if j < len(s) && s[j] == '[' {
			j++
			for j < len(s) && (s[j] >= '0' && s[j] <= '9' || s[j] == ';') {
				j++
			}
			if j < len(s) && s[j] == 'm' {
				s = s[j+1:]
				i = strings.IndexByte(s, '\033')
				continue
			}
		}
		// Not a colour code: the escape stays.
		b.WriteByte('\033')
		s = s[i+1:]
		i = strings.IndexByte(s, '\033')
	}
	b.WriteString(s)
	return b.String()
}

// DisplayWidth is how many terminal columns s takes. A terminal counts
// columns, not bytes or runes: 🔒 takes two, a combining accent none, a
// colour code none.
func DisplayWidth(s string) int { return stringWidth(StripANSI(s)) }

// stringWidth is uniseg.StringWidth, without its grapheme segmentation for
// the strings the timeline is mostly made of: runes that are each a
// cluster of their own, of a width known here. Segmenting every line cost a
// terminal's timeline some 25 µs an event, more than the lab's work for it.
func stringWidth(s string) int {
	n := 0
	for _, r := range s {
		w := knownWidth(r)
		if w == 0 {
			return uniseg.StringWidth(s)
		}
		n += w
	}
	return n
}

// knownWidth is the columns r takes when it is a grapheme cluster of its
// own whatever surrounds it, and 0 when that takes uniseg to tell: 1 for
// printable ASCII, Latin letters, punctuation, arrows, mathematical
// operators, box drawing, shapes, circled digits, the check marks; 2 for
// the emoji the timeline draws. TestKnownWidthsAgreeWithUniseg checks
// every one of them against uniseg.
func knownWidth(r rune) int {
	switch {
	case r >= 0x20 && r < 0x7f:
		return 1
	case r >= 0xa1 && r <= 0x2ff && r != 0xad: // not the soft hyphen, which takes none
		return 1
	case r >= 0x2010 && r <= 0x2027, r >= 0x2030 && r <= 0x205e:
		return 1
	case r >= 0x2190 && r <= 0x22ff, r >= 0x2460 && r <= 0x24ff:
		return 1
	case r >= 0x2500 && r <= 0x25ff && r != 0x25fd && r != 0x25fe: // those two are drawn as emoji
		return 1
	case r == '✔', r == '✘':
		return 1
	case r == '🔒', r == '⚡':
		return 2
	}
	return 0
}

// allNarrow reports whether every rune of s is a one-column cluster.
func allNarrow(s string) bool {
	for _, r := range s {
		if knownWidth(r) != 1 {
			return false
		}
	}
	return true
}

// Wrap breaks plain text (no colour codes) into lines of at most first
// columns for the first line and rest for the others. It breaks at spaces,
// and inside a word only when the word alone is wider than a line (a long
// address list, a key).
func Wrap(s string, first, rest int) []string {
	first, rest = max(first, 1), max(rest, 1)
	var lines []string
	var line strings.Builder
	lw, avail := 0, first
	flush := func() {
		lines = append(lines, strings.TrimRight(line.String(), " "))
		line.Reset()
		lw, avail = 0, rest
	}
	for word := range strings.SplitSeq(s, " ") {
		ww := stringWidth(word)
		switch {
		case lw > 0 && lw+1+ww <= avail:
			line.WriteByte(' ')
			line.WriteString(word)
			lw += 1 + ww
			continue
		case lw > 0:
			flush()
		}
		for ww > avail {
			head, tail := cut(word, avail)
			line.Reset()
			line.WriteString(head)
			flush()
			word = tail
			ww = stringWidth(word)
		}
		line.Reset() // a word of no width before this one goes, as it always did
		line.WriteString(word)
		lw = ww
	}
	if lw > 0 || len(lines) == 0 {
		lines = append(lines, line.String())
	}
	return lines
}

// cut splits s after at most n columns, between grapheme clusters, never
// returning an empty head (a glyph wider than n still goes on a line).
func cut(s string, n int) (head, tail string) {
	if allNarrow(s) {
		// As many runes as columns: n of them, at least one.
		i := 0
		for k := 0; k < max(n, 1) && i < len(s); k++ {
			_, size := utf8.DecodeRuneInString(s[i:])
			i += size
		}
		return s[:i], s[i:]
	}
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

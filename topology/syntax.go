package topology

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// yamlErr is go-yaml's message without its line: "yaml: line 3: did not find
// expected key" → "did not find expected key".
var yamlErr = regexp.MustCompile(`^yaml: (?:line \d+: )?`)

// maxPrefixParses bounds the search for the line at fault in a huge file; past
// it the message keeps go-yaml's own line.
const maxPrefixParses = 2000

// syntaxError turns a YAML syntax error into an Error on the line at fault,
// with that line and a caret.
//
// go-yaml's line is the start of the construct it was reading when it gave up,
// counted from 0 for the parser's errors and from 1 for the scanner's: an
// unclosed { on line 4 is reported on line 3, a key indented wrongly on line 5
// on the line of the mapping it failed to continue. The line at fault is the
// first one the document cannot be read up to: the longest run of whole lines
// from the top that still parses ends just before it.
func syntaxError(file string, data []byte, err error) *Error {
	msg := yamlErr.ReplaceAllString(err.Error(), "")
	lines := strings.SplitAfter(string(data), "\n")
	bad := 0 // 0-based index of the line at fault
	for k, tries := len(lines)-1, 0; k >= 0; k, tries = k-1, tries+1 {
		if tries == maxPrefixParses {
			bad = goYAMLLine(err)
			break
		}
		var n yaml.Node
		if derr := yaml.NewDecoder(strings.NewReader(strings.Join(lines[:k], ""))).Decode(&n); derr == nil || errors.Is(derr, io.EOF) {
			bad = k
			break
		}
	}
	bad = min(bad, len(lines)-1)
	text := strings.TrimRight(lines[bad], "\r\n")
	col, why := culprit(text, msg)
	if why != "" {
		msg = why + " (YAML: " + msg + ")"
	}
	return &Error{Pos: Pos{File: file, Line: bad + 1, Col: col}, Msg: "not valid YAML: " + msg + "\n" + excerpt(bad+1, text, col)}
}

// goYAMLLine is the 0-based line go-yaml's message names, as it names it.
func goYAMLLine(err error) int {
	var line int
	if _, scanErr := fmt.Sscanf(err.Error(), "yaml: line %d:", &line); scanErr == nil && line > 0 {
		return line - 1
	}
	return 0
}

// culprit finds the column (1-based, in characters) of what is wrong on the
// line, and a sentence for the mistakes people make most: a quote or bracket
// left open, a tab, a key that lines up with nothing.
func culprit(line, msg string) (col int, why string) {
	var stack []int // columns of the open brackets
	quote, quoteCol := rune(0), 0
	mappingColons := 0
	secondColon := 0
	prev := ' '
	c := 0
	escaped := false
	for i, r := range line {
		c++
		switch {
		case escaped:
			escaped = false
		case quote != 0:
			switch {
			case quote == '"' && r == '\\':
				escaped = true
			case r == quote && quote == '\'' && i+1 < len(line) && line[i+1] == '\'':
				escaped = true // '' is a quote inside single quotes
			case r == quote:
				quote = 0
			}
		case r == '#' && (prev == ' ' || prev == '\t'):
			goto done
		case r == '"' || r == '\'':
			if prev == ' ' || prev == '\t' || prev == '[' || prev == '{' || prev == ',' || prev == ':' || c == 1 {
				quote, quoteCol = r, c
			}
		case r == '{' || r == '[':
			stack = append(stack, c)
		case r == '}' || r == ']':
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
		case r == ':' && len(stack) == 0 && (i+1 == len(line) || line[i+1] == ' '):
			mappingColons++
			if mappingColons == 2 {
				secondColon = c
			}
		}
		prev = r
	}
done:
	indent := len(line) - len(strings.TrimLeft(line, " \t"))
	first := utf8.RuneCountInString(line[:indent]) + 1
	switch {
	case quote != 0:
		return quoteCol, fmt.Sprintf("the %c opened here is never closed", quote)
	case len(stack) > 0:
		open := stack[len(stack)-1]
		closer := map[byte]string{'{': "}", '[': "]"}[line[byteIndex(line, open)]]
		return open, fmt.Sprintf("the %s opened here is never closed: close it with %s, and separate the items inside with commas",
			string(line[byteIndex(line, open)]), closer)
	case strings.Contains(line[:indent], "\t"):
		return strings.IndexByte(line, '\t') + 1, "a tab indents this line; YAML indents with spaces only"
	case strings.Contains(msg, "mapping values are not allowed") && secondColon > 0:
		return secondColon, "a second key: value on one line; quote the value if the colon belongs to it"
	case strings.Contains(msg, "did not find expected key"), strings.Contains(msg, "did not find expected '-' indicator"):
		return first, "this line's indentation matches no mapping or list above it: line it up with its siblings"
	}
	return first, ""
}

// byteIndex is the byte offset of the character at 1-based column col.
func byteIndex(s string, col int) int {
	c := 0
	for i := range s {
		c++
		if c == col {
			return i
		}
	}
	return len(s)
}

// excerpt shows the line, numbered, with a caret under the column. Tabs are
// shown as one space each so that the caret stays under its character.
func excerpt(lineNo int, line string, col int) string {
	var b bytes.Buffer
	num := fmt.Sprint(lineNo)
	fmt.Fprintf(&b, "    %s | %s\n", num, strings.ReplaceAll(line, "\t", " "))
	fmt.Fprintf(&b, "    %s | %s^", strings.Repeat(" ", len(num)), strings.Repeat(" ", max(col-1, 0)))
	return b.String()
}

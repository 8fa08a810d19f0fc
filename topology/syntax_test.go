package topology

import (
	"errors"
	"strconv"
	"strings"
	"testing"
)

// A YAML syntax error is reported on the line where the mistake is, with that
// line shown and a caret under the culprit, whatever line go-yaml names.
func TestYAMLSyntaxErrorsPointAtTheOffendingLine(t *testing.T) {
	cases := []struct {
		name string
		src  string
		line int    // the offending line
		col  int    // where the caret goes
		want string // in the message
	}{
		{"unclosed flow mapping", "name: x\ndescription: y\ntopology:\n  nodes: {a: {kind: host}\n  links: []\n", 4, 10, "the { opened here is never closed"},
		{"unclosed flow mapping inside a block", "name: x\ntopology:\n  nodes:\n    a: {kind: host\n    b: {kind: host}\n", 4, 8, "the { opened here is never closed"},
		{"unclosed flow sequence", "name: x\nseed: 1\ntopology:\n  links:\n    - endpoints: [a:eth0, b:eth0\n  nodes: {}\n", 5, 18, "the [ opened here is never closed"},
		{"key indented less than its siblings", "name: x\ntopology:\n  nodes:\n    a: {kind: host}\n   b: {kind: host}\n", 5, 4, "indentation matches no mapping or list above it"},
		{"key indented more than its siblings", "name: x\ntopology:\n  nodes:\n    a: {kind: host}\n      b: {kind: host}\n", 5, 7, "indentation matches no mapping or list above it"},
		{"list item indented wrongly", "name: x\ntopology:\n  nodes: {}\n  links:\n    - endpoints: [a:eth0, b:eth0]\n   addresses: []\n", 6, 4, "indentation matches no mapping or list above it"},
		{"tab indentation", "name: x\ntopology:\n  nodes:\n\ta: {kind: host}\n", 4, 1, "a tab indents this line"},
		{"tab after spaces", "name: x\ntopology:\n  nodes:\n  \t a: {kind: host}\n", 4, 3, "a tab indents this line"},
		{"unterminated double quote", "name: x\ndescription: \"unterminated\ntopology:\n  nodes: {}\n", 2, 14, "the \" opened here is never closed"},
		{"unterminated single quote", "name: x\nseed: 1\ndescription: 'it''s open\ntopology:\n  nodes: {}\n", 3, 14, "the ' opened here is never closed"},
		{"two colons on a line", "name: x\ntopology:\n  nodes:\n    a: kind: host\n", 4, 12, "a second key: value on one line"},
		{"first line", "{name: x\n", 1, 1, "the { opened here is never closed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("lab.yaml", []byte(tc.src))
			var errs Errors
			if !errors.As(err, &errs) || len(errs) != 1 {
				t.Fatalf("want one topology error, got %v", err)
			}
			e := errs[0]
			if e.Pos.Line != tc.line || e.Pos.Col != tc.col {
				t.Errorf("reported at %d:%d, want %d:%d:\n%v", e.Pos.Line, e.Pos.Col, tc.line, tc.col, e)
			}
			if !strings.HasPrefix(e.Msg, "not valid YAML: ") || !strings.Contains(e.Msg, tc.want) {
				t.Errorf("message lacks %q:\n%v", tc.want, e)
			}
			// The excerpt shows the offending line and a caret under the column.
			lines := strings.Split(e.Msg, "\n")
			if len(lines) != 3 {
				t.Fatalf("want the message, the line and a caret:\n%s", e.Msg)
			}
			offending := strings.ReplaceAll(strings.Split(tc.src, "\n")[tc.line-1], "\t", " ")
			prefix := "    " + strconv.Itoa(tc.line) + " | "
			if lines[1] != prefix+offending {
				t.Errorf("excerpt %q, want %q", lines[1], prefix+offending)
			}
			if caret := strings.Index(lines[2], "^"); caret != len(prefix)+tc.col-1 {
				t.Errorf("caret at byte %d, want %d:\n%s\n%s", caret, len(prefix)+tc.col-1, lines[1], lines[2])
			}
		})
	}
}

// The standalone daemon's configuration is read the same way.
func TestDaemonConfigSyntaxErrorPointsAtTheOffendingLine(t *testing.T) {
	_, err := ParseDaemon("node.yaml", []byte("node: gw\nconnections:\n  a: {local: {address: 10.0.0.1}\n  b: {}\n"))
	var errs Errors
	if !errors.As(err, &errs) || errs[0].Pos.Line != 3 || !strings.Contains(errs[0].Msg, "the { opened here is never closed") {
		t.Fatalf("want an error on line 3, got %v", err)
	}
}

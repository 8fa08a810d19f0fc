package labrun

import (
	"bytes"
	"io"
	"strings"
	"testing"
)

// The event stream's reader hands out whole lines, longer ones than its
// buffer too, tells when the next line is already at hand (where run
// flushes the timeline; a line only partly read is not), and drops a last line the lab process died while
// writing.
func TestLineReader(t *testing.T) {
	long := strings.Repeat("x", 3<<20)
	pr, pw := io.Pipe()
	go func() {
		_, _ = pw.Write([]byte("one\ntwo\nthr"))
		_, _ = pw.Write([]byte("ee\n" + long + "\nhalf"))
		_ = pw.Close()
	}()
	r := newLineReader(pr)
	want := []struct {
		line  string
		ready bool
	}{{"one", true}, {"two", false}, {"three", false}, {long, false}}
	for i, w := range want {
		got, err := r.next()
		if err != nil {
			t.Fatalf("line %d: %v", i, err)
		}
		if !bytes.Equal(got, []byte(w.line)) {
			t.Fatalf("line %d: %d bytes, want %d", i, len(got), len(w.line))
		}
		if ready := r.lineReady(); ready != w.ready {
			t.Errorf("after line %d (%.10q): lineReady %v, want %v", i, w.line, ready, w.ready)
		}
	}
	if _, err := r.next(); err != io.EOF {
		t.Errorf("a half line at the end: %v, want io.EOF", err)
	}
}

func TestLineReaderRefusesEndlessLine(t *testing.T) {
	r := newLineReader(strings.NewReader(strings.Repeat("x", maxEventLine+(2<<20))))
	if _, err := r.next(); err == nil || !strings.Contains(err.Error(), "longer than") {
		t.Fatalf("got %v, want a line-too-long error", err)
	}
}

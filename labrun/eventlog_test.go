package labrun_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/ipseclab/ipseclab/labrun"
)

// The event log rotates: however much is written, the log and its one older
// generation stay within twice the maximum, both private, each made of whole
// lines, and the newest line is in the current file.
func TestEventLogRotates(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.jsonl")
	const max = 64 << 10
	l, err := labrun.OpenRotatingLog(path, max)
	if err != nil {
		t.Fatal(err)
	}
	var last string
	for i := range 20000 {
		last = fmt.Sprintf("{\"seq\":%d,\"message\":\"%s\"}\n", i, bytes.Repeat([]byte("m"), i%300))
		if _, err := l.Write([]byte(last)); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	total := int64(0)
	for _, p := range []string{path, path + ".1"} {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st.Size() > max {
			t.Errorf("%s is %d bytes, over the maximum of %d", p, st.Size(), max)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v; want 0600", p, st.Mode().Perm())
		}
		b, _ := os.ReadFile(p)
		if len(b) == 0 || b[len(b)-1] != '\n' || !bytes.HasPrefix(b, []byte("{\"seq\":")) {
			t.Errorf("%s does not hold whole lines", p)
		}
		total += st.Size()
	}
	if b, _ := os.ReadFile(path); !bytes.HasSuffix(b, []byte(last)) {
		t.Errorf("the newest line is not at the end of %s", path)
	}
	if total > 2*max {
		t.Errorf("the log takes %d bytes on disk; want at most %d", total, 2*max)
	}
}

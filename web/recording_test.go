package web

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func recording(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "site-to-site.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func lines(b []byte) [][]byte {
	return bytes.SplitAfter(bytes.TrimSuffix(b, []byte("\n")), []byte("\n"))
}

// TestReadRecordingBadInput: a truncated, reordered or foreign file is
// refused with the line that is wrong.
func TestReadRecordingBadInput(t *testing.T) {
	good := recording(t)
	ls := lines(good)
	truncated := good[:len(good)-len(ls[len(ls)-1])/2]
	reordered := bytes.Join(append(append(append([][]byte{}, ls[:16]...), ls[17], ls[16]), ls[18:]...), nil)
	cases := []struct {
		name, input, want string
	}{
		{"truncated", string(truncated), "events.jsonl:" + itoa(uint64(len(ls))) + ": not JSON"},
		{"truncated mid-file", string(bytes.Join([][]byte{ls[0], ls[1][:40], []byte("\n"), ls[2]}, nil)), "events.jsonl:2: not JSON"},
		{"reordered", string(reordered), "events.jsonl:18: sequence number 17 after 18"},
		{"repeated", string(ls[0]) + string(ls[0]), "events.jsonl:2: sequence number 1 after 1"},
		{"foreign JSON", string(ls[0]) + `{"name": "not an event", "value": 3}` + "\n", "events.jsonl:2: not an ipseclab event"},
		{"JSON array", "[1,2,3]\n", "events.jsonl:1: not an ipseclab event"},
		{"text", "hello\n", "events.jsonl:1: not an ipseclab event"},
		{"seq 0", `{"seq":0,"time":"2026-01-01T00:00:00Z","kind":"x","step":0,"message":""}` + "\n", "events.jsonl:1: not an ipseclab event"},
		{"wrong type", `{"seq":1,"time":"2026-01-01T00:00:00Z","kind":"x","step":"two","message":""}` + "\n", "events.jsonl:1: an event with a field of the wrong type"},
		{"empty", "", "events.jsonl: no events"},
		{"blank", "\n\n", "events.jsonl: no events"},
	}
	for _, c := range cases {
		_, err := ReadRecording(strings.NewReader(c.input), "events.jsonl")
		if err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q...", c.name, err, c.want)
		}
	}
	if _, err := ReadRecording(bytes.NewReader(truncated), "events.jsonl"); !strings.Contains(err.Error(), "truncated") {
		t.Errorf("a truncated last line does not say so: %v", err)
	}
}

// TestReadRecordingKeepsUnknownKinds: a kind this version does not know
// (a newer recording) is kept as it is, and so are blank lines and a last
// line without its newline.
func TestReadRecordingKeepsUnknownKinds(t *testing.T) {
	in := `{"seq":1,"time":"2026-01-01T00:00:00Z","kind":"lab-seed","step":0,"message":"seed 1"}` + "\n\n" +
		`{"seq":5,"time":"2026-01-01T00:00:01Z","kind":"quantum-tunnel","step":9,"message":"something new","fields":{"x":[1,2]}}`
	recs, err := ReadRecording(strings.NewReader(in), "x.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 || recs[1].Event.Kind != "quantum-tunnel" || !bytes.Contains(recs[1].Line, []byte(`"x":[1,2]`)) {
		t.Fatalf("%+v", recs)
	}
}

// TestHintNamesTheLab: a recording carries its lab file in its lab-seed
// event.
func TestHintNamesTheLab(t *testing.T) {
	h := Hint(readTestRecording(t, "site-to-site.jsonl"))
	if h.Name == "" || h.File != "embedded:site-to-site" || !strings.Contains(h.Source, "gw-a") {
		t.Fatalf("%+v", h)
	}
}

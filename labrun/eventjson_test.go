package labrun

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/ipseclab/ipseclab/events"
)

// sampleEvents holds events with every part filled and the strings JSON
// treats specially: HTML characters (escaped by encoding/json), U+2028,
// invalid UTF-8, control characters, and fields of every JSON type.
func sampleEvents() []events.Event {
	t0 := time.Date(2026, 12, 7, 16, 28, 38, 961534305, time.UTC)
	return []events.Event{
		{Seq: 1, Time: t0, Lab: "l", Node: "gw-a", Conn: "office", Kind: events.IKEMessage, Step: events.StepPhase1, Level: events.Info,
			Message: "→ Main Mode 1/6 sent to 203.0.113.2:500: HDR, SA, VID", Explain: "a <b> & c \u2028 d \x01 \xff",
			IKE: &events.IKEInfo{Exchange: "main", MsgNum: 1, MsgTotal: 6, Dir: "sent", Payloads: []string{"SA", "VID"}, Size: 184}},
		{Seq: 2, Time: t0.Add(time.Millisecond), Kind: events.SACounters, Level: events.Debug, Message: "counters",
			SA: &events.SAInfo{}, Fields: map[string]any{"z": 1.5, "a": "x<y", "n": nil, "list": []any{1.0, "two", true}, "m": map[string]any{"k": -3.0}}},
		{Seq: 3, Kind: events.ScriptFinished, Message: "", Script: &events.ScriptResult{}, Expect: &events.ExpectResult{}, Packet: &events.PacketInfo{}},
	}
}

// The lab process's event lines are the bytes encoding/json writes, and
// `run` reads them back as encoding/json would.
func TestEventJSONMatchesEncodingJSON(t *testing.T) {
	for _, e := range sampleEvents() {
		checkEventJSON(t, e)
	}
}

func checkEventJSON(t *testing.T, e events.Event) {
	t.Helper()
	var want, got bytes.Buffer
	if err := json.NewEncoder(&want).Encode(&e); err != nil {
		return // encoding/json refuses it (a NaN in Fields, say): nothing to match
	}
	if err := encodeEventLine(&got, &e); err != nil {
		t.Fatalf("encodeEventLine refuses what encoding/json writes (%s): %v", want.Bytes(), err)
	}
	if !bytes.Equal(want.Bytes(), got.Bytes()) {
		t.Fatalf("event lines differ:\nencoding/json %s\nours          %s", want.Bytes(), got.Bytes())
	}
	var std, ours events.Event
	if err := json.Unmarshal(want.Bytes(), &std); err != nil {
		t.Fatal(err)
	}
	if err := decodeEventLine(want.Bytes(), &ours); err != nil {
		t.Fatalf("decodeEventLine refuses %s: %v", want.Bytes(), err)
	}
	if !reflect.DeepEqual(std, ours) {
		t.Fatalf("read back differently from %s:\nencoding/json %+v\nours          %+v", want.Bytes(), std, ours)
	}
}

// FuzzEventJSON holds the two encodings together on arbitrary strings, and
// the decoder to encoding/json's verdict on arbitrary lines.
func FuzzEventJSON(f *testing.F) {
	f.Add("gw-a", "<&>\u2028", "k", "v", []byte(`{"seq":1,"kind":"notify","message":"x","fields":{"a":[1,"b"]}}`))
	f.Add("", "\xff\x00", "", "\"", []byte(`{"seq":-1}`))
	f.Fuzz(func(t *testing.T, node, msg, key, val string, line []byte) {
		if len(line) > 512 || len(msg)+len(node)+len(key)+len(val) > 256 {
			return
		}
		checkEventJSON(t, events.Event{Seq: 9, Node: node, Message: msg, Explain: msg, Kind: events.Notify, Fields: map[string]any{key: val, "n": float64(len(val))}})
		var std, ours events.Event
		stdErr := json.Unmarshal(line, &std)
		oursErr := decodeEventLine(line, &ours)
		if stdErr == nil && oursErr != nil {
			t.Fatalf("decodeEventLine refuses %q, which encoding/json reads: %v", line, oursErr)
		}
		if stdErr == nil && !reflect.DeepEqual(std, ours) {
			t.Fatalf("%q read back differently:\nencoding/json %+v\nours          %+v", line, std, ours)
		}
	})
}

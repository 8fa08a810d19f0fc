package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ipseclab/ipseclab/timeline"
	"github.com/ipseclab/ipseclab/web"
)

func testRecording(t *testing.T) []web.Record {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "..", "web", "testdata", "site-to-site.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := web.ReadRecording(f, "site-to-site.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// TestReplayKeys: the terminal's bytes become the replay's keys, arrows
// included.
func TestReplayKeys(t *testing.T) {
	keys := make(chan replayKey, 16)
	readKeys(strings.NewReader(" \x1b[C\x1b[D+-7x q"), keys)
	var got []replayKey
	for k := range keys {
		got = append(got, k)
	}
	want := []replayKey{keyPause, keyForward, keyBack, keyFaster, keySlower, keyJump0 + 7, keyPause, keyQuit}
	if len(got) != len(want) {
		t.Fatalf("keys %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("keys %v, want %v", got, want)
		}
	}
}

// TestReplayControl: paused, → shows one event more, ← redraws from the
// start up to one event less, a digit jumps, q ends.
func TestReplayControl(t *testing.T) {
	recs := testRecording(t)
	var out bytes.Buffer
	p := &player{recs: recs, opt: timeline.Options{Explain: false, Width: 100}, speed: 0.0001, out: &out}
	keys := make(chan replayKey)
	done := make(chan error, 1)
	go func() { done <- p.control(context.Background(), keys) }()
	// The player has handled a key once it takes the next one.
	send := func(k replayKey) {
		for _, k := range []replayKey{k, keyNone} {
			select {
			case keys <- k:
			case <-time.After(5 * time.Second):
				t.Fatalf("the player does not take key %d at %d: %q", k, p.pos, out.String()[max(0, out.Len()-300):])
			}
		}
	}
	// So slow that nothing plays by itself while the test looks.
	send(keyJump0 + 5)
	send(keyPause) // the jump left it playing: pause
	if !strings.Contains(out.String(), "jumped to 50%") {
		t.Fatalf("no jump: %s", out.String())
	}
	at := p.pos
	send(keyForward)
	send(keyForward)
	if p.pos != at+2 {
		t.Fatalf("two steps forward from %d: at %d", at, p.pos)
	}
	send(keyBack)
	if p.pos != at+1 || !strings.Contains(out.String(), "\x1b[2J") {
		t.Fatalf("a step back from %d: at %d", at+2, p.pos)
	}
	send(keyFaster) // from a speed not in the list: 1×, then one step
	if p.speed != 2 {
		t.Fatalf("speed %g, want 2", p.speed)
	}
	send(keySlower)
	send(keySlower)
	if p.speed != 0.5 {
		t.Fatalf("speed %g, want 0.5", p.speed)
	}
	send(keyJump0)
	if p.pos != 0 {
		t.Fatalf("jump to 0%%: at %d", p.pos)
	}
	keys <- keyQuit
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

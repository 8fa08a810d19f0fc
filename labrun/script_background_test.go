package labrun

import (
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestLostSeqsNamesTheGaps(t *testing.T) {
	r := PingResult{Sent: 10}
	for _, s := range []int{1, 2, 3, 7, 9} {
		r.Replies = append(r.Replies, PingReply{Seq: s})
	}
	r.Received = len(r.Replies)
	if got, want := lostSeqs(r), " (no reply to icmp_seq 4–6, 8, 10)"; got != want {
		t.Errorf("lostSeqs = %q, want %q", got, want)
	}
	if got := lostSeqs(PingResult{Sent: 2, Received: 2, Replies: []PingReply{{Seq: 1}, {Seq: 2}}}); got != "" {
		t.Errorf("no loss: %q", got)
	}
}

// A background step returns at once and runs beside what follows; its error
// reaches failed; a foreground one runs before run returns.
func TestBackgroundStepsRunBesideTheScript(t *testing.T) {
	var b background
	release := make(chan struct{})
	var done atomic.Bool
	failed := make(chan error, 1)
	if err := b.run(true, func() error { <-release; done.Store(true); return errors.New("stream broke") }, func(err error) { failed <- err }); err != nil {
		t.Fatal(err)
	}
	ran := false
	if err := b.run(false, func() error { ran = true; return nil }, nil); err != nil || !ran || done.Load() {
		t.Fatalf("the foreground step ran=%v err=%v; the background one done=%v before its release", ran, err, done.Load())
	}
	close(release)
	b.wg.Wait()
	select {
	case err := <-failed:
		if err.Error() != "stream broke" {
			t.Errorf("failed got %v", err)
		}
	case <-time.After(time.Second):
		t.Error("the background step's error was lost")
	}
}

func TestLongestGap(t *testing.T) {
	// Received: 0-4, 8, 20-63 of 70 sent: gaps 5-7 (3), 9-19 (11), 64-69 (6).
	seen := make([]uint64, 2)
	set := func(a, b int) {
		for s := a; s <= b; s++ {
			seen[s/64] |= 1 << (s % 64)
		}
	}
	set(0, 4)
	set(8, 8)
	set(20, 63)
	if n, from := longestGap(seen, 70); n != 11 || from != 9 {
		t.Errorf("longestGap = %d from %d, want 11 from 9", n, from)
	}
	if n, _ := longestGap(seen[:1], 5); n != 0 {
		t.Errorf("no loss: gap %d", n)
	}
	r := TrafficResult{Proto: "udp", Sent: 70, Received: 50, Lost: 20, LongestGap: 11, GapFrom: 9, GapTime: 110 * time.Millisecond}
	if s := r.String(); !strings.HasSuffix(s, "; longest gap 11 in a row (#9–#19, 110ms)") {
		t.Errorf("String() = %q", s)
	}
}

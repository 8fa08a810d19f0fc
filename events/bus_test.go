package events

import (
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestBusDeliversInOrderWithoutLoss(t *testing.T) {
	b := NewBus("lab1")
	slow := b.Subscribe(nil)
	onlyPhase1 := b.Subscribe(func(e *Event) bool { return e.Kind == Phase1Up })

	const n = 5000
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < n; i++ {
			k := IKEMessage
			if i%1000 == 0 {
				k = Phase1Up
			}
			b.Publish(Event{Kind: k, Node: "gw"})
		}
	}()
	wg.Wait()
	b.Close()

	var last uint64
	count := 0
	for e := range slow.C() {
		if e.Seq != last+1 {
			t.Fatalf("event %d follows %d: gap or reorder", e.Seq, last)
		}
		if e.Lab != "lab1" || e.Time.IsZero() || e.Level != Info {
			t.Fatalf("event not stamped: %+v", e)
		}
		last = e.Seq
		count++
	}
	if count != n {
		t.Fatalf("slow subscriber got %d events, want %d", count, n)
	}
	p1 := 0
	for e := range onlyPhase1.C() {
		if e.Kind != Phase1Up {
			t.Fatalf("filter let through %s", e.Kind)
		}
		p1++
	}
	if p1 != n/1000 {
		t.Fatalf("filtered subscriber got %d, want %d", p1, n/1000)
	}
}

func TestSubscribeWithHistoryReplaysThenFollows(t *testing.T) {
	b := NewBus("lab", WithHistory(4))
	for i := 0; i < 10; i++ {
		b.Publish(Event{Kind: LinkUp})
	}
	s := b.SubscribeWithHistory(nil)
	b.Publish(Event{Kind: LinkDown})
	b.Close()
	var seqs []uint64
	for e := range s.C() {
		seqs = append(seqs, e.Seq)
	}
	if len(seqs) < 2 || seqs[len(seqs)-1] != 11 {
		t.Fatalf("got %v; want the kept tail of history followed by event 11", seqs)
	}
	for i := 1; i < len(seqs); i++ {
		if seqs[i] != seqs[i-1]+1 {
			t.Fatalf("history replay not contiguous: %v", seqs)
		}
	}
	if got := b.Since(9); len(got) != 2 || got[0].Seq != 10 {
		t.Fatalf("Since(9) = %v", got)
	}
}

func TestCloseSubscriptionStopsPump(t *testing.T) {
	b := NewBus("lab")
	s := b.Subscribe(nil)
	b.Publish(Event{Kind: LinkUp}) // nobody reads it
	done := make(chan struct{})
	go func() { s.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("Close blocked on an unread event")
	}
	b.Publish(Event{Kind: LinkDown}) // must not panic or block
}

func TestPublisherFillsScopeAndClockIsInjected(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	b := NewBus("lab", WithClock(func() time.Time { return t0 }))
	p := Publisher{Bus: b, Node: "gw1", Conn: "office"}
	e := p.Publish(Event{Kind: Phase1Up, Step: StepPhase1, Message: "up"})
	if e.Node != "gw1" || e.Conn != "office" || !e.Time.Equal(t0) {
		t.Fatalf("publisher did not fill scope: %+v", e)
	}
	line, err := e.MarshalJSONLine()
	if err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err := json.Unmarshal(line, &back); err != nil {
		t.Fatal(err)
	}
	if back["step"].(float64) != 2 || back["kind"] != "phase1-up" || back["connection"] != "office" {
		t.Fatalf("JSON line lacks step/kind/connection: %s", line)
	}
	var nilBus *Bus
	nilBus.Publish(Event{Kind: LinkUp}) // a nil bus discards
}

// The history is bounded in bytes as well as in events: a stream of large
// events keeps at most the byte bound, and the newest of them, contiguous.
func TestHistoryBoundedInBytes(t *testing.T) {
	b := NewBus("t", WithHistoryBytes(1<<20))
	big := strings.Repeat("x", 10<<10)
	for range 10000 {
		b.Publish(Event{Kind: IKEMessage, Message: big, Fields: map[string]any{"offered": []string{big, big}}})
	}
	kept := b.Since(0)
	size := 0
	for i := range kept {
		size += kept[i].footprint()
		if i > 0 && kept[i].Seq != kept[i-1].Seq+1 {
			t.Fatalf("history not contiguous at %d: %d after %d", i, kept[i].Seq, kept[i-1].Seq)
		}
	}
	if size > 1<<20 || len(kept) == 0 || kept[len(kept)-1].Seq != 10000 {
		t.Fatalf("kept %d events of %d bytes in all, the last #%d; want at most 1 MiB ending with #10000", len(kept), size, kept[len(kept)-1].Seq)
	}
	if len(kept) < 10 {
		t.Errorf("kept only %d events; trimming should keep about half the bound", len(kept))
	}
}

// The history spans many chunks: trimmed at its bound again and again, it
// keeps the newest events, contiguous, between half the bound and the bound,
// and a late subscriber replays exactly those.
func TestHistoryAcrossChunks(t *testing.T) {
	const bound = 3*histChunkLen + 17
	b := NewBus("t", WithHistory(bound))
	for i := 1; i <= 20*histChunkLen+5; i++ {
		b.Publish(Event{Kind: LinkUp})
		if i%(histChunkLen/2+3) != 0 {
			continue
		}
		kept := b.Since(0)
		if len(kept) > bound || len(kept) < min(i, bound/2) {
			t.Fatalf("after %d events, %d kept; want between %d and %d", i, len(kept), min(i, bound/2), bound)
		}
		for j := range kept {
			if want := uint64(i - len(kept) + j + 1); kept[j].Seq != want {
				t.Fatalf("after %d events, kept[%d] is #%d, want #%d", i, j, kept[j].Seq, want)
			}
		}
	}
	want := b.Since(0)
	s := b.SubscribeWithHistory(nil)
	b.Close()
	n := 0
	for e := range s.C() {
		if n >= len(want) || e.Seq != want[n].Seq {
			t.Fatalf("replayed event %d is #%d, want the kept ones (%d, from #%d)", n, e.Seq, len(want), want[0].Seq)
		}
		n++
	}
	if n != len(want) {
		t.Fatalf("replayed %d events, want %d", n, len(want))
	}
}

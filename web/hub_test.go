package web

import "testing"

// TestHubKeepsTheNewest: past its bound the history drops its oldest half;
// a stream reading the old array meanwhile still reads what it took.
func TestHubKeepsTheNewest(t *testing.T) {
	h := newHub()
	h.maxLen = 10
	for i := uint64(1); i <= 10; i++ {
		h.add(i, []byte(`{"seq":1}`))
	}
	held, _, _ := h.after(0)
	h.add(11, []byte(`{"seq":11}`))
	es, _, _ := h.after(0)
	if len(es) != 6 || es[0].seq != 6 || es[5].seq != 11 {
		t.Fatalf("kept %d events from %d", len(es), es[0].seq)
	}
	for i, e := range held {
		if e.seq != uint64(i+1) {
			t.Fatalf("a stream's slice changed under it: %d at %d", e.seq, i)
		}
	}
	if _, ok := h.get(3); ok {
		t.Error("event 3 is still kept")
	}
	if line, ok := h.get(11); !ok || string(line) != `{"seq":11}` {
		t.Errorf("event 11: %q", line)
	}
	if h.count() != 6 {
		t.Errorf("count %d", h.count())
	}
}

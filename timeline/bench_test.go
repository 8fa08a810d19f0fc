package timeline

import (
	"bufio"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/ipseclab/ipseclab/events"
)

// BenchmarkTimeline draws the recorded runs of testdata as `run` does at a
// terminal of 100 columns and into a file (no width), per event: the work
// of the `run` process for every event a lab publishes.
func BenchmarkTimeline(b *testing.B) {
	var evs []events.Event
	for _, lab := range []string{"site-to-site", "nat-traversal", "lossy-link", "pfs-rekey", "dpd"} {
		f, err := os.Open(filepath.Join("testdata", lab+".jsonl"))
		if err != nil {
			b.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var e events.Event
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				b.Fatal(err)
			}
			evs = append(evs, e)
		}
		f.Close()
	}
	for _, bc := range []struct {
		name  string
		width int
	}{{"terminal-100", 100}, {"file", 0}} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				tl := New(io.Discard, Options{Explain: true, Width: bc.width})
				for _, e := range evs {
					tl.Write(e)
				}
				tl.Flush()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(evs)), "ns/event")
			b.ReportMetric(0, "ns/op")
		})
	}
}

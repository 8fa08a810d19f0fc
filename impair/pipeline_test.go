package impair

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"strings"
	"testing"
	"time"

	"github.com/ipseclab/ipseclab/impair/netem"
)

func ms(n int) netem.Duration { return netem.Duration(time.Duration(n) * time.Millisecond) }

var t0 = time.Unix(1_000_000, 0)

// testFrame is an Ethernet frame of size bytes carrying an IPv4 packet whose
// payload starts with n, so frames can be told apart after the pipeline.
func testFrame(n uint64, size int) *Frame {
	f := newFrame(size)
	clear(f.Data)
	binary.BigEndian.PutUint16(f.Data[12:], 0x0800)
	f.Data[14] = 0x45
	binary.BigEndian.PutUint64(f.Data[34:], n)
	return f
}

func frameID(f *Frame) uint64 { return binary.BigEndian.Uint64(f.Data[34:]) }

func newTestPipeline(n netem.Netem) *Pipeline {
	p := NewPipeline(7, "test:eth0--peer:eth0", netem.AtoB)
	p.Set(n, 0, false)
	return p
}

// run pushes count frames, one every gap, popping what is due as time goes,
// then drains, and returns what came out.
func run(p *Pipeline, count int, gap time.Duration, size int) []*Frame {
	var out []*Frame
	var now time.Time
	for i := range count {
		now = t0.Add(time.Duration(i) * gap)
		for f := p.Pop(now); f != nil; f = p.Pop(now) {
			out = append(out, f)
		}
		p.Push(now, testFrame(uint64(i), size))
	}
	for {
		due, ok := p.NextDue()
		if !ok {
			break
		}
		out = append(out, p.Pop(due))
	}
	return out
}

func checkConservation(t *testing.T, c Counters) {
	t.Helper()
	in := c.Sent + c.Duplicated
	out := c.Delivered + c.Lost + c.QueueDrops + c.MTUDrops + c.DownDrops + c.Malformed + c.Queued
	if in != out {
		t.Errorf("counters do not add up: sent+duplicated %d, delivered+dropped+queued %d: %+v", in, out, c)
	}
}

// withinBinomial fails unless k of n is within z standard deviations of n·p.
func withinBinomial(t *testing.T, what string, k, n int, p, z float64) {
	t.Helper()
	mean, sd := float64(n)*p, math.Sqrt(float64(n)*p*(1-p))
	if math.Abs(float64(k)-mean) > z*sd {
		t.Errorf("%s: %d of %d, expected %.0f ± %.0f (%.1fσ)", what, k, n, mean, z*sd, z)
	} else {
		t.Logf("%s: %d of %d, expected %.0f (%.2fσ off)", what, k, n, mean, math.Abs(float64(k)-mean)/sd)
	}
}

func TestPipelineLossDuplicateCorruptRates(t *testing.T) {
	const n = 20000
	t.Run("loss", func(t *testing.T) {
		p := newTestPipeline(netem.Netem{Loss: netem.Loss{Random: 10}})
		out := run(p, n, time.Microsecond, 100)
		withinBinomial(t, "lost", n-len(out), n, 0.10, 5)
		if c := p.Counters(); c.Lost != uint64(n-len(out)) || c.Delivered != uint64(len(out)) {
			t.Errorf("counters %+v disagree with %d delivered", c, len(out))
		}
		checkConservation(t, p.Counters())
	})
	t.Run("duplicate", func(t *testing.T) {
		p := newTestPipeline(netem.Netem{Duplicate: 5})
		out := run(p, n, time.Microsecond, 100)
		withinBinomial(t, "duplicated", len(out)-n, n, 0.05, 5)
		seen := map[uint64]int{}
		for _, f := range out {
			seen[frameID(f)]++
		}
		for id, k := range seen {
			if k > 2 {
				t.Fatalf("frame %d delivered %d times: a duplicate was duplicated again", id, k)
			}
		}
		if c := p.Counters(); c.Duplicated != uint64(len(out)-n) {
			t.Errorf("Duplicated %d, delivered %d extra", c.Duplicated, len(out)-n)
		}
		checkConservation(t, p.Counters())
	})
	t.Run("corrupt", func(t *testing.T) {
		p := newTestPipeline(netem.Netem{Corrupt: 3})
		out := run(p, n, time.Microsecond, 100)
		corrupted := 0
		for k, f := range out { // no delay: frames leave in arrival order
			clean := testFrame(uint64(k), 100)
			flipped, where := 0, -1
			for i := range f.Data {
				if d := bits.OnesCount8(f.Data[i] ^ clean.Data[i]); d > 0 {
					flipped += d
					where = i
				}
			}
			switch {
			case flipped == 1 && where >= 14:
				corrupted++
			case flipped == 1:
				t.Fatalf("bit flipped in the Ethernet header, byte %d", where)
			case flipped > 1:
				t.Fatalf("%d bits flipped in one frame", flipped)
			}
		}
		withinBinomial(t, "corrupted", corrupted, n, 0.03, 5)
		if c := p.Counters(); c.Corrupted != uint64(corrupted) {
			t.Errorf("Corrupted counter %d, frames with a flipped bit %d", c.Corrupted, corrupted)
		}
	})
}

func TestGilbertElliottBursts(t *testing.T) {
	const n = 200000
	ge := netem.GEModel(2, 25, 80, 0.5)
	p := newTestPipeline(netem.Netem{Loss: ge})
	out := run(p, n, time.Microsecond, 64)
	lost := make([]bool, n)
	for i := range lost {
		lost[i] = true
	}
	for _, f := range out {
		lost[frameID(f)] = false
	}
	losses, afterLoss, lossAfterLoss, bursts := 0, 0, 0, 0
	for i, l := range lost {
		if l {
			losses++
			if i == 0 || !lost[i-1] {
				bursts++
			}
		}
		if i > 0 && lost[i-1] {
			afterLoss++
			if l {
				lossAfterLoss++
			}
		}
	}
	mean := float64(losses) / n
	if want := ge.Mean(); math.Abs(mean-want) > 0.1*want {
		t.Errorf("mean loss %.4f, the model's stationary loss is %.4f", mean, want)
	} else {
		t.Logf("mean loss %.4f, stationary %.4f", mean, want)
	}
	// Losses come in bursts: one loss makes the next far likelier than the mean,
	// and bursts are longer than independent losses would make them.
	cond := float64(lossAfterLoss) / float64(afterLoss)
	burst := float64(losses) / float64(bursts)
	t.Logf("P(loss | loss before) %.3f, mean burst %.2f frames", cond, burst)
	if cond < 5*mean {
		t.Errorf("P(loss | loss before) = %.3f, hardly above the mean %.3f: no bursts", cond, mean)
	}
	if indep := 1 / (1 - mean); burst < 1.5*indep {
		t.Errorf("mean burst %.2f frames, independent losses would give %.2f", burst, indep)
	}

	// The simple Gilbert model (tc's defaults 1-h=100%, 1-k=0%): bursts last
	// 1/r frames on average, gaps 1/p.
	p = newTestPipeline(netem.Netem{Loss: netem.GEModel(1, 20, 100, 0)})
	out = run(p, n, time.Microsecond, 64)
	losses = n - len(out)
	burst = float64(losses) / float64(max(1, countBursts(out, n)))
	if math.Abs(burst-5) > 0.5 {
		t.Errorf("simple Gilbert r=20%%: mean burst %.2f frames, want about 5", burst)
	}
}

func countBursts(out []*Frame, n int) int {
	delivered := make([]bool, n)
	for _, f := range out {
		delivered[frameID(f)] = true
	}
	b := 0
	for i := range n {
		if !delivered[i] && (i == 0 || delivered[i-1]) {
			b++
		}
	}
	return b
}

// trace is what came out of a pipeline, in order: which frame, when, and its
// content.
func trace(p *Pipeline) string {
	var b bytes.Buffer
	for _, f := range run(p, 3000, 100*time.Microsecond, 80) {
		fmt.Fprintf(&b, "%d@%d:%x;", frameID(f), f.due.Sub(t0), f.Data[14:])
	}
	return b.String()
}

func TestSameSeedSameDecisions(t *testing.T) {
	n := netem.Netem{Delay: ms(5), Jitter: ms(2), Distribution: netem.Normal, Loss: netem.Loss{Random: 30}, Duplicate: 10, Corrupt: 5, Reorder: 5}
	mk := func(seed uint64, link string, d netem.Dir) *Pipeline {
		p := NewPipeline(seed, link, d)
		p.Set(n, 0, false)
		return p
	}
	a := trace(mk(42, "x:eth0--y:eth0", netem.AtoB))
	if b := trace(mk(42, "x:eth0--y:eth0", netem.AtoB)); a != b {
		t.Error("the same seed gave different decisions")
	}
	for name, p := range map[string]*Pipeline{
		"another seed":      mk(43, "x:eth0--y:eth0", netem.AtoB),
		"another link":      mk(42, "x:eth1--y:eth0", netem.AtoB),
		"another direction": mk(42, "x:eth0--y:eth0", netem.BtoA),
	} {
		if trace(p) == a {
			t.Errorf("%s gave the same decisions", name)
		}
	}
}

func TestDelayJitterKeepsOrder(t *testing.T) {
	for _, dist := range []netem.Distribution{netem.Uniform, netem.Normal} {
		p := newTestPipeline(netem.Netem{Delay: ms(10), Jitter: ms(5), Distribution: dist})
		out := run(p, 5000, 50*time.Microsecond, 100)
		if len(out) != 5000 {
			t.Fatalf("%s: %d of 5000 delivered", dist, len(out))
		}
		for i, f := range out {
			if frameID(f) != uint64(i) {
				t.Fatalf("%s: frame %d left in place %d: jitter reordered", dist, frameID(f), i)
			}
			if i > 0 && f.due.Before(out[i-1].due) {
				t.Fatalf("%s: frame %d due before its predecessor", dist, i)
			}
		}
	}
	// Far apart, frames do not wait for each other: the delays show the
	// distribution itself.
	for _, c := range []struct {
		dist           netem.Distribution
		lo, hi, sdWant float64
	}{{netem.Uniform, 5, 15, 5 / math.Sqrt(3)}, {netem.Normal, 0, math.Inf(1), 5}} {
		p := newTestPipeline(netem.Netem{Delay: ms(10), Jitter: ms(5), Distribution: c.dist})
		const n = 4000
		out := run(p, n, time.Second, 100)
		var sum, sq float64
		for _, f := range out {
			d := float64(f.due.Sub(t0.Add(time.Duration(frameID(f))*time.Second))) / 1e6
			if d < c.lo || d > c.hi || d < 0 {
				t.Fatalf("%s: delay %.3fms outside [%v, %v]", c.dist, d, c.lo, c.hi)
			}
			sum += d
			sq += d * d
		}
		mean := sum / n
		sd := math.Sqrt(sq/n - mean*mean)
		if math.Abs(mean-10) > 0.5 || math.Abs(sd-c.sdWant) > 0.1*c.sdWant {
			t.Errorf("%s: mean delay %.2fms (want 10), sd %.2fms (want %.2f)", c.dist, mean, sd, c.sdWant)
		}
	}
}

func TestRateSpacesFrames(t *testing.T) {
	// 8 Mbit/s is one byte per microsecond: a 1000-byte frame takes 1 ms.
	p := newTestPipeline(netem.Netem{Rate: 8e6, Delay: ms(2)})
	for i := range 10 {
		p.Push(t0, testFrame(uint64(i), 1000))
	}
	for i := range 10 {
		due, _ := p.NextDue()
		if want := t0.Add(2*time.Millisecond + time.Duration(i+1)*time.Millisecond); !due.Equal(want) {
			t.Fatalf("frame %d due at +%v, want +%v", i, due.Sub(t0), want.Sub(t0))
		}
		p.Pop(due)
	}
	// After an idle spell the link starts afresh.
	later := t0.Add(time.Second)
	p.Push(later, testFrame(99, 500))
	if due, _ := p.NextDue(); !due.Equal(later.Add(2*time.Millisecond + 500*time.Microsecond)) {
		t.Errorf("after idle: due at +%v", due.Sub(later))
	}
}

func TestLimitTailDrops(t *testing.T) {
	p := newTestPipeline(netem.Netem{Delay: netem.Duration(time.Second), Limit: 10})
	for i := range 15 {
		p.Push(t0, testFrame(uint64(i), 100))
	}
	c := p.Counters()
	if p.Len() != 10 || c.QueueDrops != 5 || c.Queued != 10 {
		t.Errorf("held %d, counters %+v; want 10 held and 5 tail drops", p.Len(), c)
	}
	out := run(p, 0, 0, 0)
	for i, f := range out {
		if frameID(f) != uint64(i) {
			t.Errorf("tail drop kept frame %d in place %d: the head was dropped", frameID(f), i)
		}
	}
	checkConservation(t, p.Counters())
}

// netem's "reorder 100% gap 5": every fifth frame is sent at once, the others
// are delayed.
func TestReorderGap(t *testing.T) {
	p := newTestPipeline(netem.Netem{Delay: ms(10), Reorder: 100, Gap: 5})
	var immediate []uint64
	for i := range 20 {
		now := t0.Add(time.Duration(i) * time.Microsecond)
		p.Push(now, testFrame(uint64(i), 100))
		for f := p.Pop(now); f != nil; f = p.Pop(now) {
			immediate = append(immediate, frameID(f))
		}
	}
	if fmt.Sprint(immediate) != "[4 9 14 19]" {
		t.Errorf("sent at once: %v, want [4 9 14 19]", immediate)
	}
	if c := p.Counters(); c.Reordered != 4 {
		t.Errorf("Reordered %d", c.Reordered)
	}
	// reorder 25% without gap: any frame may go, with probability 25%.
	p = newTestPipeline(netem.Netem{Delay: ms(10), Reorder: 25})
	const n = 20000
	out := run(p, n, 20*time.Microsecond, 100) // 500 held at a time: below the limit
	withinBinomial(t, "reordered", int(p.Counters().Reordered), n, 0.25, 5)
	early := 0
	for i := 1; i < len(out); i++ {
		if frameID(out[i]) < frameID(out[i-1]) {
			early++
		}
	}
	if early == 0 {
		t.Error("no frame arrived out of order")
	}
}

func TestMTUAndDown(t *testing.T) {
	p := newTestPipeline(netem.Netem{})
	p.Set(netem.Netem{}, 100, false)
	p.Push(t0, testFrame(1, 114)) // 100-byte IP packet
	p.Push(t0, testFrame(2, 115))
	if f := p.Pop(t0); f == nil || frameID(f) != 1 {
		t.Fatal("a packet of exactly the MTU did not pass")
	}
	if f := p.Pop(t0); f != nil || p.Counters().MTUDrops != 1 {
		t.Fatalf("a packet over the MTU passed: %+v", p.Counters())
	}
	// Down drops what comes and what is held.
	p.Set(netem.Netem{Delay: ms(10)}, 0, false)
	p.Push(t0, testFrame(3, 100))
	p.Set(netem.Netem{Delay: ms(10)}, 0, true)
	p.Push(t0, testFrame(4, 100))
	if p.Len() != 0 || p.Counters().DownDrops != 2 {
		t.Fatalf("down: held %d, %+v", p.Len(), p.Counters())
	}
	p.Set(netem.Netem{}, 0, false)
	p.Push(t0.Add(time.Second), testFrame(5, 100))
	if f := p.Pop(t0.Add(time.Second)); f == nil || frameID(f) != 5 {
		t.Fatal("nothing passes after coming back up")
	}
	checkConservation(t, p.Counters())
}

func TestChangeTakesEffectOnNextFrame(t *testing.T) {
	p := newTestPipeline(netem.Netem{})
	var got []uint64
	push := func(i uint64) {
		p.Push(t0, testFrame(i, 100))
		for f := p.Pop(t0); f != nil; f = p.Pop(t0) {
			got = append(got, frameID(f))
		}
	}
	push(1)
	push(2)
	p.Set(netem.Netem{Loss: netem.Loss{Random: 100}}, 0, false)
	push(3)
	push(4)
	p.Set(netem.Netem{}, 0, false)
	push(5)
	if fmt.Sprint(got) != "[1 2 5]" {
		t.Errorf("delivered %v, want [1 2 5]", got)
	}
	// Frames already held keep their time; the new delay applies to new ones,
	// and they still leave in order.
	p.Set(netem.Netem{Delay: ms(100)}, 0, false)
	p.Push(t0, testFrame(6, 100))
	p.Set(netem.Netem{Delay: ms(1)}, 0, false)
	p.Push(t0, testFrame(7, 100))
	if due, _ := p.NextDue(); !due.Equal(t0.Add(100 * time.Millisecond)) {
		t.Errorf("held frame's time changed to +%v", due.Sub(t0))
	}
	if f := p.Pop(t0.Add(100 * time.Millisecond)); frameID(f) != 6 {
		t.Errorf("frame %d left first", frameID(f))
	}
}

// FuzzParseChange runs whatever settings ParseChange accepts and Validate
// passes through a Pipeline.
func FuzzParseChange(f *testing.F) {
	for _, s := range []string{"--delay 50ms --loss 20%", "loss gemodel 1% 30% 100% 0%", "--down", "--up false",
		"--b-to-a.rate=10mbit --limit 5", "--mtu 1400 --reorder 25% --gap 5 --delay 1ms", "--distribution normal --jitter 3ms"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := netem.ParseChange(strings.Fields(s))
		if err != nil {
			return
		}
		p := c.Apply(netem.Params{})
		if p.Validate() == nil {
			_ = p.String()
			pl := NewPipeline(1, "fuzz", netem.AtoB)
			pl.Set(p.AtoB, p.MTU, p.Down)
			start := time.Unix(0, 0)
			for i := range 10 {
				pl.Push(start.Add(time.Duration(i)*time.Millisecond), &Frame{Data: make([]byte, 100)})
			}
		}
	})
}

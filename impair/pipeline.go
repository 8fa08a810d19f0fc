package impair

import (
	"crypto/sha256"
	"encoding/binary"
	"math/rand/v2"
	"time"

	"github.com/ipseclab/ipseclab/impair/netem"
	"github.com/ipseclab/ipseclab/internal/vnet"
)

// Counters count one direction of a link, in packets on the wire (a GSO
// super-frame counts as the packets it stands for) and bytes of Ethernet
// frames. Sent + Duplicated = Delivered + Lost + QueueDrops + MTUDrops +
// DownDrops + Malformed + Queued.
type Counters struct {
	Sent           uint64 `json:"sent"` // transmitted into the link by the sending end
	SentBytes      uint64 `json:"sent_bytes"`
	Delivered      uint64 `json:"delivered"` // left the link toward the receiving end
	DeliveredBytes uint64 `json:"delivered_bytes"`
	Lost           uint64 `json:"lost"`                  // dropped by the loss model
	QueueDrops     uint64 `json:"queue_drops"`           // dropped because the direction held Limit frames
	MTUDrops       uint64 `json:"mtu_drops"`             // dropped because the IP packet exceeded the MTU
	DownDrops      uint64 `json:"down_drops"`            // dropped because the link was down
	Duplicated     uint64 `json:"duplicated"`            // extra copies made
	Corrupted      uint64 `json:"corrupted"`             // given a flipped bit
	Reordered      uint64 `json:"reordered"`             // sent ahead of frames held back
	Queued         uint64 `json:"queued"`                // held right now, delayed or waiting for the rate
	Malformed      uint64 `json:"malformed,omitzero"`    // offload frames that could not be cut into packets
	WriteErrors    uint64 `json:"write_errors,omitzero"` // of Delivered, refused by the receiving device (e.g. set down by hand)
}

// Pipeline is one direction of a link: netem's decisions, as a pure state
// machine with no devices, no goroutines and no clock of its own. Frames go in
// with Push at the time they arrive and come out of Pop once their time has
// come; every random decision comes from a PRNG fixed by the seed, so the same
// seed, settings and frame sequence give the same drops, duplicates, delays and
// corruptions. It is not safe for concurrent use.
//
// Per frame, in netem's order (net/sched/sch_netem.c, netem_enqueue):
//  1. down: dropped; MTU: dropped if the IP packet is larger.
//  2. duplicate: decide whether to make a second copy.
//  3. loss: one copy is lost (the only one, unless duplicated).
//  4. corrupt: flip one random bit of the IP packet.
//  5. limit: dropped if the direction already holds Limit frames.
//  6. reorder: after every Gap-1 normally scheduled frames, a frame is sent at
//     once, ahead of those held back, with probability Reorder.
//  7. otherwise it leaves at max(now + delay ± jitter, the previous frame's
//     time) + its transmission time at Rate.
//  8. the second copy, if any, goes through 3-7 itself.
//
// Step 7 differs from netem on purpose: netem keeps its queue sorted by time,
// so jitter alone reorders frames; here jitter never reorders — a frame that
// would overtake its predecessor leaves right after it (netem behaves so with
// a rate set). Only Reorder reorders.
type Pipeline struct {
	cfg  netem.Netem
	mtu  int
	down bool

	rng          *rand.Rand
	geBad        bool // the Gilbert-Elliott channel is in its BAD state
	reorderCount int  // frames scheduled normally since the last reordered one (netem's q->counter)
	lastDue      time.Time
	queue        frameQueue
	seq          uint64
	c            Counters
}

// NewPipeline returns the pipeline of one direction of a link, its PRNG seeded
// from the lab's seed, the link's identity and the direction.
func NewPipeline(labSeed uint64, link string, d netem.Dir) *Pipeline {
	h := sha256.New()
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], labSeed)
	h.Write([]byte("ipseclab impair v1\x00"))
	h.Write(b[:])
	h.Write([]byte(link + "\x00" + d.String()))
	sum := h.Sum(nil)
	pcg := rand.NewPCG(binary.BigEndian.Uint64(sum[0:8]), binary.BigEndian.Uint64(sum[8:16]))
	return &Pipeline{rng: rand.New(pcg)}
}

// Set changes the settings; the next frame pushed sees them. Frames already
// held keep the time they were given. Going down drops them.
func (p *Pipeline) Set(n netem.Netem, mtu int, down bool) {
	p.cfg, p.mtu = n, mtu
	if down && !p.down {
		for f := p.queue.popFront(); f != nil; f = p.queue.popFront() {
			packets, _ := f.wire()
			p.c.DownDrops += uint64(packets)
			p.c.Queued -= uint64(packets)
			f.release()
		}
	}
	p.down = down
}

// Settings returns what Set last set.
func (p *Pipeline) Settings() (n netem.Netem, mtu int, down bool) { return p.cfg, p.mtu, p.down }

// Counters returns the counters so far.
func (p *Pipeline) Counters() Counters { return p.c }

// Len is how many frames are held.
func (p *Pipeline) Len() int { return p.queue.len() }

// NextDue returns when the first held frame may leave.
func (p *Pipeline) NextDue() (time.Time, bool) {
	f := p.queue.front()
	if f == nil {
		return time.Time{}, false
	}
	return f.due, true
}

// Pop returns the next frame if its time has come by now, else nil.
func (p *Pipeline) Pop(now time.Time) *Frame {
	f := p.queue.front()
	if f == nil || f.due.After(now) {
		return nil
	}
	p.queue.popFront()
	packets, bytes := f.wire()
	p.c.Queued -= uint64(packets)
	p.c.Delivered += uint64(packets)
	p.c.DeliveredBytes += uint64(bytes)
	return f
}

// Push hands the pipeline a frame that arrived at now. The pipeline owns it
// from then on: it comes out of Pop, or is dropped and released.
func (p *Pipeline) Push(now time.Time, f *Frame) {
	p.seq++
	f.seq = p.seq
	packets, bytes := f.wire()
	p.c.Sent += uint64(packets)
	p.c.SentBytes += uint64(bytes)
	switch {
	case p.down:
		p.c.DownDrops += uint64(packets)
		f.release()
	case p.mtu > 0 && f.ipPacketLen() > p.mtu:
		p.c.MTUDrops += uint64(packets)
		f.release()
	default:
		p.enqueue(now, f, true)
	}
}

// reject counts a frame that could not be made into packets, and releases it.
func (p *Pipeline) reject(f *Frame) {
	packets, bytes := f.wire()
	p.c.Sent += uint64(packets)
	p.c.SentBytes += uint64(bytes)
	p.c.Malformed += uint64(packets)
	f.release()
}

// enqueue runs steps 2 to 8 of the Pipeline's documentation.
func (p *Pipeline) enqueue(now time.Time, f *Frame, mayDuplicate bool) {
	n := &p.cfg
	packets, bytes := f.wire()
	copies := 1
	if mayDuplicate && n.Duplicate > 0 && p.chance(n.Duplicate) {
		copies++
		p.c.Duplicated += uint64(packets)
	}
	if p.lossEvent() {
		copies--
		p.c.Lost += uint64(packets)
	}
	if copies == 0 {
		f.release()
		return
	}
	var second *Frame
	if copies == 2 {
		second = copyFrame(f) // before corruption: each copy is corrupted, or not, on its own
	}
	if n.Corrupt > 0 && p.chance(n.Corrupt) {
		p.corrupt(f)
		p.c.Corrupted += uint64(packets)
	}
	if p.queue.len() >= n.QueueLimit() {
		p.c.QueueDrops += uint64(packets)
		f.release()
		if second != nil {
			p.c.QueueDrops += uint64(packets)
			second.release()
		}
		return
	}
	p.c.Queued += uint64(packets)
	if n.Reorder > 0 && p.reorderCount >= n.ReorderGap()-1 && p.chance(n.Reorder) {
		f.due = now
		p.reorderCount = 0
		p.queue.pushFront(f)
		p.c.Reordered += uint64(packets)
	} else {
		due := now.Add(p.delay())
		if due.Before(p.lastDue) {
			due = p.lastDue
		}
		due = due.Add(txTime(n.Rate, bytes))
		p.lastDue = due
		f.due = due
		p.reorderCount++
		p.queue.pushBack(f)
	}
	if second != nil {
		p.enqueue(now, second, false)
	}
}

// txTime is how long the rate takes to put n bytes on the wire.
func txTime(r netem.Rate, n int) time.Duration {
	if r == 0 {
		return 0
	}
	return time.Duration(float64(n) * 8 * 1e9 / float64(r))
}

// chance is true with the given probability.
func (p *Pipeline) chance(pc netem.Percent) bool { return p.rng.Float64() < pc.Prob() }

// lossEvent decides whether a frame is lost. The Gilbert-Elliott channel
// decides its next state, then loses the frame with its current state's loss
// probability, as netem's loss_gilb_ell does.
func (p *Pipeline) lossEvent() bool {
	l := p.cfg.Loss
	if !l.GE {
		return l.Random > 0 && p.chance(l.Random)
	}
	if !p.geBad {
		if p.chance(l.P) {
			p.geBad = true
		}
		return p.chance(l.GoodLoss)
	}
	if p.chance(l.R) {
		p.geBad = false
	}
	return p.chance(l.BadLoss)
}

// delay draws the delay of one frame.
func (p *Pipeline) delay() time.Duration {
	d, j := float64(p.cfg.Delay), float64(p.cfg.Jitter)
	if j == 0 {
		return time.Duration(d)
	}
	if p.cfg.Distribution == netem.Normal {
		d += j * p.rng.NormFloat64()
	} else {
		d += j * (2*p.rng.Float64() - 1)
	}
	return time.Duration(max(d, 0))
}

// corrupt flips one random bit of the frame's IP packet. Unlike netem, which
// may hit the Ethernet header (and the frame then just vanishes at the
// receiver's MAC filter), the bit is always in the packet, so every corrupted
// frame reaches the receiver's IP layer, where a checksum or ESP's ICV must
// catch it. Offload metadata is cleared so that the receiver does verify.
func (p *Pipeline) corrupt(f *Frame) {
	start := l2HeaderLen(f.Data)
	if start >= len(f.Data) {
		start = 0
	}
	if len(f.Data) == 0 {
		return
	}
	i := start + p.rng.IntN(len(f.Data)-start)
	f.Data[i] ^= 1 << p.rng.IntN(8)
	f.vnet = vnet.Hdr{}
}

// frameQueue is a double-ended ring of frames: normally scheduled frames join
// at the back in time order, reordered ones at the front.
type frameQueue struct {
	ring       []*Frame
	head, size int
}

func (q *frameQueue) len() int { return q.size }

func (q *frameQueue) front() *Frame {
	if q.size == 0 {
		return nil
	}
	return q.ring[q.head]
}

func (q *frameQueue) grow() {
	if q.size < len(q.ring) {
		return
	}
	ring := make([]*Frame, max(16, 2*len(q.ring)))
	for i := 0; i < q.size; i++ {
		ring[i] = q.ring[(q.head+i)%len(q.ring)]
	}
	q.ring, q.head = ring, 0
}

func (q *frameQueue) pushBack(f *Frame) {
	q.grow()
	q.ring[(q.head+q.size)%len(q.ring)] = f
	q.size++
}

func (q *frameQueue) pushFront(f *Frame) {
	q.grow()
	q.head = (q.head - 1 + len(q.ring)) % len(q.ring)
	q.ring[q.head] = f
	q.size++
}

func (q *frameQueue) popFront() *Frame {
	if q.size == 0 {
		return nil
	}
	f := q.ring[q.head]
	q.ring[q.head] = nil
	q.head = (q.head + 1) % len(q.ring)
	q.size--
	return f
}

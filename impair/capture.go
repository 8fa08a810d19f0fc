package impair

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"github.com/ipseclab/ipseclab/events"
	"github.com/ipseclab/ipseclab/impair/netem"
)

// CapturePoint says where on the wire a capture listens.
type CapturePoint int

const (
	// AtReceiver captures what the receiving end got: after loss, with
	// duplicates, corruption, delay and reordering, in delivery order, stamped
	// with the time of delivery. It is what Wireshark on the receiving
	// interface would show, and the default.
	AtReceiver CapturePoint = iota
	// AtSender captures what the sending end transmitted, before any
	// impairment, stamped with the time the link took it. Frames the link then
	// drops appear here and nowhere else.
	AtSender
)

func (p CapturePoint) String() string {
	if p == AtSender {
		return "sender"
	}
	return "receiver"
}

// CaptureOptions tune a capture.
type CaptureOptions struct {
	Point      CapturePoint
	Directions []netem.Dir // nil: both directions, interleaved in time order
	Snaplen    int         // bytes kept of each frame; 0: 65535
	// Buffer is how many frames may wait for a slow writer; beyond that frames
	// are left out of the capture (counted, never slowing the link). 0: 8192.
	Buffer int
}

// Capture is a running pcap capture of a link. A link can have several at
// once. Frames in a capture are always real packets: while one runs, the
// directions it watches take no GSO super-frames (offloads off), so the
// capture shows what a NIC would have put on the wire.
type Capture struct {
	link   *Link
	point  CapturePoint
	dirs   []netem.Dir
	ch     chan capturedFrame
	done   chan struct{}
	closer io.Closer

	packets, dropped atomic.Uint64
	stopOnce         sync.Once
	err              error // the writer's, read after done
}

type capturedFrame struct {
	ts   time.Time
	data []byte
	orig int
}

// Capture starts capturing the link's frames to w as a pcap stream (link
// type Ethernet, nanosecond timestamps). A goroutine writes the file header
// at once, then every frame as it passes, flushing whenever it catches up, so
// that `tshark -r -` on the other end of a pipe sees frames live; Capture
// itself never waits for w.
func (l *Link) Capture(w io.Writer, opt CaptureOptions) (*Capture, error) {
	if opt.Snaplen <= 0 {
		opt.Snaplen = 65535
	}
	if opt.Buffer <= 0 {
		opt.Buffer = 8192
	}
	dirs := opt.Directions
	if len(dirs) == 0 {
		dirs = []netem.Dir{netem.AtoB, netem.BtoA}
	}
	c := &Capture{link: l, point: opt.Point, dirs: dirs, ch: make(chan capturedFrame, opt.Buffer), done: make(chan struct{})}
	if err := l.attach(c); err != nil {
		return nil, err
	}
	go c.write(w, opt.Snaplen)
	l.pub.Publish(events.Event{Kind: events.CaptureStarted,
		Message: fmt.Sprintf("capture of %s started at the %s", l.cfg.Name, c.point),
		Fields:  map[string]any{"point": c.point.String()}})
	return c, nil
}

// CaptureFile captures to a new pcap file at path; Close closes the file.
func (l *Link) CaptureFile(path string, opt CaptureOptions) (*Capture, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	c, err := l.Capture(f, opt)
	if err != nil {
		f.Close()
		os.Remove(path)
		return nil, err
	}
	c.closer = f
	return c, nil
}

// offer queues a copy of a frame, or counts it dropped when the writer lags.
// Called by the forwarders with their lock held, so it never blocks.
func (c *Capture) offer(ts time.Time, data []byte) {
	select {
	case c.ch <- capturedFrame{ts: ts, data: append([]byte(nil), data...), orig: len(data)}:
	default:
		c.dropped.Add(1)
	}
}

func (c *Capture) write(w io.Writer, snaplen int) {
	defer close(c.done)
	bw := bufio.NewWriterSize(w, 64<<10)
	pw := pcapgo.NewWriterNanos(bw)
	err := pw.WriteFileHeader(uint32(snaplen), layers.LinkTypeEthernet)
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		c.err = err
		go c.stop()
	}
	for fr := range c.ch {
		if err != nil {
			continue // the writer failed: drain until Close
		}
		data := fr.data
		if len(data) > snaplen {
			data = data[:snaplen]
		}
		ci := gopacket.CaptureInfo{Timestamp: fr.ts, CaptureLength: len(data), Length: fr.orig}
		if err = pw.WritePacket(ci, data); err == nil {
			c.packets.Add(1)
			if len(c.ch) == 0 {
				err = bw.Flush()
			}
		}
		if err != nil {
			c.err = err
			go c.stop() // a reader went away (`tshark` quit): stop capturing
		}
	}
	if err == nil {
		c.err = bw.Flush()
	}
	if c.closer != nil {
		if cerr := c.closer.Close(); c.err == nil {
			c.err = cerr
		}
	}
}

// stop detaches the capture from the link and lets the writer finish.
func (c *Capture) stop() {
	c.stopOnce.Do(func() {
		c.link.detach(c)
		close(c.ch) // no forwarder offers any more: detach took their locks
		<-c.done
		packets, dropped := c.Stats()
		msg := fmt.Sprintf("capture of %s finished: %d frames", c.link.cfg.Name, packets)
		if dropped > 0 {
			msg += fmt.Sprintf(", %d left out because the reader was slow", dropped)
		}
		ev := events.Event{Kind: events.CaptureFinished, Message: msg,
			Fields: map[string]any{"packets": packets, "dropped": dropped}}
		if c.err != nil {
			ev.Message += ": " + c.err.Error()
			ev.Fields["error"] = c.err.Error()
		}
		c.link.pub.Publish(ev)
	})
}

// Close stops the capture, writes out what is queued and closes the file of
// CaptureFile. It returns the writer's error, if any.
func (c *Capture) Close() error {
	c.stop()
	return c.err
}

// Done is closed when the capture has ended: by Close, by the link closing, or
// because writing failed (see Err).
func (c *Capture) Done() <-chan struct{} { return c.done }

// Err is the write error that ended the capture, once Done is closed.
func (c *Capture) Err() error {
	select {
	case <-c.done:
		return c.err
	default:
		return nil
	}
}

// Stats returns how many frames were written and how many were left out
// because the writer could not keep up.
func (c *Capture) Stats() (packets, dropped uint64) { return c.packets.Load(), c.dropped.Load() }

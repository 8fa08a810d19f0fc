package esp

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sync"

	"github.com/ipseclab/ipseclab/events"
)

// The outbound path, one goroutine (wireguard-go's send.go has the same shape):
//
//	Device.Read (a batch of inner packets, each at Headroom in its buffer)
//	  → SPD lookup on the packet's selectors        (no policy: drop, counted)
//	  → the policy's current SA                     (none: hold the packet, acquire)
//	  → SA.protect: sequence number, ESP/AH in place, outer header
//	  → lifetimes, counters, the first packets described
//	  → Network.SendIP / SendUDP (one batch each)

// wireBuffers is a batch of buffers for the outbound goroutine, allocated
// once: the inner packets, and what goes to each socket.
type wireBuffers struct {
	bufs  [][]byte
	sizes []int
	ip    [][]byte
	udp   [][]byte
	dsts  []netip.AddrPort
	jobs  sealJobs // CBC packets queued in ip and udp, to encrypt before sending
}

// newWireBuffers allocates the batch: the first buffer holds a whole TUN
// read (a super-packet of up to 64 KiB), the others one segment each, side
// by side in one allocation. Buffers of 64 KiB each would put every packet
// at the same offset modulo 4 KiB, where they compete for the same cache
// sets.
func newWireBuffers(n, pathMTU int) *wireBuffers {
	w := &wireBuffers{
		bufs: make([][]byte, n), sizes: make([]int, n),
		ip: make([][]byte, 0, n), udp: make([][]byte, 0, n), dsts: make([]netip.AddrPort, 0, n),
	}
	w.bufs[0] = make([]byte, Headroom+maxPacket+Tailroom)
	seg := segmentBufferSize(pathMTU)
	slab := make([]byte, (n-1)*seg)
	for i := 1; i < n; i++ {
		w.bufs[i] = slab[(i-1)*seg : i*seg : i*seg]
	}
	return w
}

// segmentBufferSize is a buffer for one packet of the path MTU, with the
// room ESP needs around it.
func segmentBufferSize(pathMTU int) int {
	return Headroom + max(pathMTU, ethernetMTU) + Tailroom
}

// ethernetMTU is the least of the path MTUs a data plane sizes its buffers
// for (DataPlane.maxPath), whatever its Routes say.
const ethernetMTU = 1500

// maxBatch bounds batches whatever a device claims.
const maxBatch = 128

// maxPacket is the largest IPv4 packet, and so the largest Device read (a
// TSO super-packet) and write (a GRO one).
const maxPacket = 65535

// wirePools lend wireBuffers, by batch size and path MTU: the outbound path
// of a TryDevice gives its batch back while it waits for packets.
var wirePools sync.Map // wirePoolKey → *sync.Pool

type wirePoolKey struct{ n, pathMTU int }

func wirePool(n, pathMTU int) *sync.Pool {
	k := wirePoolKey{n, pathMTU}
	if p, ok := wirePools.Load(k); ok {
		return p.(*sync.Pool)
	}
	p, _ := wirePools.LoadOrStore(k, &sync.Pool{New: func() any { return newWireBuffers(n, pathMTU) }})
	return p.(*sync.Pool)
}

func (d *DataPlane) routineOutbound() {
	defer d.workers.Done()
	n := min(max(d.dev.BatchSize(), 1), maxBatch)
	pool := wirePool(n, d.maxPath)
	try, _ := d.dev.(TryDevice)
	var w *wireBuffers
	for {
		if w == nil {
			w = pool.Get().(*wireBuffers)
		}
		// Packets are read at Headroom; the device may use the bytes in front.
		var count int
		var err error
		if try != nil {
			var wouldBlock bool
			if count, wouldBlock, err = try.TryRead(w.bufs, w.sizes, Headroom); wouldBlock {
				pool.Put(w)
				w = nil
				if err = try.WaitReadable(); err == nil {
					continue
				}
			}
		} else {
			count, err = d.dev.Read(w.bufs, w.sizes, Headroom)
		}
		if err != nil {
			if d.closed.Load() || errors.Is(err, os.ErrClosed) {
				return
			}
			d.st.deviceErrors.Add(1)
			continue
		}
		d.batchTime.Store(d.now().UnixNano())
		w.ip, w.udp, w.dsts = w.ip[:0], w.udp[:0], w.dsts[:0]
		for i := 0; i < count; i++ {
			d.outbound(w, w.bufs[i], Headroom, Headroom+w.sizes[i])
		}
		d.flush(w)
	}
}

// flush finishes and sends what outbound queued.
func (d *DataPlane) flush(w *wireBuffers) {
	w.jobs.run()
	if ff := d.faults.Load(); ff != nil {
		d.applyFaults(ff, w)
	}
	if len(w.ip) > 0 {
		if err := d.net.SendIP(w.ip); err != nil {
			d.st.sendErrors.Add(1)
		}
	}
	if len(w.udp) > 0 {
		if err := d.net.SendUDP(w.udp, w.dsts); err != nil {
			d.st.sendErrors.Add(1)
		}
	}
}

// outbound processes one inner packet buf[p0:p1] and queues its protected form
// in w.
func (d *DataPlane) outbound(w *wireBuffers, buf []byte, p0, p1 int) {
	ihl, total, err := ipv4Header(buf[p0:p1])
	if err != nil {
		if errors.Is(err, errNotIPv4) {
			d.st.notIPv4.Add(1)
		} else {
			d.st.malformed.Add(1)
		}
		return
	}
	p1 = p0 + total
	f := parseFlow(buf[p0:p1], ihl)
	p := d.spd.Load().lookup(&f)
	if p == nil {
		d.st.noPolicy.Add(1)
		d.dropEvent(nil, "no-policy", func() string {
			return fmt.Sprintf("outbound %s matches no policy", describeIPv4(buf[p0:p1]))
		})
		return
	}
	sa := p.current.Load()
	if sa == nil {
		if sa = d.holdForAcquire(p, &f, buf[p0:p1]); sa == nil {
			return
		}
	}

	var inner string
	var plain []byte
	if d.wantsDescription(sa) {
		inner = describeIPv4(buf[p0:p1])
		plain = bytes.Clone(buf[p0:min(p1, p0+maxDescribedPlain)])
	}
	start, end, seq, r := sa.protectLater(&w.jobs, buf, p0, p1)
	if r != dropNone {
		d.countDrop(sa, r)
		if r == dropSeqExhausted {
			d.expire(sa, true, "sequence numbers")
		}
		d.dropEvent(sa, r.String(), func() string {
			return fmt.Sprintf("outbound packet on SA %s dropped: %s", sa.id, r)
		})
		return
	}
	d.account(sa, total)
	if inner != "" {
		d.describe(sa, inner, plain, buf[start:end], seq)
	}
	if sa.cfg.Encap != nil {
		w.udp = append(w.udp, buf[start:end])
		w.dsts = append(w.dsts, *sa.encapPeer.Load())
	} else {
		w.ip = append(w.ip, buf[start:end])
	}
}

// holdForAcquire keeps a packet that matched a policy with no SA, and asks IKE
// for one (RFC 4301 §5.1 calls this an acquire; here it is step 1). If an SA
// was installed since the policy was looked at, it returns it instead.
func (d *DataPlane) holdForAcquire(p *policy, f *flow, pkt []byte) *saState {
	sa, fire := p.hold(pkt, d.now(), d.cfg.AcquireRetry)
	if sa != nil || !fire {
		return sa
	}
	req := AcquireRequest{
		Conn: p.Conn, LocalTS: p.LocalTS, RemoteTS: p.RemoteTS,
		Src: f.src, Dst: f.dst, Protocol: f.proto, SrcPort: f.sport, DstPort: f.dport,
		Packet: describeIPv4(pkt),
	}
	d.pub.Publish(events.Event{
		Kind: events.Acquire, Step: events.StepInitiation, Conn: p.Conn,
		Message: fmt.Sprintf("%s matched policy %s ⇄ %s, which has no SA: acquire", req.Packet, p.LocalTS, p.RemoteTS),
		Explain: "The first packet that needs protection and finds no SA asks IKE to negotiate one; it waits in a queue meanwhile.",
		Packet:  &events.PacketInfo{Inner: req.Packet, Len: len(pkt)},
	})
	if h := d.hooks.Load().Acquire; h != nil {
		d.notes.post(func() { h(req) })
	}
	return nil
}

// sendHeld sends the packets a policy held for an acquire through its new SA.
func (d *DataPlane) sendHeld(p *policy) {
	held := p.release()
	if len(held) == 0 || d.net == nil {
		return // nothing held, or not started: nothing can have been held
	}
	w := newWireBuffers(len(held), 0)
	for i, pkt := range held {
		buf := make([]byte, Headroom+len(pkt)+Tailroom)
		copy(buf[Headroom:], pkt)
		w.bufs[i] = buf
		d.outbound(w, buf, Headroom, Headroom+len(pkt))
	}
	d.flush(w)
}

func (d *DataPlane) wantsDescription(sa *saState) bool {
	return int(sa.described.Load()) < d.cfg.DescribePackets
}

// maxDescribedPlain is how much of a described packet's decrypted inner
// packet its event carries: the headers, and a little of the data.
const maxDescribedPlain = 128

// describe publishes an ESPPacket event for one of an SA's first packets.
// wire is the packet as sent or received (with or without its IP header),
// plain the first bytes of the inner packet, decrypted.
func (d *DataPlane) describe(sa *saState, inner string, plain, wire []byte, seq uint64) {
	if int(sa.described.Add(1)) > d.cfg.DescribePackets {
		return
	}
	c := &sa.cfg
	info := &events.PacketInfo{Inner: inner, SPI: fmt.Sprintf("%08x", c.SPI), Seq: seq, Len: len(wire), Plain: plain}
	info.Wire, info.ICV = sa.wireHead(wire)
	if sa.esp != nil {
		info.ICVLen = sa.esp.icvLen
	}
	outer := fmt.Sprintf("%s %s → %s", protoName(uint8(c.Protocol)), c.Local, c.Remote)
	if c.Dir == Inbound {
		outer = fmt.Sprintf("%s %s → %s", protoName(uint8(c.Protocol)), c.Remote, c.Local)
	}
	if peer := sa.encapPeer.Load(); peer != nil {
		outer = fmt.Sprintf("UDP %d/%d ", c.Encap.LocalPort, peer.Port()) + outer
	}
	verb := "protected"
	if c.Dir == Inbound {
		verb = "accepted"
	}
	explain := map[Mode]string{
		Tunnel:    "Tunnel mode wraps the whole inner packet behind a new outer IP header between the gateways.",
		Transport: "Transport mode keeps the original IP header and protects what follows it.",
	}[c.Mode]
	if c.Mode == Transport && c.Encap != nil && c.Dir == Inbound {
		explain = "Transport mode in UDP: the receiver rebuilds the IP header from the SA's addresses, which a NAT may have changed, and recomputes the TCP or UDP checksum for them (RFC 3948 §3.1.2)."
	}
	info.Outer = outer
	d.pub.Publish(events.Event{
		Kind: events.ESPPacket, Step: events.StepData, Conn: c.Conn,
		Message: fmt.Sprintf("%s %s: %s ⇒ %s, SPI %08x, seq %d", c.Dir, verb, inner, outer, c.SPI, seq),
		Explain: explain,
		SA:      d.saInfo(sa),
		Packet:  info,
	})
}

// dropEvent publishes an ESPDrop event, at most one per DropEventInterval per
// SA (or for all drops without an SA), saying how many were not published.
func (d *DataPlane) dropEvent(sa *saState, reason string, describe func() string) {
	last := &d.lastDrop
	if sa != nil {
		last = &sa.lastDrop
	}
	now := d.now().UnixNano()
	prev := last.Load()
	if (prev != 0 && now-prev < int64(d.cfg.DropEventInterval)) || !last.CompareAndSwap(prev, now) {
		if sa != nil {
			sa.suppressed.Add(1)
		}
		return
	}
	e := events.Event{
		Kind: events.ESPDrop, Step: events.StepData, Level: events.Warn,
		Message: describe(),
		Fields:  map[string]any{"reason": reason},
	}
	if sa != nil {
		e.Conn = sa.cfg.Conn
		e.SA = d.saInfo(sa)
		e.Fields["suppressed_since_last"] = sa.suppressed.Swap(0)
	}
	d.pub.Publish(e)
}

// wireHead returns, for an event, the start of a packet as on the wire up
// to its encrypted payload (the outer IPv4 header unless the SA is
// UDP-encapsulated, then the ESP header and IV, or the AH header with its
// ICV), and an inbound ESP packet's ICV as received. Copies: the buffers go
// back to their pool.
func (sa *saState) wireHead(wire []byte) (head, icv []byte) {
	off := 0
	if sa.cfg.Encap == nil && len(wire) > 0 && wire[0]>>4 == 4 {
		off = int(wire[0]&0x0f) * 4
	}
	n := off
	switch {
	case sa.esp != nil:
		n += espHeaderLen + sa.esp.ivLen
		if sa.cfg.Dir == Inbound && sa.esp.icvLen > 0 && len(wire) >= n+sa.esp.icvLen {
			icv = bytes.Clone(wire[len(wire)-sa.esp.icvLen:])
		}
	case sa.ah != nil:
		n += sa.ah.length()
	}
	return bytes.Clone(wire[:min(n, len(wire))]), icv
}

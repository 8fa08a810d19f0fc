package esp

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipseclab/ipseclab/events"
	"github.com/ipseclab/ipseclab/ipsec/fault"
)

// Faults on the outbound data path (package fault describes them). They act
// on a batch once it is protected and encrypted, just before it is sent
// (flush), as the network or an attacker would on the wire: the peer's
// inbound path then shows the lesson (an integrity failure counted, a replay
// dropped by the window, an SPI nobody holds, a packet too short). With
// nothing armed, flush pays one atomic load.

// espFaults is a data plane's armed faults and the packet a reorder holds.
type espFaults struct {
	mu    sync.Mutex
	armed []*fault.Armed
	held  *heldPacket
	// byConn counts the armed faults narrowed to a connection: only with
	// one does a batch look up which connection its packets' SAs serve.
	byConn atomic.Int32
}

// outKey names an outbound SA as a packet shows it: protocol and SPI. The
// peer chose the SPI; two peers choosing the same one for SAs of this node
// would share a connection's faults, which a lab does not notice.
type outKey struct {
	proto Protocol
	spi   uint32
}

// heldPacket is a packet a reorder holds until the next packet of its kind
// (raw or ESP in UDP) has gone, or its timer sends it: a packet with nothing
// after it must still arrive, late, as the IKE reorder's datagram does.
type heldPacket struct {
	b     []byte
	udp   bool
	dst   netip.AddrPort
	timer *time.Timer
}

// InjectFault arms a fault of plane esp on the outbound path.
func (d *DataPlane) InjectFault(f fault.Fault) error {
	if f.Plane != fault.ESP {
		return fmt.Errorf("the data plane takes faults of plane esp, not %q", f.Plane)
	}
	if err := f.Validate(); err != nil {
		return err
	}
	d.mu.Lock() // serialises arming and clearing; the packet path only loads the pointer
	defer d.mu.Unlock()
	ff := d.faults.Load()
	if ff == nil {
		ff = &espFaults{}
		d.faults.Store(ff)
	}
	ff.mu.Lock()
	if f.Conn != "" {
		ff.byConn.Add(1) // before the fault can meet a packet
	}
	ff.armed = append(ff.armed, fault.Arm(f, d.now()))
	ff.mu.Unlock()
	return nil
}

// ClearFaults disarms the data plane's faults; a packet held by a reorder
// is dropped with them. It returns how many faults were armed.
func (d *DataPlane) ClearFaults() int {
	d.mu.Lock()
	old := d.faults.Swap(nil)
	d.mu.Unlock()
	if old == nil {
		return 0
	}
	old.mu.Lock()
	defer old.mu.Unlock()
	if old.held != nil {
		old.held.timer.Stop()
		old.held = nil
	}
	return len(old.armed)
}

// ArmedFaults lists the data plane's armed faults, with what remains of
// each (one armed for a duration that has run out is gone).
func (d *DataPlane) ArmedFaults() []fault.Left {
	ff := d.faults.Load()
	if ff == nil {
		return nil
	}
	ff.mu.Lock()
	defer ff.mu.Unlock()
	now := d.now()
	var out []fault.Left
	for _, a := range ff.armed {
		if !a.Expired(now) {
			out = append(out, a.Left())
		}
	}
	return out
}

// applyFaults changes a batch ready to go: w.ip holds whole IPv4 packets,
// w.udp ESP-in-UDP payloads for w.dsts.
func (d *DataPlane) applyFaults(ff *espFaults, w *wireBuffers) {
	var conns map[outKey]string
	if ff.byConn.Load() > 0 {
		conns = d.outboundConns() // before ff.mu: arming takes d.mu, then ff.mu
	}
	ff.mu.Lock()
	defer ff.mu.Unlock()
	w.ip, _ = d.faultPackets(ff, conns, w.ip, nil, false)
	w.udp, w.dsts = d.faultPackets(ff, conns, w.udp, w.dsts, true)
}

// outboundConns maps the outbound SAs to their connections.
func (d *DataPlane) outboundConns() map[outKey]string {
	d.mu.Lock()
	defer d.mu.Unlock()
	m := map[outKey]string{}
	for _, sa := range d.sad.all {
		if sa.cfg.Dir == Outbound {
			m[outKey{sa.cfg.Protocol, sa.cfg.SPI}] = sa.cfg.Conn
		}
	}
	return m
}

// faultPackets runs the armed faults over one list of packets (and their
// destinations, for UDP) and returns them changed.
func (d *DataPlane) faultPackets(ff *espFaults, conns map[outKey]string, pkts [][]byte, dsts []netip.AddrPort, udp bool) ([][]byte, []netip.AddrPort) {
	out := make([][]byte, 0, len(pkts)+1)
	var outDsts []netip.AddrPort
	emit := func(b []byte, dst netip.AddrPort) {
		out = append(out, b)
		if udp {
			outDsts = append(outDsts, dst)
		}
	}
	for i, b := range pkts {
		var dst netip.AddrPort
		if udp && i < len(dsts) {
			dst = dsts[i]
		}
		off := 0 // where ESP or AH begins
		proto := ProtoESP
		if !udp {
			ihl, _, err := ipv4Header(b)
			if err != nil {
				emit(b, dst)
				continue
			}
			off, proto = ihl, Protocol(b[9])
		}
		if len(b) < off+8 || proto == ProtoAH && len(b) < off+12 {
			emit(b, dst)
			d.releaseHeld(ff, udp, emit)
			continue
		}
		spi, seq := binary.BigEndian.Uint32(b[off:]), binary.BigEndian.Uint32(b[off+4:])
		if proto == ProtoAH {
			spi, seq = binary.BigEndian.Uint32(b[off+4:]), binary.BigEndian.Uint32(b[off+8:])
		}
		a := ff.take(d, conns[outKey{proto, spi}])
		if a == nil {
			emit(b, dst)
			d.releaseHeld(ff, udp, emit)
			continue
		}
		note := ""
		switch a.Action {
		case fault.Corrupt:
			at := len(b) - 1 // the last byte of ESP's ICV
			if proto == ProtoAH && len(b) > off+12 {
				at = off + 12 // the first byte of AH's ICV
			}
			b[at] ^= 0xff
			emit(b, dst)
			d.releaseHeld(ff, udp, emit)
		case fault.Replay:
			emit(b, dst)
			emit(append([]byte(nil), b...), dst)
			note = "sent twice, with the same sequence number"
			d.releaseHeld(ff, udp, emit)
		case fault.WrongSPI:
			at := off
			if proto == ProtoAH {
				at = off + 4
			}
			wrong := spi ^ 0x5a5a5a5a
			binary.BigEndian.PutUint32(b[at:], wrong)
			note = fmt.Sprintf("SPI %08x instead of %08x", wrong, spi)
			emit(b, dst)
			d.releaseHeld(ff, udp, emit)
		case fault.Truncate:
			keep := off + max((len(b)-off)/2, 8)
			b = b[:keep]
			if !udp {
				binary.BigEndian.PutUint16(b[2:], uint16(keep))
				setIPv4Checksum(b[:off])
			}
			note = fmt.Sprintf("cut to %d bytes", keep)
			emit(b, dst)
			d.releaseHeld(ff, udp, emit)
		case fault.Reorder:
			d.releaseHeld(ff, udp, emit)
			hold := a.Delay
			if hold <= 0 {
				hold = fault.DefaultHold
			}
			d.hold(ff, &heldPacket{b: append([]byte(nil), b...), udp: udp, dst: dst}, hold)
			note = "held back, to go after the next packet or in " + hold.String()
		}
		d.publishESPFault(&a.Fault, spi, seq, note)
	}
	return out, outDsts
}

// releaseHeld sends the packet a reorder holds, after the one just emitted.
func (d *DataPlane) releaseHeld(ff *espFaults, udp bool, emit func([]byte, netip.AddrPort)) {
	if h := ff.held; h != nil && h.udp == udp {
		ff.held = nil
		h.timer.Stop()
		emit(h.b, h.dst)
	}
}

// hold keeps h back until the next packet of its kind leaves (releaseHeld)
// or hold has passed, whichever comes first. A packet held already, of the
// other kind, goes now: one held packet at a time. Called with ff.mu held.
func (d *DataPlane) hold(ff *espFaults, h *heldPacket, hold time.Duration) {
	if old := ff.held; old != nil {
		ff.held = nil
		old.timer.Stop()
		d.sendReordered(old)
	}
	ff.held = h
	h.timer = time.AfterFunc(hold, func() {
		ff.mu.Lock()
		defer ff.mu.Unlock()
		if ff.held != h { // released after a later packet, or cleared
			return
		}
		ff.held = nil
		if !d.closed.Load() {
			d.sendReordered(h)
		}
	})
}

// sendReordered sends a packet a reorder held, on its own.
func (d *DataPlane) sendReordered(h *heldPacket) {
	var err error
	if h.udp {
		err = d.net.SendUDP([][]byte{h.b}, []netip.AddrPort{h.dst})
	} else {
		err = d.net.SendIP([][]byte{h.b})
	}
	if err != nil {
		d.st.sendErrors.Add(1)
	}
}

// take counts a packet of connection conn's SA against the armed faults
// and returns the one that applies to it, if any. A fault of another
// connection does not count the packet.
func (ff *espFaults) take(d *DataPlane, conn string) *fault.Armed {
	now := d.now()
	for i := 0; i < len(ff.armed); i++ {
		a := ff.armed[i]
		if a.Conn != "" && a.Conn != conn {
			continue
		}
		apply, spent := a.Hit(now)
		if spent {
			ff.armed = slices.Delete(ff.armed, i, i+1)
			if a.Conn != "" {
				ff.byConn.Add(-1)
			}
			i--
		}
		if apply {
			return a
		}
	}
	return nil
}

var espFaultExplain = map[fault.Action]string{
	fault.Corrupt:  "One byte of the packet changed on the wire: the receiver's integrity check (the ICV, computed with a key only the two ends hold) fails, so it drops the packet and counts an integrity failure, without even decrypting it.",
	fault.Replay:   "The same packet arrives twice: the receiver's anti-replay window (RFC 4303 §3.4.3) remembers which sequence numbers it accepted and drops the copy, counting a replay.",
	fault.WrongSPI: "The SPI names the SA the receiver must use; with one it does not hold it can only drop the packet, and an IKE peer may say so with an INVALID-SPI notification.",
	fault.Truncate: "A packet cut short cannot carry its ICV whole: the receiver drops it as malformed or failing its integrity check.",
	fault.Reorder:  "The packet arrives after a later one (or, with none, late, once the hold has passed): the anti-replay window accepts a late packet whose sequence number it has not seen, as long as it is within the window.",
}

func (d *DataPlane) publishESPFault(f *fault.Fault, spi, seq uint32, note string) {
	node := d.cfg.Node
	msg := fmt.Sprintf("fault injected: %s %s an outbound packet of SA %08x, seq %d", node, f.Verb(), spi, seq)
	if note != "" {
		msg += " (" + note + ")"
	}
	d.pub.Publish(events.Event{
		Kind: events.FaultInjected, Step: events.StepData, Conn: f.Conn, Level: events.Warn,
		Message: msg, Explain: espFaultExplain[f.Action],
		Packet: &events.PacketInfo{SPI: fmt.Sprintf("%08x", spi), Seq: uint64(seq)},
		Fields: map[string]any{"action": string(f.Action), "plane": "esp", "spi": fmt.Sprintf("%08x", spi), "seq": seq},
	})
}

package esp

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"

	"github.com/ipseclab/ipseclab/ipsec/esp/internal/bufpool"
)

// The inbound path, one goroutine per receiver (raw ESP, raw AH, UDP 4500):
//
//	Receiver (a batch of datagrams, in the receiver's memory)
//	  → UDP only: keepalive, IKE (non-ESP marker) or ESP   (natt.go)
//	  → SA by protocol and SPI, then the destination       (unknown: drop, counted)
//	  → SA.unprotect: replay pre-check, ICV, window update, decryption into
//	    a buffer of the batch, inner packet rebuilt, policy check on it
//	  → lifetimes, counters, the first packets described
//	  → Device.Write (one batch)

// tunWriteOffset is the room kept in front of each packet handed to
// Device.Write, for the TUN's virtio-net header.
const tunWriteOffset = 16

func (d *DataPlane) routineInbound(r Receiver) {
	defer d.workers.Done()
	n := min(max(r.Batch, 1), maxBatch)
	pkts, srcs := make([][]byte, n), make([]netip.AddrPort, n)
	// The inner packets, one per buffer, side by side in a slab (see
	// newWireBuffers) borrowed for one batch: a receiver that waits holds
	// none. A packet larger than the path MTU borrows a buffer of 64 KiB.
	seg := segmentBufferSize(d.maxPath)
	slabs, large := bufpool.Of(n*seg), bufpool.Of(Headroom+maxPacket)
	var larges []*[]byte
	out := make([][]byte, 0, n)
	ahead := newICVAhead(n)
	for {
		count, err := r.Receive(pkts, srcs)
		if err != nil {
			if d.closed.Load() || errors.Is(err, os.ErrClosed) {
				return
			}
			continue
		}
		d.batchTime.Store(d.now().UnixNano())
		out = out[:0]
		ahead.check(d, pkts[:count], r.UDP)
		slab := slabs.Get()
		for i := 0; i < count; i++ {
			buf := (*slab)[i*seg : (i+1)*seg : (i+1)*seg]
			if len(pkts[i]) > len(buf)-Headroom {
				b := large.Get()
				larges = append(larges, b)
				buf = *b
			}
			var p0, p1 int
			var ok bool
			if r.UDP {
				p0, p1, ok = d.inboundUDP(pkts[i], srcs[i], buf, ahead.verdict(i))
			} else {
				p0, p1, ok = d.inboundIP(pkts[i], buf, ahead.verdict(i))
			}
			if ok {
				out = append(out, buf[p0-tunWriteOffset:p1])
			}
		}
		if len(out) > 0 {
			if _, err := d.dev.Write(out, tunWriteOffset); err != nil {
				d.st.deviceErrors.Add(1)
			}
		}
		slabs.Put(slab)
		for i, b := range larges {
			large.Put(b)
			larges[i] = nil
		}
		larges = larges[:0]
	}
}

// inboundIP handles a whole IPv4 packet from a raw socket (ESP or AH), and
// writes the inner packet to out (see saState.unprotect). ahead is its ICV
// checked ahead (icvahead.go), or nil.
func (d *DataPlane) inboundIP(pkt, out []byte, ahead *icvVerdict) (p0, p1 int, ok bool) {
	ihl, total, err := ipv4Header(pkt)
	if err != nil {
		d.st.malformed.Add(1)
		return 0, 0, false
	}
	pkt = pkt[:total]
	proto := Protocol(pkt[ipv4Protocol])
	var spi uint32
	switch {
	case proto == ProtoESP && total >= ihl+espHeaderLen:
		spi = be.Uint32(pkt[ihl:])
	case proto == ProtoAH && total >= ihl+ahFixedLen:
		spi = be.Uint32(pkt[ihl+4:])
	default:
		d.st.malformed.Add(1)
		return 0, 0, false
	}
	sa := d.lookupInbound(proto, spi, pkt)
	if sa == nil {
		d.reportUnknownSPI(proto, spi, netip.AddrPortFrom(ipv4Addr(pkt[ipv4Src:]), 0))
		return 0, 0, false
	}
	if sa.cfg.Encap != nil || ipv4Addr(pkt[ipv4Dst:]) != sa.cfg.Local || ipv4Addr(pkt[ipv4Src:]) != sa.cfg.Remote {
		// The SA was negotiated for another encapsulation (RFC 3948 §3.1.2) or
		// other endpoints. Without UDP encapsulation there is no NAT to change
		// the source, so it is checked too (RFC 4301 §5.2, step 4).
		d.drop(sa, dropPolicy)
		return 0, 0, false
	}
	return d.finishInbound(sa, pkt, ihl, out, ahead, netip.AddrPort{})
}

func (d *DataPlane) lookupInbound(proto Protocol, spi uint32, pkt []byte) *saState {
	sa := (*d.inbound.Load())[inKey{proto, spi}]
	if sa == nil {
		d.st.unknownSPI.Add(1)
		d.dropEvent(nil, "unknown-spi", func() string {
			return fmt.Sprintf("inbound %s SPI %08x matches no SA (%d bytes)", proto, spi, len(pkt))
		})
	}
	return sa
}

// reportUnknownSPI tells IKE that a peer sends into an SA we do not hold, so
// that it may answer INVALID-SPI; rate-limited, as a flood of such packets
// costs the sender nothing.
func (d *DataPlane) reportUnknownSPI(proto Protocol, spi uint32, peer netip.AddrPort) {
	h := d.hooks.Load().UnknownSPI
	if h == nil {
		return
	}
	now := d.now().UnixNano()
	prev := d.lastUnknownSPI.Load()
	if (prev != 0 && now-prev < int64(UnknownSPIInterval)) || !d.lastUnknownSPI.CompareAndSwap(prev, now) {
		return
	}
	u := UnknownSPI{Protocol: proto, SPI: spi, Peer: peer}
	d.notes.post(func() { h(u) })
}

// finishInbound runs the SA's checks and accounts for the result. src is
// where a UDP-encapsulated packet came from (the zero AddrPort for raw IP):
// only once the packet has passed them may it move the SA (mapping.go).
func (d *DataPlane) finishInbound(sa *saState, pkt []byte, ihl int, out []byte, ahead *icvVerdict, src netip.AddrPort) (int, int, bool) {
	p0, p1, seq, r := sa.unprotect(pkt, ihl, out, ahead)
	if r != dropNone {
		d.drop(sa, r)
		return 0, 0, false
	}
	if src.IsValid() {
		d.followMapping(sa, src, seq)
	}
	d.account(sa, p1-p0)
	if d.wantsDescription(sa) {
		d.describe(sa, describeIPv4(out[p0:p1]), bytes.Clone(out[p0:min(p1, p0+maxDescribedPlain)]), pkt, seq)
	}
	return p0, p1, true
}

func (d *DataPlane) drop(sa *saState, r dropReason) {
	d.countDrop(sa, r)
	if r == dropDummy {
		return
	}
	d.dropEvent(sa, r.String(), func() string {
		return fmt.Sprintf("inbound packet on SA %s dropped: %s", sa.id, r)
	})
}

// inboundUDP handles a datagram from the NAT-T port (see natt.go), and writes
// the inner packet of an ESP one to out. ahead is as for inboundIP.
func (d *DataPlane) inboundUDP(pkt []byte, src netip.AddrPort, out []byte, ahead *icvVerdict) (p0, p1 int, ok bool) {
	switch classifyNATT(pkt) {
	case nattKeepalive:
		d.st.keepalives.Add(1)
		return 0, 0, false
	case nattIKE:
		d.deliverIKE(src, pkt[len(nonESPMarker):])
		return 0, 0, false
	case nattMalformed:
		d.st.malformed.Add(1)
		return 0, 0, false
	}
	sa := d.lookupInbound(ProtoESP, be.Uint32(pkt), pkt)
	if sa == nil {
		d.reportUnknownSPI(ProtoESP, be.Uint32(pkt), src)
		return 0, 0, false
	}
	if sa.cfg.Encap == nil {
		d.drop(sa, dropPolicy)
		return 0, 0, false
	}
	return d.finishInbound(sa, pkt, 0, out, ahead, src)
}

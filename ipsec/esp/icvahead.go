package esp

import (
	"crypto/subtle"

	"github.com/ipseclab/ipseclab/ipsec/esp/internal/hmac2"
	"github.com/ipseclab/ipseclab/ipsec/esp/replay"
)

// ICVs checked ahead, two at a time.
//
// HMAC-SHA1 is the largest cost of receiving aes128-sha1 (and HMAC-SHA256 of
// aes128-sha256), and with the SHA extensions two ICVs take the time of one
// (internal/hmac2). A received
// batch usually holds many packets of one SA (the segments of a GRO
// datagram, or a recvmmsg batch), so before the packets are handled one by
// one, icvAhead finds those whose ICV can be paired and checks them in pairs.
// Each packet then goes through SA.unprotect in the order of RFC 4303 §3.4
// as before, which takes the verdict instead of computing the ICV again.
// Only the work moves; no decision does: a packet's verdict is used only for
// the SA and sequence number it was computed for, and a packet the replay
// pre-check would drop is not checked ahead, so that duplicates still cost no
// HMAC.

// icvVerdict is the outcome of one packet's ICV check made ahead.
type icvVerdict struct {
	sa  *saState // nil: not checked ahead
	seq uint64   // the sequence number the ICV covered (with ESN, inferred)
	ok  bool
}

// use reports the verdict for sa and seq, if there is one.
func (v *icvVerdict) use(sa *saState, seq uint64) (ok, checked bool) {
	if v == nil || v.sa != sa || v.seq != seq {
		return false, false
	}
	return v.ok, true
}

// icvAhead is a receive goroutine's state for checking its batches' ICVs.
type icvAhead struct {
	verdicts []icvVerdict
	pending  []pendingICV
}

type pendingICV struct {
	i   int // the packet's index in the batch
	sa  *saState
	esp []byte
	seq uint64
}

func newICVAhead(n int) *icvAhead {
	return &icvAhead{verdicts: make([]icvVerdict, n), pending: make([]pendingICV, 0, n)}
}

// check checks, in pairs, the ICVs of the batch's ESP packets whose SA uses
// an HMAC that pairs (icv.pairs). pkts are as Receiver returns them: whole
// IPv4 packets, or UDP payloads when udp is set. Afterwards verdict(i) is
// packet i's verdict, or nil.
func (a *icvAhead) check(d *DataPlane, pkts [][]byte, udp bool) {
	clear(a.verdicts[:len(pkts)])
	a.pending = a.pending[:0]
	if len(pkts) < 2 {
		return // nothing to pair
	}
	sas := *d.inbound.Load()
	// A batch is mostly one SA's: look each SPI up once in a row, so that a
	// batch of an SA that does not pair (AES-GCM) costs no more than a look
	// at each packet's SPI.
	var spi uint32
	var sa *saState
	for i, pkt := range pkts {
		esp := espPayload(pkt, udp)
		if esp == nil {
			continue
		}
		if s := be.Uint32(esp); sa == nil || s != spi {
			spi, sa = s, sas[inKey{ProtoESP, s}]
		}
		if sa == nil || sa.esp == nil || !sa.esp.mac.pairs() || sa.esp.checkLength(esp) != nil {
			continue
		}
		seq := uint64(be.Uint32(esp[4:]))
		if sa.cfg.ESN {
			seq = sa.replay.InferSeq(uint32(seq))
		}
		if sa.replay.Check(seq) != replay.OK {
			continue
		}
		a.pending = append(a.pending, pendingICV{i, sa, esp, seq})
	}
	// An odd one out is left to SA.unprotect, which takes the same time.
	for k := 0; k+1 < len(a.pending); k += 2 {
		p, q := &a.pending[k], &a.pending[k+1]
		var sp, sq [hmac2.MaxSize]byte
		sum2(p.icvInput(&sp), q.icvInput(&sq))
		a.verdicts[p.i] = p.verdict(&sp)
		a.verdicts[q.i] = q.verdict(&sq)
	}
}

func (a *icvAhead) verdict(i int) *icvVerdict { return &a.verdicts[i] }

func (p *pendingICV) icvInput(out *[hmac2.MaxSize]byte) icvInput {
	n := len(p.esp) - p.sa.esp.icvLen
	return icvInput{m: p.sa.esp.mac, data: p.esp[:n], esn: p.sa.cfg.ESN, seq: p.seq, out: out}
}

func (p *pendingICV) verdict(sum *[hmac2.MaxSize]byte) icvVerdict {
	n := len(p.esp) - p.sa.esp.icvLen
	ok := subtle.ConstantTimeCompare(sum[:p.sa.esp.icvLen], p.esp[n:]) == 1
	return icvVerdict{sa: p.sa, seq: p.seq, ok: ok}
}

// espPayload returns the ESP packet in pkt (from the first byte of the SPI
// to the end), or nil if pkt is not one.
func espPayload(pkt []byte, udp bool) []byte {
	if udp {
		if classifyNATT(pkt) != nattESP {
			return nil
		}
		return pkt
	}
	ihl, total, err := ipv4Header(pkt)
	if err != nil || Protocol(pkt[ipv4Protocol]) != ProtoESP || total < ihl+espHeaderLen {
		return nil
	}
	return pkt[ihl:total]
}

package ike

import (
	"crypto/sha256"
	"fmt"
	"math"
	"time"

	"github.com/ipseclab/ipseclab/events"
)

// exchange is the retransmission and duplicate-detection state of one
// exchange: phase 1, or one Quick Mode.
//
// IKEv1 runs over UDP and has no acknowledgements: the side that waits for an
// answer sends its last message again after a timeout, with exponential
// back-off, and gives up after a number of tries. The other side must
// recognise the repeat and answer it with the reply it already sent, not
// process it as a new request: a second MM1 must not create a second SA, and
// a second QM1 must not allocate new SPIs.
type exchange struct {
	out   []byte // our last message, while we wait for the peer's next one
	info  msgInfo
	tries int
	timer *timer
	sent  time.Time // when out last left

	seen      bool
	lastIn    [sha256.Size]byte // digest of the last message we accepted
	reply     []byte            // what we answered it with; nil when nothing
	replyInfo msgInfo
	// The messages accepted before the last: a retransmission of one may
	// still arrive after the exchange moved on (a busy responder answers the
	// first copy of Aggressive Mode 1/3, the initiator's second copy waits in
	// the queue behind 3/3). It is a late repeat, not a malformed message.
	earlier [][sha256.Size]byte
}

// retransmit starts resending b until stopRetransmit; after the configured
// number of tries, giveUp runs.
func (e *Engine) retransmit(sa *isakmpSA, ex *exchange, b []byte, info msgInfo, giveUp func()) {
	ex.stopRetransmit()
	ex.out, ex.info, ex.tries, ex.sent = b, info, 0, e.clock.Now()
	e.armRetransmit(sa, ex, giveUp)
}

func (e *Engine) armRetransmit(sa *isakmpSA, ex *exchange, giveUp func()) {
	rt := sa.conn.cfg.Retransmit
	delay := time.Duration(float64(rt.Timeout) * math.Pow(rt.Base, float64(ex.tries)))
	ex.timer = e.after(delay, func() {
		if ex.tries >= rt.Tries {
			ex.out = nil
			giveUp()
			return
		}
		ex.tries++
		e.stats.Retransmits++
		e.publishFor(sa, events.Event{
			Kind: events.IKERetransmit, Step: ex.info.step, Conn: ex.info.connName(sa), Level: events.Warn,
			Message: fmt.Sprintf("%s sent again to %s (retransmission %d of %d, after %v without an answer)",
				ex.info.what(), sa.remote, ex.tries, rt.Tries, delay.Round(time.Millisecond)),
			Explain: "IKEv1 runs over UDP without acknowledgements: the side waiting for an answer resends its last message, waiting longer each time.",
			IKE:     sa.ikeInfo(events.Sent, ex.info, nil, len(ex.out)),
			Fields:  map[string]any{"try": ex.tries, "tries": rt.Tries, "after_ms": delay.Milliseconds()},
		})
		ex.sent = e.clock.Now()
		sa.transmit(ex.out, ex.info)
		e.armRetransmit(sa, ex, giveUp)
	})
}

func (ex *exchange) stopRetransmit() {
	ex.timer.stop()
	ex.timer = nil
	ex.out = nil
}

// accepted records a message that was processed and the reply sent to it
// (nil if none), so that a repeat of it gets the same reply.
func (ex *exchange) accepted(data, reply []byte, info msgInfo) {
	if ex.seen {
		ex.earlier = append(ex.earlier, ex.lastIn)
	}
	ex.seen, ex.lastIn = true, sha256.Sum256(data)
	ex.reply, ex.replyInfo = reply, info
}

// duplicate reports whether data repeats the last message the exchange
// accepted, and if so answers it again with the cached reply.
func (e *Engine) duplicate(sa *isakmpSA, ex *exchange, data []byte) bool {
	if !ex.seen {
		return false
	}
	sum := sha256.Sum256(data)
	if sum != ex.lastIn {
		for _, old := range ex.earlier {
			if sum == old {
				e.stats.Duplicates++
				e.publishFor(sa, events.Event{
					Kind: events.IKERetransmit, Step: ex.replyInfo.step, Conn: ex.replyInfo.connName(sa),
					Message: fmt.Sprintf("late duplicate from %s: a repeat of a message answered before the last; ignored", sa.remote),
					Explain: "The peer resent a message before our answer reached it; the exchange has moved on since, so the late copy needs no answer.",
					Fields:  map[string]any{"duplicate": true},
				})
				return true
			}
		}
		return false
	}
	e.stats.Duplicates++
	msg := "a repeated message was ignored; nothing to answer"
	if ex.reply != nil {
		msg = fmt.Sprintf("a repeated message was answered with the cached %s", ex.replyInfo.what())
	}
	e.publishFor(sa, events.Event{
		Kind: events.IKERetransmit, Step: ex.replyInfo.step, Conn: ex.replyInfo.connName(sa),
		Message: fmt.Sprintf("duplicate from %s: %s", sa.remote, msg),
		Explain: "The peer did not get our answer and sent its message again; we resend the same answer rather than start over.",
		IKE:     sa.ikeInfo(events.Sent, ex.replyInfo, nil, len(ex.reply)),
		Fields:  map[string]any{"duplicate": true},
	})
	if ex.reply != nil {
		sa.transmit(ex.reply, ex.replyInfo)
	}
	return true
}

package ike

import (
	"crypto/cipher"
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/ipseclab/ipseclab/events"
	"github.com/ipseclab/ipseclab/ipsec/fault"
	"github.com/ipseclab/ipseclab/ipsec/isakmp"
	"github.com/ipseclab/ipseclab/ipsec/keymat"
)

// isakmpSA is one ISAKMP SA (RFC 2408 §2.5.3 names it by its two cookies),
// from the first message of phase 1 until it is deleted or expires. It holds
// everything the exchanges under it need: the negotiated suite, the keys and
// IV chains, the NAT-T and DPD results, the Quick Modes in progress.
type isakmpSA struct {
	e    *Engine
	conn *conn
	role Role // who sent the first message of phase 1
	mode Mode

	state      p1State
	ckyI, ckyR isakmp.Cookie
	local      netip.AddrPort // where we send from: port 500, 4500 after the float
	remote     netip.AddrPort // the peer as we see it (a NAT's public side, if any)
	created    time.Time
	up         time.Time
	dead       bool

	p1       *phase1 // phase 1's own state; nil once phase 1 has ended
	choice   phase1Choice
	lifetime time.Duration
	keys     *keymat.Phase1Keys
	block    cipher.Block
	ivs      *keymat.IVs
	peerID   Identity

	peer  peerFeatures // what the peer's vendor IDs announced
	nat   natState
	dpd   dpdState
	proof bool // responder: the peer echoed our cookie, so its address is real

	p1Flight exchange              // retransmission and duplicates of the phase 1 messages, kept past its end
	quick    map[uint32]*quickMode // Quick Modes in progress (and recently finished) by message ID
	infoSeen map[uint32]bool       // Informational message IDs already processed
	infoQ    []uint32              // their order, to forget the oldest
	waitQM   []*childRequest       // Quick Modes to start once phase 1 (and 1.5) is up
	ra       *remoteAccess         // phase 1.5 (XAUTH, Mode Config); nil without
	lease    *Lease                // the address Mode Config lent (gateway) or gave us (client)
	replaces *isakmpSA             // the SA this one re-establishes
	alike    []*conn               // responder: connections phase 1 could not tell from conn; the first Quick Mode decides
	lastIn   string                // the last message taken from the peer ("Main Mode 4/6"), to explain a stall
	sendErr  error                 // why the last send failed, if it did
	first    halfOpenKey           // responder: how repeats of the first message find it

	lastInvalidHash time.Time // when we last told the peer INVALID-HASH-INFORMATION (quick_mode.go)

	halfOpenTimer, rekeyTimer, expireTimer, keepaliveTimer, dpdTimer *timer
}

type saKey struct{ i, r isakmp.Cookie }

func (sa *isakmpSA) key() saKey { return saKey{sa.ckyI, sa.ckyR} }

// newISAKMPSA creates an SA and registers it with its connection, and an
// initiator's by its own cookie until MM2/AM2 brings the responder's
// (setResponderCookie then registers it by both).
func (e *Engine) newISAKMPSA(c *conn, role Role, mode Mode, local, remote netip.AddrPort) *isakmpSA {
	sa := &isakmpSA{
		e: e, conn: c, role: role, mode: mode, local: local, remote: remote, p1: newPhase1(e, c),
		created: e.clock.Now(), quick: map[uint32]*quickMode{}, infoSeen: map[uint32]bool{},
	}
	if role == Initiator {
		sa.ckyI = e.cookie()
		e.initiating[sa.ckyI] = sa
	}
	c.sas = append(c.sas, sa)
	return sa
}

// cookie returns a fresh random cookie. RFC 2408 §2.5.3 asks for a hash of
// the addresses and a secret; a random value serves the same purpose here,
// since the responder keeps state (bounded by the half-open limit) anyway.
func (e *Engine) cookie() isakmp.Cookie {
	var c isakmp.Cookie
	for c == (isakmp.Cookie{}) {
		e.random(c[:])
	}
	return c
}

// setResponderCookie completes the SA's name once the responder chose its
// cookie: ours as responder, the peer's in MM2/AM2 as initiator.
func (sa *isakmpSA) setResponderCookie(r isakmp.Cookie) {
	e := sa.e
	if sa.role == Initiator {
		delete(e.initiating, sa.ckyI)
	}
	sa.ckyR = r
	e.sas[sa.key()] = sa
}

// setEstablished marks phase 1 done: the SA leaves the half-open set, its
// lifetime starts, and Quick Modes waiting for it begin.
func (sa *isakmpSA) setEstablished() {
	e := sa.e
	sa.state, sa.up = established, e.clock.Now()
	sa.endPhase1()
	e.leaveHalfOpen(sa)
	sa.p1Flight.stopRetransmit()
	sa.lifetime = sa.conn.cfg.Lifetime
	if l := time.Duration(sa.choice.attrs.LifeSeconds) * time.Second; l > 0 && l < sa.lifetime {
		sa.lifetime = l
	}
	sa.scheduleLifetime()
	sa.startDPD()
	sa.startKeepalives()
	e.adoptChildren(sa)
	e.publishPhase1Up(sa)
	if old := sa.replaces; old != nil && !old.dead {
		e.deleteISAKMPSA(old, true, "replaced by a new ISAKMP SA")
	}
	if remoteAccessOf(sa.conn) {
		e.startRemoteAccess(sa) // Quick Mode waits for it
		return
	}
	waiting := sa.waitQM
	sa.waitQM = nil
	for _, r := range waiting {
		e.startQuickMode(sa, r)
	}
}

// scheduleLifetime arms the ISAKMP SA's expiry. The side that initiated phase
// 1 re-establishes it a little before (make before break: the new SA takes
// over the IPsec SAs, then the old one is deleted), unless the connection says
// NoReauth; both sides delete it at the end of its lifetime. Its IPsec SAs do
// not depend on it (removeISAKMPSA), and a Quick Mode that finds no ISAKMP SA
// with the peer starts phase 1 first (requestChild).
func (sa *isakmpSA) scheduleLifetime() {
	e := sa.e
	if sa.role == Initiator && !sa.conn.cfg.NoReauth {
		sa.rekeyTimer = e.after(e.softLifetime(sa.lifetime), func() { e.reestablish(sa) })
	}
	sa.expireTimer = e.after(sa.lifetime, func() {
		e.publishExpired(sa, nil, "the ISAKMP SA reached its lifetime of "+sa.lifetime.String())
		e.deleteISAKMPSA(sa, true, "lifetime")
	})
}

// softLifetime is when the side that created an SA replaces it: at 90 % of
// its lifetime minus up to another 5 % at random, so that two SAs made
// together are not replaced together (strongSwan's rand_time).
func (e *Engine) softLifetime(life time.Duration) time.Duration {
	jitter := time.Duration(0)
	if span := int64(life / 20); span > 0 {
		var b [8]byte
		e.random(b[:])
		jitter = time.Duration(binary.BigEndian.Uint64(b[:]) % uint64(span))
	}
	return life*9/10 - jitter
}

// destroy forgets the SA: timers, indexes, Quick Modes in progress. It sends
// nothing; callers decide about Delete payloads.
func (sa *isakmpSA) destroy() {
	if sa.dead {
		return
	}
	e := sa.e
	sa.dead = true
	for _, t := range []*timer{sa.halfOpenTimer, sa.rekeyTimer, sa.expireTimer, sa.keepaliveTimer, sa.dpdTimer} {
		t.stop()
	}
	sa.p1Flight.stopRetransmit()
	sa.endPhase1()
	for _, qm := range sa.quick {
		qm.abandon()
	}
	e.leaveHalfOpen(sa)
	if e.initiating[sa.ckyI] == sa {
		delete(e.initiating, sa.ckyI)
	}
	if e.sas[sa.key()] == sa {
		delete(e.sas, sa.key())
	}
	if sa.role == Responder && e.firstMessages[sa.first] == sa {
		delete(e.firstMessages, sa.first)
	}
	if i := slices.Index(sa.conn.sas, sa); i >= 0 {
		sa.conn.sas = slices.Delete(sa.conn.sas, i, i+1)
	}
	for _, r := range sa.waitQM {
		r.finish(fmt.Errorf("phase 1 with %s ended before Quick Mode could start", sa.remote.Addr()))
	}
	sa.waitQM = nil
	if sa.ra != nil {
		for _, t := range sa.ra.ours {
			t.ex.stopRetransmit()
		}
	}
	if sa.lease != nil {
		if sa.ra != nil && sa.ra.gateway {
			sa.conn.leases.release(sa)
		} else if hook := e.cfg.VirtualIP; hook != nil {
			hook(sa.conn.cfg.Name, Lease{})
		}
	}
}

// halfOpenKey finds a responder SA from a retransmitted first message, which
// carries only the initiator's cookie.
type halfOpenKey struct {
	ckyI isakmp.Cookie
	peer netip.AddrPort
}

// halfOpenGrace is how long a new half-open SA is safe from eviction: time
// for a real initiator to answer MM2, with a retransmission or two.
const halfOpenGrace = 2 * time.Second

// admitHalfOpen decides whether a new first message from peer may create a
// responder SA. A source address gets at most HalfOpenPerPeer unauthenticated
// SAs (strongSwan's block_threshold), and the node at most HalfOpenLimit.
//
// Room is made by evicting an SA whose peer never answered our cookie: a
// forged source address cannot answer, while a real peer's SA gains its proof
// with message 3 (within a round trip) and is kept. When the address's own
// slots are full, its oldest unproven SA goes at once: anyone can forge the
// address of a real initiator, and refusing would lock that initiator out for
// as long as the forgeries keep coming. When the node is full, the oldest
// unproven SA goes once it is older than halfOpenGrace, so that a flood from
// many addresses still leaves a slow real peer time to answer. A first message
// that finds no room is dropped; its sender retransmits.
//
// A stateless responder cookie (RFC 2522, as IKEv2's COOKIE notify does)
// cannot replace this in IKEv1: Main Mode's message 3 does not repeat the
// initiator's SA payload, which HASH_I covers, so the responder must keep it
// from message 1.
func (e *Engine) admitHalfOpen(peer netip.AddrPort) bool {
	if e.halfOpenByAddr[peer.Addr()] >= e.tuning.HalfOpenPerPeer {
		for _, sa := range e.halfOpen { // oldest first
			if sa.remote.Addr() == peer.Addr() && !sa.proof {
				e.evictHalfOpen(sa, peer, fmt.Sprintf("the %d half-open SAs allowed from %s were taken", e.tuning.HalfOpenPerPeer, peer.Addr()))
				return true
			}
		}
		e.stats.HalfOpenDropped++
		return false
	}
	if len(e.halfOpen) < e.tuning.HalfOpenLimit {
		return true
	}
	now := e.clock.Now()
	for _, sa := range e.halfOpen { // oldest first
		if now.Sub(sa.created) < halfOpenGrace {
			break
		}
		if !sa.proof {
			e.evictHalfOpen(sa, peer, fmt.Sprintf("the node's %d half-open SAs were taken", e.tuning.HalfOpenLimit))
			return true
		}
	}
	e.stats.HalfOpenDropped++
	return false
}

// evictHalfOpen drops an unproven half-open SA to make room for a first
// message from peer.
func (e *Engine) evictHalfOpen(sa *isakmpSA, peer netip.AddrPort, why string) {
	e.stats.HalfOpenEvicted++
	e.publishLimited(events.Event{
		Kind: events.HalfOpenEvicted, Step: events.StepPhase1, Conn: sa.conn.cfg.Name, Level: events.Warn,
		Message: fmt.Sprintf("half-open SA with %s (cookie %s, %v old, never answered) evicted for a first message from %s: %s",
			sa.remote, sa.ckyI, e.clock.Now().Sub(sa.created).Round(time.Millisecond), peer, why),
		Explain: "A responder keeps state from Main Mode's first message until the initiator answers its cookie. First messages from forged addresses never answer; the oldest such SA makes room, so forgeries cannot lock a real initiator out.",
		SA:      sa.info(),
		Fields:  map[string]any{"peer": sa.remote.String(), "for": peer.String(), "reason": why},
	})
	sa.destroy()
}

func (e *Engine) enterHalfOpen(sa *isakmpSA) {
	e.halfOpen = append(e.halfOpen, sa)
	e.halfOpenByAddr[sa.remote.Addr()]++
	sa.halfOpenTimer = e.after(e.tuning.HalfOpenTimeout, func() {
		e.phase1Failed(sa, fmt.Sprintf("the peer did not complete phase 1 within %v", e.tuning.HalfOpenTimeout), nil)
	})
}

func (e *Engine) leaveHalfOpen(sa *isakmpSA) {
	sa.halfOpenTimer.stop()
	for i, h := range e.halfOpen {
		if h == sa {
			e.halfOpen = append(e.halfOpen[:i], e.halfOpen[i+1:]...)
			if n := e.halfOpenByAddr[sa.remote.Addr()]; n <= 1 {
				delete(e.halfOpenByAddr, sa.remote.Addr())
			} else {
				e.halfOpenByAddr[sa.remote.Addr()] = n - 1
			}
			return
		}
	}
}

// header returns an ISAKMP header of this SA.
func (sa *isakmpSA) header(ex isakmp.ExchangeType, mid uint32) isakmp.Header {
	return isakmp.Header{InitiatorCookie: sa.ckyI, ResponderCookie: sa.ckyR, Exchange: ex, MessageID: mid}
}

// encode puts a message of this SA on the wire format, encrypted when asked,
// and moves the exchange's IV chain on past it (RFC 2409 App. B: the last
// cipher block of a message sent is the next IV).
func (sa *isakmpSA) encode(ex isakmp.ExchangeType, mid uint32, payloads []isakmp.Payload, encrypt bool) (*isakmp.Message, []byte, error) {
	m := &isakmp.Message{Header: sa.header(ex, mid), Payloads: payloads}
	if !encrypt {
		b, err := m.Encode()
		return m, b, err
	}
	b, err := m.EncodeEncrypted(sa.block, sa.ivs.IV(mid))
	if err != nil {
		return m, nil, err
	}
	sa.ivs.Update(mid, b)
	return m, b, nil
}

// decrypt decrypts a received encrypted message with the IV of its exchange.
// The caller authenticates it and then calls sa.ivs.Update (only an
// authenticated message may move the chain).
func (sa *isakmpSA) decrypt(m *isakmp.Message) error {
	if sa.block == nil {
		return fmt.Errorf("encrypted %s message before the keys exist", m.Header.Exchange.Abbrev())
	}
	return m.Decrypt(sa.block, sa.ivs.IV(m.Header.MessageID))
}

// transmit sends a datagram to the peer, through the armed faults if any
// (fault.go). Its event must already be published: the peer's answer can be
// published before this returns.
func (sa *isakmpSA) transmit(b []byte, info msgInfo) {
	if sa.e.faults != nil {
		sa.e.transmitFaults(sa, b, info)
		return
	}
	sa.sendRaw(b, info)
}

// sendRaw sends a datagram to the peer as it is.
func (sa *isakmpSA) sendRaw(b []byte, info msgInfo) {
	sa.sendErr = sa.e.transmit(sa.local, sa.remote, b, info.what(), info.connName(sa))
}

// send encodes, publishes and transmits one message that expects no answer.
// Armed faults may change its payloads first (fault.go).
func (sa *isakmpSA) send(ex isakmp.ExchangeType, mid uint32, payloads []isakmp.Payload, encrypt bool, info msgInfo) []byte {
	var spots map[fault.Payload]int
	if sa.e.faults != nil {
		payloads, spots = sa.e.composeFaults(sa, info, payloads)
	}
	m, b, err := sa.encode(ex, mid, payloads, encrypt)
	if err != nil {
		sa.e.internalError(fmt.Errorf("encode %s: %w", info.what(), err))
		return nil
	}
	if spots != nil {
		sa.e.faults.rememberSpots(b, spots)
	}
	sa.e.publishMessage(sa, events.Sent, m, len(b), info)
	sa.transmit(b, info)
	return b
}

// sendRequest sends a message that the peer must answer, and retransmits it
// until it does: a request of phase 1 or Quick Mode.
func (sa *isakmpSA) sendRequest(ex *exchange, exType isakmp.ExchangeType, mid uint32, payloads []isakmp.Payload, encrypt bool, info msgInfo, giveUp func()) {
	b := sa.send(exType, mid, payloads, encrypt, info)
	if b == nil {
		giveUp()
		return
	}
	sa.e.retransmit(sa, ex, b, info, giveUp)
}

// phaseName is "Main Mode" or "Aggressive Mode".
func (sa *isakmpSA) phaseName() string {
	if sa.mode == AggressiveMode {
		return "Aggressive Mode"
	}
	return "Main Mode"
}

// peerName is how events name the peer: its identity once known, else its
// address.
func (sa *isakmpSA) peerName() string {
	if sa.peerID.Type != 0 {
		return sa.peerID.String()
	}
	return sa.remote.Addr().String()
}

// remember records an Informational message ID so that a retransmission is
// not processed twice; only the most recent ones are kept.
func (sa *isakmpSA) remember(mid uint32) bool {
	if sa.infoSeen[mid] {
		return false
	}
	const keep = 64
	if len(sa.infoQ) == keep {
		delete(sa.infoSeen, sa.infoQ[0])
		sa.infoQ = sa.infoQ[1:]
	}
	sa.infoSeen[mid] = true
	sa.infoQ = append(sa.infoQ, mid)
	return true
}

// messageID returns a fresh random message ID for an exchange under the SA.
func (sa *isakmpSA) messageID() uint32 {
	for {
		var b [4]byte
		sa.e.random(b[:])
		mid := binary.BigEndian.Uint32(b[:])
		if mid != 0 && sa.quick[mid] == nil && !sa.infoSeen[mid] {
			return mid
		}
	}
}

// moveTo makes the SA serve connection c, once the peer showed which one it
// meant (its identity, or its first Quick Mode), and returns the old one.
func (sa *isakmpSA) moveTo(c *conn) (old *conn) {
	old = sa.conn
	old.sas = slices.DeleteFunc(old.sas, func(x *isakmpSA) bool { return x == sa })
	c.sas = append(c.sas, sa)
	sa.conn = c
	return old
}

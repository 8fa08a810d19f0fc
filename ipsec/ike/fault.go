package ike

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"

	"github.com/ipseclab/ipseclab/events"
	"github.com/ipseclab/ipseclab/ipsec/fault"
	"github.com/ipseclab/ipseclab/ipsec/isakmp"
)

// Fault injection (package fault describes the faults). Every message the
// engine sends passes two points, and an armed fault acts at one of them:
//
//   - composition (isakmpSA.send), with the message's payloads in hand and
//     its hashes already computed, before encryption: corrupt (before
//     encryption) and omit change the message itself, so that the peer
//     decrypts it and its hash check catches the change; a retransmission
//     repeats the damaged message, as a sender that built it wrong would;
//   - transmission (isakmpSA.transmit), with the datagram as it leaves, for
//     the first sending and every retransmission or cached reply: drop,
//     delay, duplicate, reorder, replay, cookie, corrupt after encryption
//     and forge act on one datagram, as the network or an attacker would.
//
// With nothing armed, e.faults is nil and each point costs one nil check.

// faultInjector holds a node's armed faults and what they keep in flight.
type faultInjector struct {
	armed []*fault.Armed
	// spots remembers, for datagrams sent while a fault corrupts after
	// encryption, where each payload's body starts: the ciphertext has the
	// plaintext's layout, and a retransmission is the same bytes.
	spots map[[sha256.Size]byte]map[fault.Payload]int
	held  []*heldDatagram // reordered or replayed, waiting for the next datagram to their peer
}

// heldDatagram is a datagram a reorder holds back, or a replay's copy.
type heldDatagram struct {
	sa    *isakmpSA
	b     []byte
	info  msgInfo
	timer *timer
}

// InjectFault arms a fault on this engine (plane ike). A forge without a
// message acts at once, toward the peer of every established ISAKMP SA (of
// f.Conn, when given).
func (e *Engine) InjectFault(f fault.Fault) error {
	if f.Plane != fault.IKE {
		return fmt.Errorf("the IKE engine takes faults of plane ike, not %q", f.Plane)
	}
	if err := f.Validate(); err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return fmt.Errorf("ike: the engine is closed")
	}
	if f.Conn != "" && e.byName[f.Conn] == nil {
		return e.noConnection(f.Conn)
	}
	if f.Action == fault.Forge && f.Message.IsZero() {
		if e.forge(&f, nil) == 0 {
			return fmt.Errorf("no established ISAKMP SA to forge an unprotected %s toward", f.Forge)
		}
		return nil
	}
	if e.faults == nil {
		e.faults = &faultInjector{}
	}
	e.faults.armed = append(e.faults.armed, fault.Arm(f, e.clock.Now()))
	return nil
}

// ClearFaults disarms every fault and sends what reorders and replays hold;
// it returns how many faults were armed.
func (e *Engine) ClearFaults() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	inj := e.faults
	if inj == nil {
		return 0
	}
	n := len(inj.armed)
	for _, h := range inj.held {
		h.timer.stop()
		h.sa.sendRaw(h.b, h.info)
	}
	e.faults = nil
	return n
}

// ArmedFaults lists the faults waiting for their messages, with what
// remains of each (one armed for a duration that has run out is gone).
func (e *Engine) ArmedFaults() []fault.Left {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.faults == nil {
		return nil
	}
	now := e.clock.Now()
	var out []fault.Left
	for _, a := range e.faults.armed {
		if !a.Expired(now) {
			out = append(out, a.Left())
		}
	}
	return out
}

// faultMessage names a message as faults do.
func faultMessage(info msgInfo) fault.Message {
	switch info.exchange {
	case "main":
		return fault.Message{Exchange: fault.MainMode, Num: info.num}
	case "aggressive":
		return fault.Message{Exchange: fault.Aggressive, Num: info.num}
	case "quick":
		return fault.Message{Exchange: fault.QuickMode, Num: info.num}
	case "informational":
		if info.dpd {
			return fault.Message{Exchange: fault.DPD}
		}
		return fault.Message{Exchange: fault.Informational}
	}
	return fault.Message{Exchange: fault.Transaction}
}

// atComposition reports the actions that change the message itself.
func atComposition(f *fault.Fault) bool {
	return f.Action == fault.Omit || (f.Action == fault.Corrupt && !f.After)
}

// take finds the first armed fault of the stage that matches the message
// and counts the match; it returns the fault when it applies to this one.
// ok, when set, must also accept the fault (a payload the message carries).
func (inj *faultInjector) take(e *Engine, sa *isakmpSA, info msgInfo, composition bool, ok func(*fault.Armed) bool) *fault.Armed {
	m, conn, now := faultMessage(info), info.connName(sa), e.clock.Now()
	for i := 0; i < len(inj.armed); i++ {
		a := inj.armed[i]
		if a.Expired(now) {
			inj.armed = slices.Delete(inj.armed, i, i+1)
			i--
			continue
		}
		if atComposition(&a.Fault) != composition || a.Message != m || (a.Conn != "" && a.Conn != conn) || (ok != nil && !ok(a)) {
			continue
		}
		apply, spent := a.Hit(now)
		if spent {
			inj.armed = slices.Delete(inj.armed, i, i+1)
			i--
		}
		if apply {
			return a
		}
	}
	return nil
}

// payloadIndex finds the payloads a fault names in a message: every one of
// its type (omit), or the first (corrupt).
func payloadIndex(payloads []isakmp.Payload, p fault.Payload) []int {
	var out []int
	for i, pl := range payloads {
		if payloadIs(pl, p) {
			out = append(out, i)
		}
	}
	return out
}

func payloadIs(pl isakmp.Payload, p fault.Payload) bool {
	t := pl.Type()
	switch p {
	case fault.PayloadHash:
		return t == isakmp.PayloadHash
	case fault.PayloadSig:
		return t == isakmp.PayloadSignature
	case fault.PayloadNonce:
		return t == isakmp.PayloadNonce
	case fault.PayloadKE:
		return t == isakmp.PayloadKE
	case fault.PayloadSA:
		return t == isakmp.PayloadSA
	case fault.PayloadID:
		return t == isakmp.PayloadID
	case fault.PayloadNATD:
		return t == isakmp.PayloadNATD || t == isakmp.PayloadNATDDraft
	case fault.PayloadSPI:
		return spiOffset(pl) >= 0
	}
	return false
}

// spiOffset is where the SPI's last byte lies in a payload's body: in the
// first proposal of an SA payload, in a Delete or a notification; -1 when
// the payload carries none.
func spiOffset(pl isakmp.Payload) int {
	body := pl.Body()
	var at, size int
	switch pl.Type() {
	case isakmp.PayloadSA: // DOI, situation, proposal header, #, protocol, SPI size, #transforms, SPI
		if len(body) < 16 {
			return -1
		}
		at, size = 16, int(body[14])
	case isakmp.PayloadDelete: // DOI, protocol, SPI size, #SPIs, SPIs
		if len(body) < 8 {
			return -1
		}
		at, size = 8, int(body[5])
	case isakmp.PayloadNotify: // DOI, protocol, SPI size, type, SPI
		if len(body) < 8 {
			return -1
		}
		at, size = 8, int(body[5])
	default:
		return -1
	}
	if size == 0 || at+size > len(body) {
		return -1
	}
	return at + size - 1
}

// corruptOffset is the byte of a payload's body a corruption flips: the
// SPI's last byte, or the body's last byte (the end of a hash, nonce or DH
// value, an ID's address, an SA's last attribute).
func corruptOffset(pl isakmp.Payload, p fault.Payload) int {
	if p == fault.PayloadSPI {
		return spiOffset(pl)
	}
	return len(pl.Body()) - 1
}

// composeFaults applies the faults that change a message before it is
// encoded, and returns its payloads as they will go. It also returns, when
// a fault waits to corrupt this message after encryption, where each
// payload's body will lie in the datagram.
func (e *Engine) composeFaults(sa *isakmpSA, info msgInfo, payloads []isakmp.Payload) ([]isakmp.Payload, map[fault.Payload]int) {
	inj := e.faults
	for {
		a := inj.take(e, sa, info, true, func(a *fault.Armed) bool { return len(payloadIndex(payloads, a.Payload)) > 0 })
		if a == nil {
			break
		}
		at := payloadIndex(payloads, a.Payload)
		payloads = slices.Clone(payloads)
		if a.Action == fault.Omit {
			for i := len(at) - 1; i >= 0; i-- {
				payloads = slices.Delete(payloads, at[i], at[i]+1)
			}
		} else {
			pl := payloads[at[0]]
			body := bytes.Clone(pl.Body())
			if off := corruptOffset(pl, a.Payload); off >= 0 && off < len(body) {
				body[off] ^= 0xff
			}
			// The same type and header, a body the sender did not compute.
			payloads[at[0]] = &isakmp.Unknown{Kind: pl.Type(), Data: body}
		}
		e.publishFault(sa, &a.Fault, info, "")
	}
	var spots map[fault.Payload]int
	for _, a := range inj.armed {
		if a.Action != fault.Corrupt || !a.After || a.Message != faultMessage(info) {
			continue
		}
		if spots == nil {
			spots = map[fault.Payload]int{}
		}
		if _, done := spots[a.Payload]; done {
			continue
		}
		if at := payloadIndex(payloads, a.Payload); len(at) > 0 {
			chain, err := isakmp.EncodePayloads(payloads[:at[0]]...)
			if off := corruptOffset(payloads[at[0]], a.Payload); err == nil && off >= 0 {
				spots[a.Payload] = isakmp.HeaderLen + len(chain) + 4 + off
			}
		}
	}
	return payloads, spots
}

// rememberSpots keeps where a datagram's payloads lie, for a corruption
// after encryption of it or of its retransmission.
func (inj *faultInjector) rememberSpots(b []byte, spots map[fault.Payload]int) {
	if inj.spots == nil || len(inj.spots) > 256 {
		inj.spots = map[[sha256.Size]byte]map[fault.Payload]int{}
	}
	inj.spots[sha256.Sum256(b)] = spots
}

// transmitFaults sends a datagram of sa through the faults that act on
// datagrams.
func (e *Engine) transmitFaults(sa *isakmpSA, b []byte, info msgInfo) {
	inj := e.faults
	a := inj.take(e, sa, info, false, nil)
	if a == nil {
		sa.sendRaw(b, info)
		e.releaseHeld(sa.remote)
		return
	}
	f := &a.Fault
	switch f.Action {
	case fault.Drop:
		e.publishFault(sa, f, info, "")
	case fault.Delay:
		e.publishFault(sa, f, info, "")
		c := bytes.Clone(b)
		e.after(f.Delay, func() { sa.sendRaw(c, info) })
	case fault.Duplicate:
		e.publishFault(sa, f, info, "")
		sa.sendRaw(b, info)
		sa.sendRaw(b, info)
		e.releaseHeld(sa.remote)
	case fault.Reorder:
		e.publishFault(sa, f, info, "it goes after the next datagram to the peer")
		e.releaseHeld(sa.remote)
		e.hold(sa, bytes.Clone(b), info, f)
	case fault.Replay:
		sa.sendRaw(b, info)
		e.releaseHeld(sa.remote)
		e.publishFault(sa, f, info, "a copy goes again once the exchange has moved on")
		e.hold(sa, bytes.Clone(b), info, f)
	case fault.Cookie:
		c := bytes.Clone(b)
		at := 0 // the initiator's cookie, or the responder's: the sender's own
		if sa.role == Responder {
			at = 8
		}
		cookie := make([]byte, 8)
		if f.Cookie == "random" {
			e.random(cookie)
		}
		copy(c[at:at+8], cookie)
		e.publishFault(sa, f, info, fmt.Sprintf("%s cookie %x instead of %x", sa.role, cookie, b[at:at+8]))
		sa.sendRaw(c, info)
		e.releaseHeld(sa.remote)
	case fault.Corrupt: // after encryption
		c := bytes.Clone(b)
		off, known := inj.spots[sha256.Sum256(b)][f.Payload]
		note := ""
		if !known || off >= len(c) {
			off, note = isakmp.HeaderLen+(len(c)-isakmp.HeaderLen)/2, "the payload's place is unknown (the message left before the fault was armed): a byte in the middle of the body was flipped instead"
		}
		c[off] ^= 0xff
		e.publishFault(sa, f, info, note)
		sa.sendRaw(c, info)
		e.releaseHeld(sa.remote)
	case fault.Forge:
		sa.sendRaw(b, info)
		e.releaseHeld(sa.remote)
		e.forge(f, sa)
	default:
		sa.sendRaw(b, info)
	}
}

// hold keeps a datagram until the next one to the same peer has left, or
// f.Delay (fault.DefaultHold) has passed.
func (e *Engine) hold(sa *isakmpSA, b []byte, info msgInfo, f *fault.Fault) {
	d := f.Delay
	if d <= 0 {
		d = fault.DefaultHold
	}
	h := &heldDatagram{sa: sa, b: b, info: info}
	e.faults.held = append(e.faults.held, h)
	h.timer = e.after(d, func() {
		if inj := e.faults; inj != nil {
			inj.held = slices.DeleteFunc(inj.held, func(x *heldDatagram) bool { return x == h })
		}
		sa.sendRaw(b, info)
	})
}

// releaseHeld sends what waits for a datagram to peer to go first.
func (e *Engine) releaseHeld(peer netip.AddrPort) {
	inj := e.faults
	if inj == nil || len(inj.held) == 0 {
		return
	}
	var keep []*heldDatagram
	for _, h := range inj.held {
		if h.sa.remote != peer {
			keep = append(keep, h)
			continue
		}
		h.timer.stop()
		h.sa.sendRaw(h.b, h.info)
	}
	inj.held = keep
}

// forge sends an unprotected Informational, with a Delete of the IPsec SAs
// (or, with none, of the ISAKMP SA) or an INITIAL-CONTACT, to the peer of
// each established ISAKMP SA of f.Conn (to only's peer, when given). It returns
// how many it sent. The message has the SA's cookies, as a forger who saw
// them on the wire would write, but no HASH(1) and no encryption: it cannot
// have them without the keys.
func (e *Engine) forge(f *fault.Fault, only *isakmpSA) int {
	var targets []*isakmpSA
	for _, c := range e.conns {
		if f.Conn != "" && c.cfg.Name != f.Conn {
			continue
		}
		for _, sa := range c.sas {
			// A forgery after a message goes toward that message's SA,
			// whatever its state: a forger needs only the cookies.
			if !sa.dead && ((only == nil && sa.state == established) || sa == only) {
				targets = append(targets, sa)
			}
		}
	}
	for _, sa := range targets {
		var pl isakmp.Payload
		what := "INITIAL-CONTACT"
		if f.Forge == "delete" {
			d := &isakmp.Delete{DOI: isakmp.DOIIPsec, Protocol: isakmp.ProtocolESP, SPISize: 4}
			for _, ch := range e.peerChildren(sa) {
				if ch.state == childDeleted || (len(d.SPIs) > 0 && isakmpProtocol(ch.proto) != d.Protocol) {
					continue
				}
				d.Protocol = isakmpProtocol(ch.proto)
				d.SPIs = append(d.SPIs, binary.BigEndian.AppendUint32(nil, ch.spiIn))
			}
			if len(d.SPIs) == 0 {
				d = &isakmp.Delete{DOI: isakmp.DOIIPsec, Protocol: isakmp.ProtocolISAKMP, SPISize: 16, SPIs: [][]byte{isakmp.ISAKMPSPI(sa.ckyI, sa.ckyR)}}
			}
			pl, what = d, fmt.Sprintf("Delete of %d %s SA(s)", len(d.SPIs), d.Protocol)
		} else {
			pl = isakmp.NewInitialContact(sa.ckyI, sa.ckyR)
		}
		m := &isakmp.Message{Header: sa.header(isakmp.ExchangeInformational, e.messageID()), Payloads: []isakmp.Payload{pl}}
		b, err := m.Encode()
		if err != nil {
			e.internalError(fmt.Errorf("encode a forged Informational: %w", err))
			continue
		}
		info := msgInfo{exchange: "informational", num: 1, total: 1, step: events.StepTermination,
			explain: "Informational, unprotected and forged: no HASH(1), no encryption, so nothing proves the peer's ISAKMP SA sent it"}
		e.publishFault(sa, f, info, what)
		e.publishMessage(sa, events.Sent, m, len(b), info)
		sa.sendRaw(b, info)
	}
	return len(targets)
}

// faultExplain is what the timeline says under each fault: what the peer
// will make of it.
var faultExplain = map[fault.Action]string{
	fault.Drop:      "The lab made this node not send the message, as if the network lost it: the side waiting for it times out and retransmits, and a repeat of a request is answered from the cache.",
	fault.Delay:     "The message leaves late, as over a slow path: the peer may retransmit meanwhile, and then sees the late copy as a duplicate.",
	fault.Duplicate: "The message leaves twice, as a network may deliver it: the peer must recognise the second copy and answer it at most once, never process it as new.",
	fault.Reorder:   "The message is held back and sent after the next one: the peer must cope with messages out of order.",
	fault.Omit:      "A payload the peer needs is missing: it must refuse the message (or, for NAT-D, conclude that this side does not do NAT traversal).",
	fault.Replay:    "An attacker (or a confused network) repeats an old message: the peer must recognise it and ignore it, not act on it twice.",
	fault.Cookie:    "The cookies name the ISAKMP SA (RFC 2408 §2.5.3): a message with a wrong one belongs to no SA the peer holds, and a zero initiator cookie is refused outright (INVALID-COOKIE).",
	fault.Forge:     "Anyone on the path can send a Delete or INITIAL-CONTACT in the clear with the cookies seen on the wire; only one protected by the ISAKMP SA's keys (HASH(1)) may be believed, so the peer must ignore this one.",
}

var corruptExplain = map[bool]string{
	false: "The payload is changed after its hashes were computed and before encryption: the peer decrypts the message but its HASH (or signature) check fails, so it refuses the message (AUTHENTICATION-FAILED, INVALID-HASH-INFORMATION); a changed nonce or DH value gives the two sides different keys, and the next encrypted message does not decrypt.",
	true:  "A byte of the encrypted message is changed on the wire: the peer's decryption turns that whole cipher block into garbage, so the message is malformed (PAYLOAD-MALFORMED) or fails its hash.",
}

// publishFault reports a fault that acted, before the datagram it changed
// leaves: the peer's reaction comes after it in the timeline.
func (e *Engine) publishFault(sa *isakmpSA, f *fault.Fault, info msgInfo, note string) {
	e.stats.FaultsInjected++
	node := e.cfg.Node
	if node == "" {
		node = sa.local.Addr().String()
	}
	what := info.what()
	msg := fmt.Sprintf("fault injected: %s %s %s", node, f.Verb(), what)
	if f.Action == fault.Forge {
		msg = fmt.Sprintf("fault injected: %s forged an unprotected %s to %s", node, note, sa.remote)
		note = ""
	}
	if note != "" {
		msg += " (" + note + ")"
	}
	explain := faultExplain[f.Action]
	if f.Action == fault.Corrupt {
		explain = corruptExplain[f.After]
	}
	fields := map[string]any{"action": string(f.Action), "message": faultMessage(info).String(), "peer": sa.remote.String()}
	if f.Payload != "" {
		fields["payload"] = string(f.Payload)
	}
	if f.Action == fault.Corrupt {
		fields["after_encryption"] = f.After
	}
	e.pub.Publish(events.Event{
		Kind: events.FaultInjected, Step: info.step, Conn: info.connName(sa), Level: events.Warn,
		Message: msg, Explain: explain,
		IKE:    sa.ikeInfo(events.Sent, info, nil, 0),
		Fields: fields,
	})
}

package ike

import (
	"bytes"
	"fmt"
	"net/netip"
	"time"

	"github.com/ipseclab/ipseclab/events"
	"github.com/ipseclab/ipseclab/ipsec/esp"
	"github.com/ipseclab/ipseclab/ipsec/isakmp"
	"github.com/ipseclab/ipseclab/ipsec/keymat"
)

// NAT traversal (RFC 3947, RFC 3948).
//
// Both sides announce NAT-T with a vendor ID in their first message. Then,
// in MM3/MM4 (AM2/AM3), each sends NAT-D payloads: the first is the hash of
// the address and port it sends to, the others the hash of those it sends
// from, each hashed with the cookies:
//
//	NAT-D = HASH(CKY-I | CKY-R | IP | Port)
//
// The receiver recomputes both from the packet as it arrived. If the first
// does not match its own address, a NAT rewrote the destination: we are behind
// a NAT. If none of the others matches the packet's source, the peer is. In
// either case the initiator moves ("floats") to port 4500 for the rest of
// phase 1 and everything after, where IKE messages carry a 4-byte non-ESP
// marker and ESP travels in UDP (RFC 3948), which a NAT can map; Quick Mode
// then negotiates the UDP-encapsulated modes. The side behind the NAT sends
// one-byte keepalives so that its mapping does not expire.
//
// strongSwan's kernel-libipsec can only do UDP-encapsulated ESP, so charon
// fakes a NAT by sending a random hash for its own address; a peer without
// NAT-T cannot talk to it. ForceEncap does the same here.

const (
	portIKE  = 500
	portNATT = 4500
)

// KeepaliveOff in Connection.Keepalive sends no NAT-T keepalives.
const KeepaliveOff = time.Duration(-1)

// natState is the outcome of NAT detection for an ISAKMP SA.
type natState struct {
	detected bool // NAT-D payloads were compared
	local    bool // this node is behind a NAT
	remote   bool // the peer is behind a NAT
	fake     bool // no NAT, but this side forces UDP encapsulation
}

// any reports whether ESP must go in UDP.
func (n natState) any() bool { return n.local || n.remote || n.fake }

// natdPayloads returns our NAT-D payloads: the destination's hash, then ours
// (random when we force encapsulation). None unless both sides speak NAT-T.
func (e *Engine) natdPayloads(sa *isakmpSA) []isakmp.Payload {
	if !sa.peer.natt {
		return nil
	}
	prf, _ := keymat.NewPRF(sa.choice.attrs.Hash)
	dst := keymat.NATD(prf, sa.ckyI, sa.ckyR, sa.remote)
	src := keymat.NATD(prf, sa.ckyI, sa.ckyR, sa.local)
	if sa.conn.cfg.ForceEncap {
		src = make([]byte, prf.Size())
		e.random(src)
	}
	return []isakmp.Payload{&isakmp.NATD{Draft: sa.peer.nattDraft, Hash: dst}, &isakmp.NATD{Draft: sa.peer.nattDraft, Hash: src}}
}

// detectNAT compares the peer's NAT-D payloads with the addresses of the
// packet that carried them.
func (e *Engine) detectNAT(sa *isakmpSA, p Packet, m *isakmp.Message) {
	if !sa.peer.natt {
		return
	}
	natd := isakmp.All[*isakmp.NATD](m)
	if len(natd) < 2 {
		// The peer announced NAT-T in its vendor IDs but sent no NAT-D
		// hashes (RFC 3947 §3.2 wants them in MM3/MM4, AM2/AM3): nothing
		// to compare, so nothing is detected and nothing floats.
		e.pub.Publish(events.Event{
			Kind: events.NATDetected, Step: events.StepPhase1, Conn: sa.conn.cfg.Name, Level: events.Warn,
			Message: fmt.Sprintf("no NAT-D payloads from %s: NAT detection impossible, assuming no NAT", p.Remote),
			Explain: "The peer announced NAT traversal but sent fewer than the two NAT-D hashes it owes: without them this side cannot tell whether a NAT rewrote the addresses, so it assumes none, stays on UDP 500 and proposes plain ESP, which a NAT on the path may drop.",
			IKE:     sa.ikeInfo(events.Received, msgInfo{exchange: sa.mode.String()}, nil, 0),
			Fields:  map[string]any{"nat_local": false, "nat_remote": false, "natd_missing": true, "natd_count": len(natd), "peer": p.Remote.String()},
		})
		return
	}
	prf, _ := keymat.NewPRF(sa.choice.attrs.Hash)
	me := keymat.NATD(prf, sa.ckyI, sa.ckyR, sa.local)
	them := keymat.NATD(prf, sa.ckyI, sa.ckyR, p.Remote)
	dstMatched, srcMatched := bytes.Equal(natd[0].Hash, me), false
	for _, n := range natd[1:] {
		srcMatched = srcMatched || bytes.Equal(n.Hash, them)
	}
	sa.nat = natState{detected: true, local: !dstMatched, remote: !srcMatched}
	sa.nat.fake = dstMatched && srcMatched && sa.conn.cfg.ForceEncap

	var msg, explain string
	switch {
	case sa.nat.local && sa.nat.remote:
		msg = "NAT detected on both sides"
		explain = "Neither NAT-D hash matched: both addresses were rewritten on the way. IKE moves to UDP 4500 and ESP will travel in UDP."
	case sa.nat.local:
		msg = fmt.Sprintf("NAT detected: this node (%s) is behind a NAT", sa.local.Addr())
		explain = "The peer saw another address than ours: a NAT rewrote our source. IKE moves to UDP 4500, ESP will travel in UDP, and we send keepalives to hold the mapping open."
	case sa.nat.remote:
		msg = fmt.Sprintf("NAT detected: the peer (%s) is behind a NAT, or fakes one", p.Remote)
		explain = "The peer's source hash does not match the address its packet came from. IKE moves to UDP 4500 and ESP will travel in UDP. (strongSwan's kernel-libipsec fakes this to force UDP encapsulation.)"
	case sa.nat.fake:
		msg = "no NAT, but UDP encapsulation is forced"
		explain = "The NAT-D hashes match, but this connection forces encapsulation by sending a fake hash, so ESP travels in UDP anyway."
	default:
		msg = "no NAT between the peers"
		explain = "Both NAT-D hashes match the packet's addresses: nothing rewrote them, so ESP can travel directly over IP."
	}
	e.pub.Publish(events.Event{
		Kind: events.NATDetected, Step: events.StepPhase1, Conn: sa.conn.cfg.Name,
		Message: msg, Explain: explain, IKE: sa.ikeInfo(events.Received, msgInfo{exchange: sa.mode.String()}, nil, 0),
		Fields: map[string]any{"nat_local": sa.nat.local, "nat_remote": sa.nat.remote, "nat_fake": sa.nat.fake, "peer": p.Remote.String()},
	})
}

// floatIfNAT moves the initiator to port 4500 once a NAT was detected
// (RFC 3947 §4: from MM5, or AM3, on).
func (e *Engine) floatIfNAT(sa *isakmpSA) {
	if !sa.peer.natt || !sa.nat.any() || sa.local.Port() == portNATT {
		return
	}
	old := sa.remote
	sa.local = netip.AddrPortFrom(sa.local.Addr(), portNATT)
	sa.remote = netip.AddrPortFrom(sa.remote.Addr(), portNATT)
	e.publishFloat(sa, old, "IKE floats from UDP 500 to 4500: the rest of the exchange, and ESP, go through the port a NAT can map, with a 4-byte non-ESP marker in front of IKE messages.")
}

// followFloat is the other side of the float, and of a NAT that changed its
// mapping: a message on port 4500 from a new address or port moves the SA
// there, and with it the IPsec SAs that used the old endpoint, since ESP in
// UDP travels between the ports IKE uses (RFC 3948 §2.1). Callers pass only
// messages that belong to the SA (phase 1 before authentication, else
// authenticated ones), so a forged packet cannot move anything.
func (e *Engine) followFloat(sa *isakmpSA, p Packet) {
	if p.Local.Port() != portNATT || (sa.local.Port() == portNATT && sa.remote == p.Remote) {
		return
	}
	if sa.local.Port() == portNATT {
		// Only the side that found its peer behind a NAT follows the peer,
		// and, once phase 1 is done, every SA with the peer goes along.
		switch {
		case !sa.nat.remote:
		case sa.state == established:
			e.followMapping(sa.remote, p.Remote, "an authenticated IKE message", sa.conn.cfg.Name)
		default:
			sa.remote = p.Remote
		}
		return
	}
	old := sa.remote
	sa.local = netip.AddrPortFrom(sa.local.Addr(), portNATT)
	sa.remote = p.Remote
	e.publishFloat(sa, old, "The peer floated to UDP 4500 after detecting a NAT; we answer on 4500 too, to the address and port the NAT shows us.")
}

// HandleMapping is the data plane's report (esp.Hooks.Mapping) that an
// authenticated ESP packet came from a new address or port: the NAT in
// front of the peer made a new mapping. The data plane has moved the IPsec
// SAs already; IKE follows with the ISAKMP SA, so that DPD, keepalive
// answers, rekeys and Deletes reach the peer too, as charon does on Linux's
// XFRM mapping event.
func (e *Engine) HandleMapping(m esp.MappingChange) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return
	}
	e.followMapping(m.Old, m.New, fmt.Sprintf("ESP packet #%d of SA %08x", m.Seq, m.ID.SPI), m.Conn)
}

// followMapping moves every ISAKMP SA and IPsec SA pair that reaches the peer
// at old over UDP 4500 to new, and reports it once. via says which
// authenticated packet showed the new endpoint.
func (e *Engine) followMapping(old, new netip.AddrPort, via, conn string) {
	var moved *isakmpSA
	isakmpSAs, pairs := 0, 0
	for _, c := range e.conns {
		for _, sa := range c.sas {
			if sa.dead || sa.remote != old || sa.local.Port() != portNATT {
				continue
			}
			sa.remote = new
			isakmpSAs++
			if moved == nil || sa.conn.cfg.Name == conn {
				moved = sa
			}
		}
		for _, ch := range c.children {
			if ch.remote == old && e.moveEncap(ch, new) {
				pairs++
			}
		}
	}
	if moved == nil && pairs == 0 {
		return
	}
	e.stats.MappingChanges++
	name, peer, ev := conn, new.Addr().String(), events.Event{}
	if moved != nil {
		name, peer = moved.conn.cfg.Name, moved.peerName()
		ev.IKE = moved.ikeInfo(events.Received, msgInfo{exchange: moved.mode.String()}, nil, 0)
	}
	ev.Kind, ev.Step, ev.Conn = events.NATMapChanged, events.StepData, name
	ev.Message = fmt.Sprintf("NAT mapping of %s changed: %s → %s, shown by %s; %d ISAKMP SA(s) and %d pair(s) of IPsec SAs follow", peer, old, new, via, isakmpSAs, pairs)
	ev.Explain = "The NAT in front of the peer forgot its mapping (a reboot, or an idle timeout) and made a new one with another address or port. " +
		"Only an authenticated packet may move the SAs, or one forged datagram could steal the tunnel: an ESP packet that passed its ICV and anti-replay check with the highest sequence number so far, or an authenticated IKE message. " +
		"From now on everything to the peer goes to the new endpoint, with the same keys and sequence numbers (RFC 3948 §2.1; Linux's XFRM mapping event, as charon follows it)."
	ev.Fields = map[string]any{"old": old.String(), "new": new.String(), "via": via, "isakmp_sas_moved": isakmpSAs, "ipsec_sas_moved": pairs}
	e.pub.Publish(ev)
}

// publishFloat reports that IKE moved to port 4500 (a NAT's later changes
// of mapping are followMapping's).
func (e *Engine) publishFloat(sa *isakmpSA, old netip.AddrPort, explain string) {
	e.pub.Publish(events.Event{
		Kind: events.NATFloat, Step: events.StepPhase1, Conn: sa.conn.cfg.Name,
		Message: fmt.Sprintf("IKE with %s now on %s → %s (was %s)", sa.peerName(), sa.local, sa.remote, old),
		Explain: explain, IKE: sa.ikeInfo(events.Sent, msgInfo{exchange: sa.mode.String()}, nil, 0),
		Fields: map[string]any{"old_remote": old.String(), "remote": sa.remote.String(), "local": sa.local.String()},
	})
}

// startKeepalives sends RFC 3948 §2.3 keepalives while this node is behind a
// NAT, so that the NAT keeps the UDP 4500 mapping that ESP and IKE use.
func (sa *isakmpSA) startKeepalives() {
	every := sa.e.keepaliveInterval(sa.conn)
	if !sa.nat.local || sa.local.Port() != portNATT || every <= 0 {
		return
	}
	e := sa.e
	var tick func()
	tick = func() {
		e.stats.Keepalives++
		e.publishKeepalive(sa, every)
		if err := e.tr.SendKeepalive(sa.remote); err != nil {
			e.sendFailed(sa.local, sa.remote, "NAT-T keepalive", sa.conn.cfg.Name, err)
		}
		sa.keepaliveTimer = e.after(every, tick)
	}
	sa.keepaliveTimer = e.after(every, tick)
}

// keepaliveInterval is the connection's, or the engine's; negative: none.
func (e *Engine) keepaliveInterval(c *conn) time.Duration {
	if c.cfg.Keepalive != 0 {
		return c.cfg.Keepalive
	}
	return e.tuning.Keepalive
}

package ike

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/ipseclab/ipseclab/events"
	"github.com/ipseclab/ipseclab/ipsec/esp"
	"github.com/ipseclab/ipseclab/ipsec/isakmp"
	"github.com/ipseclab/ipseclab/ipsec/proposal"
)

// An IPsec SA pair (a "CHILD SA" in strongSwan's words): the two
// unidirectional SAs one Quick Mode negotiated, their lifetimes and their
// rekeying.
//
// Lifetimes (RFC 2409 §5.5, RFC 4301 §4.4.2.1) come in seconds and in bytes.
// The side that ran the Quick Mode replaces the pair a little before the time
// limit, or when the data plane reports the soft byte limit; the new pair is
// installed first and the old one deleted RekeyDeleteDelay later, so that
// packets in flight on the old SAs still arrive (make before break). At the
// hard limit either side deletes the pair and tells the peer.

type childState int

const (
	childInstalled childState = iota + 1 // carrying traffic
	childRekeying                        // a replacement is being negotiated
	childRekeyed                         // replaced; deleted soon
	childDeleted
)

func (s childState) String() string {
	return [...]string{"", "installed", "rekeying", "rekeyed", "deleted"}[s]
}

// childSA is one installed IPsec SA pair.
type childSA struct {
	conn      *conn
	owner     *isakmpSA // the ISAKMP SA it lives under (its successor after a re-establishment)
	initiator bool      // we sent QM1
	proto     esp.Protocol
	spiIn     uint32 // chosen by us: the peer sends with it
	spiOut    uint32 // chosen by the peer
	suite     proposal.Proposal
	mode      esp.Mode
	encap     bool
	local     netip.AddrPort
	remote    netip.AddrPort
	localTS   esp.TrafficSelector
	remoteTS  esp.TrafficSelector
	lifetime  time.Duration
	lifeBytes uint64
	installed time.Time
	state     childState
	in, out   esp.SAID // as installed in the data plane, even after a NAT moved the peer

	rekeyTimer, expireTimer, retireTimer *timer
}

func (ch *childSA) inID() esp.SAID  { return ch.in }
func (ch *childSA) outID() esp.SAID { return ch.out }

// childRequest is a wish for an IPsec SA pair: from Initiate, an acquire, a
// start action, a rekey or a DPD restart. It waits for phase 1 if needed.
type childRequest struct {
	conn    *conn
	peer    netip.Addr
	rekeyOf *childSA
	why     string
	waiters []chan error
	done    bool
	err     error // the outcome, once done
}

// newRequest registers a request with its connection.
func (c *conn) newRequest(peer netip.Addr, why string, rekeyOf *childSA) *childRequest {
	r := &childRequest{conn: c, peer: peer, why: why, rekeyOf: rekeyOf}
	c.pending = append(c.pending, r)
	return r
}

// wait returns a channel that receives the request's outcome.
func (r *childRequest) wait() <-chan error {
	ch := make(chan error, 1)
	if r.done { // finished before anyone waited: phase 1 could not even start
		ch <- r.err
		return ch
	}
	r.waiters = append(r.waiters, ch)
	return ch
}

// finish reports the outcome to whoever waits and forgets the request.
func (r *childRequest) finish(err error) {
	if r.done {
		return
	}
	r.done, r.err = true, err
	for _, w := range r.waiters {
		w <- err
	}
	r.waiters = nil
	if i := slices.Index(r.conn.pending, r); i >= 0 {
		r.conn.pending = slices.Delete(r.conn.pending, i, i+1)
	}
}

// requestFailed ends a request that never reached (or did not survive)
// Quick Mode.
func (e *Engine) requestFailed(r *childRequest, sa *isakmpSA, reason string) {
	if r.done {
		return
	}
	e.pub.Publish(events.Event{
		Kind: events.Phase2Failed, Step: events.StepPhase2, Conn: r.conn.cfg.Name, Level: events.Error,
		Message: "IPsec SAs not established: " + reason, Fields: map[string]any{"reason": reason, "why": r.why},
	})
	if r.rekeyOf != nil && r.rekeyOf.state == childRekeying {
		r.rekeyOf.state = childInstalled
	}
	r.finish(fmt.Errorf("connection %s: %s", r.conn.cfg.Name, reason))
}

// installInbound adds the SA the peer sends with (our SPI).
func (e *Engine) installInbound(qm *quickMode) error {
	cfg, err := e.saConfig(qm, esp.Inbound)
	if err == nil {
		err = e.dp.AddSA(cfg)
	}
	if err != nil {
		return err
	}
	qm.inInstalled = true
	return nil
}

// installOutbound adds the SA we send with (the peer's SPI), after the
// connection's policy for its selectors, which the outbound SA serves.
func (e *Engine) installOutbound(qm *quickMode) error {
	if err := e.ensurePolicy(qm.conn, qm.localTS, qm.remoteTS); err != nil {
		return err
	}
	cfg, err := e.saConfig(qm, esp.Outbound)
	if err != nil {
		return err
	}
	return e.dp.AddSA(cfg)
}

// saConfig is one direction of the pair as the data plane takes it, keyed
// with KEYMAT for the SPI of that direction's destination (RFC 2409 §5.5).
func (e *Engine) saConfig(qm *quickMode, dir esp.Direction) (esp.SAConfig, error) {
	sa := qm.sa
	suite := qm.choice.suite
	enc, integ, err := espAlgorithms(suite)
	if err != nil {
		return esp.SAConfig{}, err
	}
	t, err := childSuite(suite)
	if err != nil {
		return esp.SAConfig{}, err
	}
	spi := qm.spiOut
	if dir == esp.Inbound {
		spi = qm.spiIn
	}
	keys, err := sa.keys.IPsecKeys(t.proto, t.id, t.attrs.KeyLength, t.attrs.AuthAlgorithm, spiBytes(spi), qm.gqmxy, qm.niB, qm.nrB)
	if err != nil {
		return esp.SAConfig{}, err
	}
	cfg := esp.SAConfig{
		Conn: qm.conn.cfg.Name, Dir: dir, SPI: spi, Protocol: qm.proto, Mode: qm.mode,
		Enc: enc, EncKey: keys.Encryption, Salt: keys.Salt, Integ: integ, IntegKey: keys.Integrity,
		Local: sa.local.Addr(), Remote: sa.remote.Addr(), LocalTS: qm.localTS, RemoteTS: qm.remoteTS,
		ReplayWindow: qm.conn.cfg.Child.ReplayWindow, ESN: suite.ESN,
	}
	if qm.lifeBytes > 0 {
		cfg.Lifetime = esp.Lifetime{SoftBytes: qm.lifeBytes * 9 / 10, HardBytes: qm.lifeBytes}
	}
	if qm.encap {
		cfg.Encap = &esp.UDPEncap{LocalPort: sa.local.Port(), RemotePort: sa.remote.Port(), FollowPeer: sa.nat.remote}
	}
	if e.cfg.PublishKeys {
		e.publishChildKeys(qm, dir, cfg)
	}
	return cfg, nil
}

// childUp records the new pair, arms its lifetimes, and retires the pair it
// replaces.
func (e *Engine) childUp(qm *quickMode) {
	sa := qm.sa
	c := qm.conn
	now := e.clock.Now()
	ch := &childSA{
		conn: c, owner: sa, initiator: qm.initiator, proto: qm.proto, spiIn: qm.spiIn, spiOut: qm.spiOut,
		suite: qm.choice.suite, mode: qm.mode, encap: qm.encap, local: sa.local, remote: sa.remote,
		localTS: qm.localTS, remoteTS: qm.remoteTS, lifetime: qm.lifetime, lifeBytes: qm.lifeBytes,
		installed: now, state: childInstalled,
		in:  esp.SAID{SPI: qm.spiIn, Protocol: qm.proto, Dst: sa.local.Addr()},
		out: esp.SAID{SPI: qm.spiOut, Protocol: qm.proto, Dst: sa.remote.Addr()},
	}
	qm.child, qm.inInstalled = ch, false
	old := qm.rekeyOf
	if old == nil && !qm.initiator {
		// The peer replaced a pair of ours: same connection and selectors.
		for _, o := range c.children {
			if o.state == childInstalled && o.remote == ch.remote && o.localTS == ch.localTS && o.remoteTS == ch.remoteTS {
				old = o
				break
			}
		}
	}
	c.children = append(c.children, ch)
	if ch.initiator {
		ch.rekeyTimer = e.after(e.softLifetime(ch.lifetime), func() { e.rekeyChild(ch, "its lifetime of "+ch.lifetime.String()+" is nearly over") })
	}
	ch.expireTimer = e.after(ch.lifetime, func() {
		e.publishExpired(sa, ch, "the IPsec SAs reached their lifetime of "+ch.lifetime.String())
		e.deleteChild(ch, true, "lifetime reached")
	})
	e.publishPhase2Up(qm, ch, old)
	if old != nil && old.state != childDeleted {
		old.state = childRekeyed
		old.rekeyTimer.stop()
		if qm.initiator {
			old.retireTimer = e.after(e.tuning.RekeyDeleteDelay, func() { e.deleteChild(old, true, "replaced by a rekey") })
		}
	}
}

// rekeyChild starts the replacement of a pair.
func (e *Engine) rekeyChild(ch *childSA, why string) {
	if ch.state != childInstalled {
		return
	}
	ch.state = childRekeying
	e.pub.Publish(events.Event{
		Kind: events.Rekey, Step: events.StepPhase2, Conn: ch.conn.cfg.Name,
		Message: fmt.Sprintf("rekeying %s SAs %08x/%08x: %s", ch.proto, ch.spiIn, ch.spiOut, why),
		Explain: "A new Quick Mode negotiates a fresh pair of IPsec SAs; the old pair keeps carrying traffic until the new one is installed (make before break).",
		SA:      ch.info(),
	})
	e.requestChild(ch.conn.newRequest(ch.remote.Addr(), "rekey", ch))
}

// deleteChild removes a pair from the data plane and, if send is set, tells
// the peer with a Delete payload naming our inbound SPI (RFC 2408 §3.15), the
// one it sends with.
func (e *Engine) deleteChild(ch *childSA, send bool, reason string) {
	if ch.state == childDeleted {
		return
	}
	ch.state = childDeleted
	for _, t := range []*timer{ch.rekeyTimer, ch.expireTimer, ch.retireTimer} {
		t.stop()
	}
	e.dp.DeleteSA(ch.inID())
	e.dp.DeleteSA(ch.outID())
	c := ch.conn
	if i := slices.Index(c.children, ch); i >= 0 {
		c.children = slices.Delete(c.children, i, i+1)
	}
	// Published before the Delete leaves, so that the peer's reaction is
	// drawn after it.
	e.publishChildDeleted(ch, reason)
	if send {
		if sa := e.managingSA(ch); sa != nil {
			e.sendDelete(sa, &isakmp.Delete{DOI: isakmp.DOIIPsec, Protocol: isakmpProtocol(ch.proto), SPISize: 4, SPIs: [][]byte{spiBytes(ch.spiIn)}})
		}
	}
	e.dropIdlePolicies(c)
}

// HandleExpire takes the data plane's byte (or packet) lifetime reports
// (esp.Hooks.Expire): a soft limit rekeys, a hard one removes the pair.
func (e *Engine) HandleExpire(x esp.Expiry) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return
	}
	c := e.byName[x.Conn]
	if c == nil {
		return
	}
	for _, ch := range c.children {
		if ch.inID() != x.ID && ch.outID() != x.ID {
			continue
		}
		if !x.Hard {
			if ch.initiator {
				e.rekeyChild(ch, fmt.Sprintf("the %s SA passed its soft limit in %s", x.Dir, x.Reason))
			}
			return
		}
		e.publishExpired(ch.owner, ch, fmt.Sprintf("the %s SA reached its hard limit in %s", x.Dir, x.Reason))
		e.deleteChild(ch, true, "hard "+x.Reason+" lifetime reached")
		return
	}
}

// A connection's policies (RFC 4301 §4.4.1) are SPD entries, one per pair
// of selectors in use: the trap of the configured selectors (start_action
// trap, DPD's hold), and those of its IPsec SA pairs. A responder that
// accepts any peer holds one per peer, so that each peer's traffic goes
// through that peer's SAs. A Quick Mode responder installs the policy when it
// sends QM2, before its outbound SA exists: a packet that answers the
// initiator's first ESP before QM3 arrives waits in the policy's acquire
// queue instead of being dropped, and goes out once QM3 installs the SA.

// ensurePolicy installs the connection's policy for a pair of selectors,
// unless it holds it already.
func (e *Engine) ensurePolicy(c *conn, local, remote esp.TrafficSelector) error {
	p := esp.Policy{Conn: c.cfg.Name, LocalTS: local, RemoteTS: remote}
	if slices.Contains(c.policies, p) {
		return nil
	}
	if err := e.dp.AddPolicy(p); err != nil {
		return err
	}
	c.policies = append(c.policies, p)
	return nil
}

// policyKey is the policy whose outbound SA the exchange negotiates.
func (qm *quickMode) policyKey() esp.PolicyKey {
	return esp.PolicyKey{Conn: qm.conn.cfg.Name, LocalTS: qm.localTS, RemoteTS: qm.remoteTS}
}

// trapSelectors are the configured selectors, or the two IKE endpoints.
func (c *conn) trapSelectors() (local, remote esp.TrafficSelector) {
	if c.cfg.Child.LocalTS.IsValid() {
		return esp.TrafficSelector{Prefix: c.cfg.Child.LocalTS}, esp.TrafficSelector{Prefix: c.cfg.Child.RemoteTS}
	}
	return esp.HostSelector(c.cfg.Local), esp.HostSelector(c.cfg.Remote)
}

// trapPolicy installs the configured selectors, so that the first matching
// packet triggers an acquire (start_action trap, and DPD's hold).
func (e *Engine) trapPolicy(c *conn) error {
	c.trap = true
	local, remote := c.trapSelectors()
	return e.ensurePolicy(c, local, remote)
}

// dropIdlePolicies removes the connection's policies that nothing needs any
// more: not the trap, no pair of its IPsec SAs, no Quick Mode about to install
// one.
func (e *Engine) dropIdlePolicies(c *conn) {
	inUse := func(p esp.Policy) bool {
		if l, r := c.trapSelectors(); c.trap && p.LocalTS == l && p.RemoteTS == r {
			return true
		}
		for _, ch := range c.children {
			if ch.localTS == p.LocalTS && ch.remoteTS == p.RemoteTS {
				return true
			}
		}
		for _, qm := range e.awaitingOutbound(c) {
			if qm.localTS == p.LocalTS && qm.remoteTS == p.RemoteTS {
				return true
			}
		}
		return false
	}
	c.policies = slices.DeleteFunc(c.policies, func(p esp.Policy) bool {
		if inUse(p) {
			return false
		}
		e.dp.DeletePolicy(p)
		return true
	})
}

// awaitingOutbound lists the Quick Modes of connection c, under any ISAKMP SA,
// whose policy is in place but whose outbound SA is not yet: answered and
// waiting for QM3, or QM3 sent and giving the responder time to take it.
func (e *Engine) awaitingOutbound(c *conn) []*quickMode {
	var out []*quickMode
	for _, o := range e.conns {
		for _, sa := range o.sas {
			for _, qm := range sa.quick {
				if qm.conn == c && (qm.state == qmR2Sent || qm.state == qmI3Sent) {
					out = append(out, qm)
				}
			}
		}
	}
	return out
}

// mayUse reports whether the peer authenticated by an ISAKMP SA may
// negotiate and manage the IPsec SAs of connection c: c is the SA's own
// connection, or one that would have accepted the same peer in phase 1 with
// the same key: the same local address, the peer's address (or any), the same
// pre-shared key, and the peer's identity. A responder picks its connection
// in phase 1 by the peer's address alone (Main Mode with a pre-shared key
// cannot do better), so when it has several connections with one peer, an
// ISAKMP SA made under one of them carries the Quick Modes of the others.
func (sa *isakmpSA) mayUse(c *conn) bool {
	own := sa.conn
	if c == own {
		return true
	}
	return c.cfg.Local == own.cfg.Local &&
		(!c.cfg.Remote.IsValid() || c.cfg.Remote == sa.remote.Addr()) &&
		c.cfg.PSK == own.cfg.PSK &&
		(c.remoteID == nil || c.remoteID.Equal(sa.peerID))
}

// peerChildren lists the IPsec SA pairs with the peer of sa, of every
// connection it may use.
func (e *Engine) peerChildren(sa *isakmpSA) []*childSA {
	var out []*childSA
	for _, c := range e.conns {
		if !sa.mayUse(c) {
			continue
		}
		for _, ch := range c.children {
			if ch.remote == sa.remote {
				out = append(out, ch)
			}
		}
	}
	return out
}

// managingSA returns an established ISAKMP SA through which the pair can be
// deleted: its owner while it lives, else the newest with the same peer that
// may use the pair's connection, the connection's own first.
func (e *Engine) managingSA(ch *childSA) *isakmpSA {
	if o := ch.owner; o != nil && !o.dead && o.state == established {
		return o
	}
	for _, c := range append([]*conn{ch.conn}, e.conns...) {
		for i := len(c.sas) - 1; i >= 0; i-- {
			sa := c.sas[i]
			if !sa.dead && sa.state == established && sa.remote == ch.remote && sa.mayUse(ch.conn) {
				return sa
			}
		}
	}
	return nil
}

// adoptChildren puts pairs with the peer under a newly established ISAKMP SA:
// those of its own connection, those whose ISAKMP SA is gone, and those of the
// SA it re-establishes. Deleting an older ISAKMP SA then leaves them be.
func (e *Engine) adoptChildren(sa *isakmpSA) {
	for _, ch := range e.peerChildren(sa) {
		if ch.owner == sa {
			continue
		}
		if ch.conn == sa.conn || ch.owner == nil || ch.owner.dead || ch.owner == sa.replaces {
			e.reown(ch, sa)
		}
	}
}

// reown puts a pair under another ISAKMP SA with its peer, and moves its UDP
// encapsulation to where that SA reaches the peer.
func (e *Engine) reown(ch *childSA, sa *isakmpSA) {
	ch.owner = sa
	if sa.local.Port() == portNATT {
		e.moveEncap(ch, sa.remote)
	}
}

// moveEncap points a UDP-encapsulated pair at the peer's endpoint as its
// ISAKMP SA now sees it: ESP in UDP uses the addresses and ports of IKE (RFC
// 3948 §2.1), and a NAT that changed its mapping changed them. The SAs are
// moved in place, so that their sequence numbers and replay windows go on.
func (e *Engine) moveEncap(ch *childSA, to netip.AddrPort) bool {
	if !ch.encap || ch.remote == to || ch.state == childDeleted {
		return false
	}
	for _, id := range []esp.SAID{ch.inID(), ch.outID()} {
		if err := e.dp.UpdateEncap(id, to); err != nil {
			e.internalError(fmt.Errorf("moving SA %s to %s: %w", id, to, err))
		}
	}
	ch.remote = to
	return true
}

func (ch *childSA) info() *events.SAInfo {
	info := &events.SAInfo{
		Type: ch.proto.String(), SPIIn: fmt.Sprintf("%08x", ch.spiIn), SPIOut: fmt.Sprintf("%08x", ch.spiOut),
		Proposal: ch.suite.String(), Mode: ch.mode.String(), Encap: ch.encap,
		LocalTS: ch.localTS.String(), RemoteTS: ch.remoteTS.String(), Lifetime: ch.lifetime.String(),
		Local: ch.local.String(), Remote: ch.remote.String(), Initiator: ch.initiator,
	}
	if ch.suite.Group != 0 {
		info.PFS = ch.suite.Group.String()
	}
	if ch.owner != nil {
		info.ICookie, info.RCookie = ch.owner.ckyI.String(), ch.owner.ckyR.String()
	}
	return info
}

func spiBytes(spi uint32) []byte { return binary.BigEndian.AppendUint32(nil, spi) }

func espProtocol(p isakmp.ProtocolID) esp.Protocol {
	if p == isakmp.ProtocolAH {
		return esp.ProtoAH
	}
	return esp.ProtoESP
}

func isakmpProtocol(p esp.Protocol) isakmp.ProtocolID {
	if p == esp.ProtoAH {
		return isakmp.ProtocolAH
	}
	return isakmp.ProtocolESP
}

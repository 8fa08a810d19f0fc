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

	rekeyTimer, expireTimer, retireTimer *timer
}

func (ch *childSA) inID() esp.SAID {
	return esp.SAID{SPI: ch.spiIn, Protocol: ch.proto, Dst: ch.local.Addr()}
}

func (ch *childSA) outID() esp.SAID {
	return esp.SAID{SPI: ch.spiOut, Protocol: ch.proto, Dst: ch.remote.Addr()}
}

// childRequest is a wish for an IPsec SA pair: from Initiate, an acquire, a
// start action, a rekey or a DPD restart. It waits for phase 1 if needed.
type childRequest struct {
	conn    *conn
	peer    netip.Addr
	rekeyOf *childSA
	why     string
	waiters []chan error
	done    bool
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
	if r.done {
		ch <- nil
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
	r.done = true
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
// connection's policy, which the outbound SA serves.
func (e *Engine) installOutbound(qm *quickMode) error {
	if err := e.ensurePolicy(qm.sa.conn, qm.localTS, qm.remoteTS); err != nil {
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
		Conn: sa.conn.cfg.Name, Dir: dir, SPI: spi, Protocol: qm.proto, Mode: qm.mode,
		Enc: enc, EncKey: keys.Encryption, Salt: keys.Salt, Integ: integ, IntegKey: keys.Integrity,
		Local: sa.local.Addr(), Remote: sa.remote.Addr(), LocalTS: qm.localTS, RemoteTS: qm.remoteTS,
		ReplayWindow: sa.conn.cfg.Child.ReplayWindow, ESN: suite.ESN,
	}
	if qm.lifeBytes > 0 {
		cfg.Lifetime = esp.Lifetime{SoftBytes: qm.lifeBytes * 9 / 10, HardBytes: qm.lifeBytes}
	}
	if qm.encap {
		cfg.Encap = &esp.UDPEncap{LocalPort: sa.local.Port(), RemotePort: sa.remote.Port()}
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
	c := sa.conn
	now := e.clock.Now()
	ch := &childSA{
		conn: c, owner: sa, initiator: qm.initiator, proto: qm.proto, spiIn: qm.spiIn, spiOut: qm.spiOut,
		suite: qm.choice.suite, mode: qm.mode, encap: qm.encap, local: sa.local, remote: sa.remote,
		localTS: qm.localTS, remoteTS: qm.remoteTS, lifetime: qm.lifetime, lifeBytes: qm.lifeBytes,
		installed: now, state: childInstalled,
	}
	qm.child, qm.inInstalled = ch, false
	old := qm.rekeyOf
	if old == nil && !qm.initiator {
		// The peer replaced a pair of ours: same connection and selectors.
		for _, o := range c.children {
			if o.state == childInstalled && o.remote.Addr() == ch.remote.Addr() && o.localTS == ch.localTS && o.remoteTS == ch.remoteTS {
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
	if send {
		if sa := e.liveSA(c, ch.owner, ch.remote.Addr()); sa != nil {
			e.sendDelete(sa, &isakmp.Delete{DOI: isakmp.DOIIPsec, Protocol: isakmpProtocol(ch.proto), SPISize: 4, SPIs: [][]byte{spiBytes(ch.spiIn)}})
		}
	}
	e.publishChildDeleted(ch, reason)
	e.dropPolicyIfIdle(c)
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

// ensurePolicy installs the connection's policy with the given selectors (or
// keeps it when unchanged).
func (e *Engine) ensurePolicy(c *conn, local, remote esp.TrafficSelector) error {
	p := esp.Policy{Conn: c.cfg.Name, LocalTS: local, RemoteTS: remote}
	if c.policy != nil && *c.policy == p {
		return nil
	}
	if err := e.dp.AddPolicy(p); err != nil {
		return err
	}
	c.policy = &p
	return nil
}

// trapPolicy installs the configured selectors, so that the first matching
// packet triggers an acquire (start_action trap, and DPD's hold).
func (e *Engine) trapPolicy(c *conn) error {
	local, remote := esp.TrafficSelector{Prefix: c.cfg.Child.LocalTS}, esp.TrafficSelector{Prefix: c.cfg.Child.RemoteTS}
	if !c.cfg.Child.LocalTS.IsValid() {
		local, remote = esp.HostSelector(c.cfg.Local), esp.HostSelector(c.cfg.Remote)
	}
	c.trap = true
	return e.ensurePolicy(c, local, remote)
}

// dropPolicyIfIdle removes the policy of a connection without SAs, unless it
// traps.
func (e *Engine) dropPolicyIfIdle(c *conn) {
	if c.policy == nil || c.trap || len(c.children) > 0 {
		return
	}
	e.dp.DeletePolicy(c.cfg.Name)
	c.policy = nil
}

// adoptChildren moves the pairs that lived under an older ISAKMP SA with the
// same peer to a new one, so that deleting the old ISAKMP SA leaves them be.
func (e *Engine) adoptChildren(sa *isakmpSA) {
	for _, ch := range sa.conn.children {
		if ch.owner != sa && ch.remote.Addr() == sa.remote.Addr() {
			ch.owner = sa
		}
	}
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

package ike

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ipseclab/ipseclab/events"
	"github.com/ipseclab/ipseclab/ipsec/esp"
	"github.com/ipseclab/ipseclab/ipsec/isakmp"
	"github.com/ipseclab/ipseclab/ipsec/keymat"
)

// Packet is a received IKE datagram.
type Packet struct {
	// Local is where it arrived: port 500, or 4500 with the non-ESP marker
	// already removed. The address may be unspecified when the socket does
	// not say (the data plane's NAT-T port); the connection's then counts.
	Local  netip.AddrPort
	Remote netip.AddrPort
	Data   []byte
}

// Stats counts what the engine saw and did.
type Stats struct {
	Received        uint64 `json:"received"`
	Sent            uint64 `json:"sent"`
	Malformed       uint64 `json:"malformed"`         // undecodable, or failing decryption or authentication
	UnknownSA       uint64 `json:"unknown_sa"`        // for no ISAKMP SA we hold
	Duplicates      uint64 `json:"duplicates"`        // repeats answered from the cache
	Retransmits     uint64 `json:"retransmits"`       // our messages sent again
	SendErrors      uint64 `json:"send_errors"`       // the transport refused a datagram
	Keepalives      uint64 `json:"nat_keepalives"`    // NAT-T keepalives sent
	MappingChanges  uint64 `json:"mapping_changes"`   // peers followed to a new NAT mapping
	HalfOpen        int    `json:"half_open"`         // responder SAs not yet authenticated, now
	HalfOpenDropped uint64 `json:"half_open_dropped"` // first messages refused by the half-open limits
	HalfOpenEvicted uint64 `json:"half_open_evicted"` // unproven half-open SAs dropped to make room
	AuthFailed      uint64 `json:"auth_failed"`       // phase 1 authentications that failed, by our checks or the peer's notify
	InternalErrors  uint64 `json:"internal_errors"`   // bugs caught (a panic in a handler, an encoding failure)
	Suppressed      uint64 `json:"events_suppressed"` // events of unauthenticated input over the rate limit
	DPDBadSequence  uint64 `json:"dpd_bad_sequence"`  // R-U-THERE(-ACK)s ignored for their sequence number (RFC 3706 §7)
	InvalidSPISent  uint64 `json:"invalid_spi_sent"`  // INVALID-SPI notifications for ESP/AH with an SPI we do not hold

	UnprotectedIgnored uint64 `json:"unprotected_ignored"` // Deletes and notifications in the clear that were not believed
	InvalidCookies     uint64 `json:"invalid_cookies"`     // messages with a zero initiator cookie, refused (INVALID-COOKIE)
	FaultsInjected     uint64 `json:"faults_injected"`     // faults of the lab that acted on our messages (fault.go)
}

// conn is a configured connection and what the engine holds for it.
type conn struct {
	cfg      Connection
	localID  Identity
	remoteID *Identity // nil: any
	leases   leasePool // the addresses Mode Config lent (a gateway's)

	sas      []*isakmpSA // every ISAKMP SA of the connection, negotiating or up
	children []*childSA  // its IPsec SA pairs, whichever ISAKMP SA negotiated them
	pending  []*childRequest
	policies []esp.Policy // installed in the data plane: one per pair of selectors in use
	trap     bool         // keep the policy of the configured selectors without SAs
}

// checkRemoteID compares a peer's phase 1 identity with the configured one.
func (c *conn) checkRemoteID(id *isakmp.ID) error {
	if c.remoteID == nil || c.remoteID.Equal(identityOf(id)) {
		return nil
	}
	return fmt.Errorf("the peer's identity %s is not the configured remote id %s", id, c.remoteID)
}

// Engine is one node's IKEv1 implementation. Create it with New, feed it
// datagrams with Receive, and wire the data plane's hooks to HandleAcquire and
// HandleExpire.
type Engine struct {
	mu     sync.Mutex
	cfg    Config
	tuning Tuning
	pub    events.Publisher
	clock  Clock
	rand   io.Reader
	tr     Transport
	dp     DataPlane

	conns  []*conn
	byName map[string]*conn

	sas            map[saKey]*isakmpSA         // by both cookies
	initiating     map[isakmp.Cookie]*isakmpSA // our SAs waiting for the responder's cookie
	firstMessages  map[halfOpenKey]*isakmpSA   // responder SAs by the first message's cookie and sender
	halfOpen       []*isakmpSA                 // responder SAs not yet authenticated, oldest first
	halfOpenByAddr map[netip.Addr]int

	stats   Stats
	limiter eventLimiter // events caused by unauthenticated input
	dh      dhPool       // keys drawn ahead (with crypto/rand)
	closed  bool
	sealing bool // a connection authenticates with public-key encryption

	invalidSPISent map[netip.Addr]time.Time // when each peer was last told INVALID-SPI

	faults *faultInjector // nil unless the lab armed a fault: the send path checks only that
}

// New validates the configuration and returns an engine. Nothing is sent
// until Start.
func New(cfg Config) (*Engine, error) {
	if cfg.Transport == nil || cfg.DataPlane == nil {
		return nil, errors.New("ike: the engine needs a transport and a data plane")
	}
	e := &Engine{
		cfg: cfg, tuning: cfg.Tuning.withDefaults(), pub: events.Publisher{Bus: cfg.Events, Node: cfg.Node},
		clock: cfg.Clock, rand: cfg.Rand, tr: cfg.Transport, dp: cfg.DataPlane, byName: map[string]*conn{},
		sas: map[saKey]*isakmpSA{}, initiating: map[isakmp.Cookie]*isakmpSA{},
		firstMessages: map[halfOpenKey]*isakmpSA{}, halfOpenByAddr: map[netip.Addr]int{},
	}
	if e.clock == nil {
		e.clock = SystemClock{}
	}
	if e.rand == nil {
		e.rand = rand.Reader
	}
	for _, c := range cfg.Connections {
		if err := c.Validate(); err != nil {
			return nil, err
		}
		if e.byName[c.Name] != nil {
			return nil, fmt.Errorf("connection %q is defined twice", c.Name)
		}
		c = c.withDefaults()
		local, _ := ParseIdentity(c.LocalID, c.Local)
		cn := &conn{cfg: c, localID: local}
		if c.RemoteID != "" {
			id, _ := ParseIdentity(c.RemoteID, netip.Addr{})
			cn.remoteID = &id
		}
		e.conns = append(e.conns, cn)
		e.byName[c.Name] = cn
		e.sealing = e.sealing || c.Auth.Method.encrypts()
	}
	return e, nil
}

// Start installs the policies of trap connections and initiates those that
// start at once.
func (e *Engine) Start() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	var errs []error
	for _, c := range e.conns {
		switch c.cfg.Child.Start {
		case StartTrap:
			if err := e.trapPolicy(c); err != nil {
				errs = append(errs, fmt.Errorf("connection %s: trap policy: %w", c.cfg.Name, err))
			}
		case StartStart:
			e.publishInitiate(c, "start action")
			e.requestChild(c.newRequest(c.cfg.Remote, "start action", nil))
		}
	}
	return errors.Join(errs...)
}

// Initiate negotiates the connection's IPsec SAs (phase 1 first if needed)
// and returns once they are installed, the negotiation failed, or ctx ended.
// A connection whose SAs are up already returns at once.
func (e *Engine) Initiate(ctx context.Context, name string) error {
	e.mu.Lock()
	c := e.byName[name]
	if c == nil || e.closed {
		e.mu.Unlock()
		return e.noConnection(name)
	}
	for _, ch := range c.children {
		if ch.state == childInstalled || ch.state == childRekeying {
			e.mu.Unlock()
			return nil
		}
	}
	var r *childRequest
	for _, p := range c.pending {
		if p.rekeyOf == nil {
			r = p
		}
	}
	e.publishInitiate(c, "by hand")
	if r == nil {
		peer := c.cfg.Remote
		if !peer.IsValid() {
			for _, sa := range c.sas {
				peer = sa.remote.Addr()
			}
		}
		r = c.newRequest(peer, "by hand", nil)
		e.requestChild(r)
	}
	done := r.wait()
	e.mu.Unlock()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		e.mu.Lock()
		why := e.stalled(c)
		e.mu.Unlock()
		return fmt.Errorf("connection %s did not come up in time (%w): %s", name, ctx.Err(), why)
	}
}

// stalled says where the negotiations of c stand, for a person waiting on
// them: what was sent last, how often, and what came back.
func (e *Engine) stalled(c *conn) string {
	var parts []string
	for _, sa := range c.sas {
		if sa.dead {
			continue
		}
		if sa.state != established {
			parts = append(parts, describeStall(string(sa.state), sa.p1Flight.tries, sa))
			continue
		}
		for _, qm := range sa.quick {
			if qm.conn == c && qm.state == qmI1Sent {
				parts = append(parts, describeStall("Quick Mode 1/3 sent", qm.ex.tries, sa))
			}
		}
	}
	if len(parts) == 0 {
		return "no negotiation is under way"
	}
	return strings.Join(parts, "; ")
}

func describeStall(state string, retransmits int, sa *isakmpSA) string {
	s := fmt.Sprintf("%s to %s", state, sa.remote)
	if retransmits > 0 {
		s += fmt.Sprintf(" (and sent again %d times)", retransmits)
	}
	if sa.lastIn == "" {
		s += ", and nothing came back"
	} else {
		s += fmt.Sprintf(", no answer; the last message from the peer was %s", sa.lastIn)
	}
	if sa.sendErr != nil {
		s += fmt.Sprintf("; sending failed: %v", sa.sendErr)
	}
	return s
}

// Terminate deletes the connection's SAs, telling the peer with Delete
// payloads: the IPsec SAs first, then the ISAKMP SA. A trap policy stays.
func (e *Engine) Terminate(ctx context.Context, name string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	c := e.byName[name]
	if c == nil || e.closed {
		return e.noConnection(name)
	}
	e.terminate(c, "terminated by hand")
	return ctx.Err()
}

func (e *Engine) terminate(c *conn, reason string) {
	for _, r := range slices.Clone(c.pending) {
		r.finish(fmt.Errorf("connection %s: %s", c.cfg.Name, reason))
	}
	for _, ch := range slices.Clone(c.children) {
		e.deleteChild(ch, true, reason)
	}
	for _, sa := range slices.Clone(c.sas) {
		e.deleteISAKMPSA(sa, true, reason)
	}
	e.dropIdlePolicies(c)
}

func (e *Engine) noConnection(name string) error {
	if e.closed {
		return errors.New("ike: the engine is closed")
	}
	names := make([]string, len(e.conns))
	for i, c := range e.conns {
		names[i] = c.cfg.Name
	}
	return fmt.Errorf("no connection %q (have %v)", name, names)
}

// Close terminates every connection, telling the peers, and stops the engine.
func (e *Engine) Close() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return
	}
	for _, c := range e.conns {
		c.trap = false
		e.terminate(c, "the node shuts down")
	}
	e.closed = true
	e.dh.close()
}

// Abandon stops the engine at once, sending nothing and leaving the data
// plane as it is: what a crash looks like from outside.
func (e *Engine) Abandon() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return
	}
	e.closed = true
	e.dh.close()
	for _, c := range e.conns {
		for _, r := range slices.Clone(c.pending) {
			r.finish(errors.New("ike: the engine stopped"))
		}
		for _, ch := range c.children {
			for _, t := range []*timer{ch.rekeyTimer, ch.expireTimer, ch.retireTimer} {
				t.stop()
			}
		}
		for _, sa := range slices.Clone(c.sas) {
			sa.destroy()
		}
	}
}

// HandleAcquire starts a negotiation for a packet that matched a policy with
// no SA (esp.Hooks.Acquire). The data plane already published the acquire.
// A packet held by the policy of a Quick Mode whose outbound SA is not in yet
// waits without an acquire (the policy is marked as negotiated); one held by
// another policy of the connection meanwhile waits too: a second negotiation
// would only race the first.
func (e *Engine) HandleAcquire(a esp.AcquireRequest) {
	e.mu.Lock()
	defer e.mu.Unlock()
	c := e.byName[a.Conn]
	// A responder's policy is a trap only after DPD's hold action, which,
	// as strongSwan's trap, negotiates from whichever side has traffic.
	if e.closed || c == nil || (c.cfg.Role == Responder && !c.trap) || len(c.pending) > 0 || len(e.awaitingOutbound(c)) > 0 {
		return
	}
	for _, ch := range c.children {
		if ch.state != childDeleted {
			return
		}
	}
	e.requestChild(c.newRequest(c.cfg.Remote, "acquire", nil))
}

// Stats returns the engine's counters.
func (e *Engine) Stats() Stats {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.stats
	s.HalfOpen = len(e.halfOpen)
	return s
}

// Receive handles one datagram. It never panics on bad input: what cannot be
// decoded or authenticated is counted and reported (events.IKEMalformed),
// and the engine carries on with other peers.
func (e *Engine) Receive(p Packet) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return
	}
	defer func() {
		if r := recover(); r != nil {
			e.internalError(fmt.Errorf("panic while handling a message from %s: %v", p.Remote, r))
		}
	}()
	e.stats.Received++
	m, err := decode(p.Data, e.sealing)
	if err != nil {
		e.malformed(p, err, nil)
		return
	}
	h := m.Header
	if h.InitiatorCookie == (isakmp.Cookie{}) {
		// RFC 2408 §2.5.3 makes the initiator's cookie unique and never
		// zero: no SA can be named by it, and answering would only help a
		// forger probe us.
		e.stats.InvalidCookies++
		e.malformed(p, &isakmp.Error{Notify: isakmp.NotifyInvalidCookie, Offset: 0, Reason: "the initiator cookie is zero"}, nil)
		return
	}
	if h.ResponderCookie == (isakmp.Cookie{}) {
		switch h.Exchange {
		case isakmp.ExchangeMainMode, isakmp.ExchangeAggressive:
			if sa := e.firstMessages[halfOpenKey{h.InitiatorCookie, p.Remote}]; sa != nil {
				e.receivePhase1(sa, p, m)
				return
			}
			e.respondPhase1(p, m)
			return
		case isakmp.ExchangeInformational:
			if sa := e.initiating[h.InitiatorCookie]; sa != nil && sa.remote.Addr() == p.Remote.Addr() {
				e.receiveInformational(sa, p, m)
				return
			}
		}
		e.unknownSA(p, m)
		return
	}
	sa := e.sas[saKey{h.InitiatorCookie, h.ResponderCookie}]
	if sa == nil {
		// The responder's answer to our first message names its cookie.
		if w := e.initiating[h.InitiatorCookie]; w != nil && w.remote.Addr() == p.Remote.Addr() && h.Exchange != isakmp.ExchangeQuickMode {
			w.setResponderCookie(h.ResponderCookie)
			sa = w
		}
	}
	if sa == nil {
		e.unknownSA(p, m)
		return
	}
	switch h.Exchange {
	case isakmp.ExchangeMainMode, isakmp.ExchangeAggressive:
		e.receivePhase1(sa, p, m)
	case isakmp.ExchangeQuickMode:
		e.receiveQuickMode(sa, p, m)
	case isakmp.ExchangeInformational:
		e.receiveInformational(sa, p, m)
	case isakmp.ExchangeTransaction:
		e.receiveTransaction(sa, p, m)
	default:
		e.malformedIn(sa, p, fmt.Sprintf("unsupported exchange type %s", h.Exchange))
		if sa.state == established {
			e.notifyPeer(sa, isakmpNotify(sa, isakmp.NotifyUnsupportedExchangeType))
		}
	}
}

// decode decodes a datagram. With sealing set (a connection authenticates
// with public-key encryption), an ID payload may have a body of
// ciphertext, which can read as an address ID of the wrong length: such a
// message is decoded again with its ID bodies left to the method, which
// parses them once decrypted.
func decode(b []byte, sealing bool) (*isakmp.Message, error) {
	m, err := isakmp.Decode(b)
	if err != nil && sealing && isakmp.NotifyFor(err) == isakmp.NotifyInvalidIDInformation {
		return isakmp.DecodeSealed(b)
	}
	return m, err
}

// receivePhase1 hands a Main or Aggressive Mode message to the step the SA
// waits for, from its mode's state table.
func (e *Engine) receivePhase1(sa *isakmpSA, p Packet, m *isakmp.Message) {
	want := isakmp.ExchangeMainMode
	if sa.mode == AggressiveMode {
		want = isakmp.ExchangeAggressive
	}
	if m.Header.Exchange != want || m.Header.MessageID != 0 {
		e.malformedIn(sa, p, fmt.Sprintf("%s message (ID %d) for a %s SA", m.Header.Exchange.Abbrev(), m.Header.MessageID, sa.phaseName()))
		return
	}
	if e.duplicate(sa, &sa.p1Flight, p.Data) {
		return
	}
	step := sa.steps()[sa.state]
	if step == nil {
		e.malformedIn(sa, p, "a phase 1 message after phase 1 completed")
		return
	}
	step(e, sa, p, m)
}

// respondPhase1 answers a first message: MM1 or AM1.
func (e *Engine) respondPhase1(p Packet, m *isakmp.Message) {
	if m.Header.MessageID != 0 || m.Header.Flags&isakmp.FlagEncryption != 0 {
		e.malformed(p, errors.New("a first phase 1 message must be in the clear, with message ID 0"), nil)
		return
	}
	if m.Header.Exchange == isakmp.ExchangeAggressive {
		e.respondAggressiveMode(p, m)
		return
	}
	e.respondMainMode(p, m)
}

// selectResponderConn finds the connection for a first message: one that
// accepts the peer's address, speaks the mode, expects the identity
// (Aggressive Mode), and has a suite in common with the offer. The address
// ranks first, the proposals second: a connection for exactly this peer
// before one that expects it there (ExpectedRemote), before one that
// accepts anyone, before one that expects someone else there; in Main Mode
// the key must follow the address, since the identity comes encrypted with
// it (RFC 2409 §5.4). Failing all, it answers NO-PROPOSAL-CHOSEN.
func (e *Engine) selectResponderConn(p Packet, m *isakmp.Message, offer *isakmp.SA, mode Mode, idii *isakmp.ID) (_ *conn, _ phase1Choice, alike []*conn, ok bool) {
	var byRank [4][]*conn
	local, from := p.Local.Addr(), p.Remote.Addr()
	for _, c := range e.conns {
		switch {
		case c.cfg.Mode != mode:
		case local.IsValid() && !local.IsUnspecified() && c.cfg.Local != local:
		case c.cfg.Remote.IsValid() && c.cfg.Remote != from:
		case idii != nil && c.remoteID != nil && !c.cfg.Auth.Method.encrypts() && !c.remoteID.Equal(identityOf(idii)):
			// (With public-key encryption the ID is ciphertext: it is
			// checked once decrypted, and proved.)
		case c.cfg.Remote.IsValid():
			byRank[0] = append(byRank[0], c)
		case c.cfg.ExpectedRemote == from:
			byRank[1] = append(byRank[1], c)
		case !c.cfg.ExpectedRemote.IsValid():
			byRank[2] = append(byRank[2], c)
		default:
			byRank[3] = append(byRank[3], c)
		}
	}
	cands := slices.Concat(byRank[:]...)
	if len(cands) == 0 {
		e.publishLimited(events.Event{
			Kind: events.Phase1Failed, Step: events.StepPhase1, Level: events.Warn,
			Message: fmt.Sprintf("%s from %s matches no connection of this node", phaseName(mode), p.Remote),
			Explain: "A responder picks its connection (and pre-shared key) by the initiator's address, and in Aggressive Mode by its identity; nothing configured here matches.",
			Fields:  map[string]any{"peer": p.Remote.String(), "reason": "no matching connection"},
		})
		e.notifyStranger(p, m, isakmp.NotifyNoProposalChosen)
		return nil, phase1Choice{}, nil, false
	}
	var offered offerSummary
	var matches []*conn
	choices := map[*conn]phase1Choice{}
	for _, c := range cands {
		choice, o, ok := selectPhase1(offer, c.cfg.Proposals, authNumber(&c.cfg))
		if ok {
			matches = append(matches, c)
			choices[c] = choice
		} else if offered.total == 0 {
			offered = o
		}
	}
	if len(matches) == 0 {
		e.publishNoProposal(cands[0], p.Remote, events.Sent, offered, suiteNames(cands[0].cfg.Proposals), events.StepPhase1)
		e.notifyStranger(p, m, isakmp.NotifyNoProposalChosen)
		return nil, phase1Choice{}, nil, false
	}
	// Connections with the same peer, key and phase 1 settings cannot be
	// told apart before a Quick Mode names its selectors. Each connection
	// keeps an ISAKMP SA of its own, so the guess goes to one that has none
	// with this peer yet; the first Quick Mode settles it (settleConnection).
	same := []*conn{matches[0]}
	for _, c := range matches[1:] {
		if samePhase1(c, matches[0]) {
			same = append(same, c)
		}
	}
	pick := same[0]
	for _, c := range same {
		if !e.hasISAKMPSA(c, p.Remote.Addr()) {
			pick = c
			break
		}
	}
	alike = slices.DeleteFunc(same, func(c *conn) bool { return c == pick })
	if others := len(byRank[2]) + len(byRank[3]); others > 0 && mode == MainMode && slices.Contains(byRank[1], pick) {
		e.publishAddressChoice(pick, p.Remote, others)
	}
	return pick, choices[pick], alike, true
}

// samePhase1 reports whether a responder could tell the two connections
// apart in phase 1, or use either's settings for the ISAKMP SA.
func samePhase1(a, b *conn) bool {
	x, y := a.cfg, b.cfg
	return x.Mode == y.Mode && x.Local == y.Local && x.Remote == y.Remote && x.ExpectedRemote == y.ExpectedRemote && x.PSK == y.PSK &&
		x.LocalID == y.LocalID && x.RemoteID == y.RemoteID && slices.Equal(x.Proposals, y.Proposals) &&
		x.Lifetime == y.Lifetime && x.DPD == y.DPD && x.ForceEncap == y.ForceEncap && x.NoNATT == y.NoNATT &&
		x.Retransmit == y.Retransmit
}

// hasISAKMPSA reports whether c has an ISAKMP SA, up or negotiating, with
// peer.
func (e *Engine) hasISAKMPSA(c *conn, peer netip.Addr) bool {
	for _, sa := range c.sas {
		if !sa.dead && sa.remote.Addr() == peer {
			return true
		}
	}
	return false
}

// notifyStranger answers a first message we will not take up with an
// unprotected notification, and keeps no state.
func (e *Engine) notifyStranger(p Packet, m *isakmp.Message, t isakmp.NotifyType) {
	r := e.cookie()
	n := &isakmp.Notify{DOI: isakmp.DOIIPsec, Protocol: isakmp.ProtocolISAKMP, NotifyType: t, SPI: isakmp.ISAKMPSPI(m.Header.InitiatorCookie, r)}
	reply := &isakmp.Message{Header: isakmp.Header{InitiatorCookie: m.Header.InitiatorCookie, ResponderCookie: r, Exchange: isakmp.ExchangeInformational, MessageID: e.messageID()}, Payloads: []isakmp.Payload{n}}
	b, err := reply.Encode()
	if err != nil {
		return
	}
	e.transmit(p.Local, p.Remote, b, t.String(), "")
}

// takeFirstMessage picks the connection for a first message (MM1, AM1) and,
// if the half-open limits admit its sender, creates the responder's SA for
// it, with the suite chosen and the offer's body kept for HASH_I and HASH_R.
func (e *Engine) takeFirstMessage(p Packet, m *isakmp.Message, offer *isakmp.SA, mode Mode, idii *isakmp.ID) *isakmpSA {
	c, choice, alike, ok := e.selectResponderConn(p, m, offer, mode, idii)
	if !ok || !e.admitHalfOpen(p.Remote) {
		return nil
	}
	sa := e.newResponderSA(c, mode, p, m)
	sa.alike, sa.choice = alike, choice
	sa.p1.saiB = offer.Body()
	return sa
}

// newResponderSA creates the responder's SA for a first message.
func (e *Engine) newResponderSA(c *conn, mode Mode, p Packet, m *isakmp.Message) *isakmpSA {
	local := p.Local
	if !local.Addr().IsValid() || local.Addr().IsUnspecified() {
		local = netip.AddrPortFrom(c.cfg.Local, p.Local.Port())
	}
	sa := e.newISAKMPSA(c, Responder, mode, local, p.Remote)
	sa.ckyI = m.Header.InitiatorCookie
	sa.setResponderCookie(e.cookie())
	sa.first = halfOpenKey{sa.ckyI, p.Remote}
	e.firstMessages[sa.first] = sa
	e.enterHalfOpen(sa)
	return sa
}

// requestChild sends a child request on its way: Quick Mode at once over an
// established ISAKMP SA with the peer, after the phase 1 already running, or
// after a new phase 1.
func (e *Engine) requestChild(r *childRequest) {
	c := r.conn
	if sa := e.liveSA(c, r.peer); sa != nil {
		if !sa.ra.done() { // XAUTH or Mode Config still running
			sa.waitQM = append(sa.waitQM, r)
			return
		}
		e.startQuickMode(sa, r)
		return
	}
	for _, sa := range c.sas {
		if !sa.dead && sa.role == Initiator && sa.state != established && (!r.peer.IsValid() || sa.remote.Addr() == r.peer) {
			sa.waitQM = append(sa.waitQM, r)
			return
		}
	}
	if !r.peer.IsValid() {
		e.requestFailed(r, nil, "no peer address to negotiate with (the connection accepts any peer)")
		return
	}
	sa := e.initiatePhase1(c, r.peer)
	if sa.dead {
		e.requestFailed(r, nil, "phase 1 could not start")
		return
	}
	sa.waitQM = append(sa.waitQM, r)
}

// initiatePhase1 starts Main or Aggressive Mode with peer.
func (e *Engine) initiatePhase1(c *conn, peer netip.Addr) *isakmpSA {
	if c.cfg.Mode == AggressiveMode {
		return e.startAggressiveMode(c, peer)
	}
	return e.startMainMode(c, peer)
}

// liveSA returns the connection's newest established ISAKMP SA with the
// peer. An invalid peer matches any.
func (e *Engine) liveSA(c *conn, peer netip.Addr) *isakmpSA {
	for i := len(c.sas) - 1; i >= 0; i-- {
		sa := c.sas[i]
		if !sa.dead && sa.state == established && (!peer.IsValid() || sa.remote.Addr() == peer) {
			return sa
		}
	}
	return nil
}

// reestablish replaces an ISAKMP SA near the end of its life with a new
// phase 1; the new SA takes over its IPsec SAs and then deletes it.
func (e *Engine) reestablish(old *isakmpSA) {
	if old.dead || old.state != established {
		return
	}
	e.pub.Publish(events.Event{
		Kind: events.Rekey, Step: events.StepPhase1, Conn: old.conn.cfg.Name,
		Message: fmt.Sprintf("re-establishing the ISAKMP SA with %s before it expires", old.peerName()),
		Explain: "IKEv1 cannot rekey an ISAKMP SA in place: a new phase 1 runs, the IPsec SAs move under it, and the old one is deleted.",
		SA:      old.info(),
	})
	sa := e.initiatePhase1(old.conn, old.remote.Addr())
	sa.replaces = old
}

// deleteISAKMPSA ends an ISAKMP SA, telling the peer if asked and possible.
func (e *Engine) deleteISAKMPSA(sa *isakmpSA, send bool, reason string) {
	if sa.dead {
		return
	}
	if sa.state != established {
		e.phase1Failed(sa, reason, nil)
		return
	}
	e.publishISAKMPDeleted(sa, reason)
	if send {
		e.sendDelete(sa, &isakmp.Delete{DOI: isakmp.DOIIPsec, Protocol: isakmp.ProtocolISAKMP, SPISize: 16, SPIs: [][]byte{isakmp.ISAKMPSPI(sa.ckyI, sa.ckyR)}})
	}
	e.removeISAKMPSA(sa)
}

// removeISAKMPSA forgets an ISAKMP SA. Its IPsec SAs move to another
// established ISAKMP SA with the peer if there is one; otherwise they live on
// until their own lifetime or a Delete (in IKEv1 they do not depend on it).
func (e *Engine) removeISAKMPSA(sa *isakmpSA) {
	sa.destroy()
	for _, ch := range e.peerChildren(sa) {
		if ch.owner != sa {
			continue
		}
		if next := e.managingSA(ch); next != nil {
			e.reown(ch, next)
		}
	}
}

// random fills b from the engine's randomness.
func (e *Engine) random(b []byte) {
	if _, err := io.ReadFull(e.rand, b); err != nil {
		panic(fmt.Sprintf("ike: reading randomness: %v", err))
	}
}

// nonce is a fresh 32-byte nonce (RFC 2409 §5: 8 to 256 bytes).
func (e *Engine) nonce() []byte {
	b := make([]byte, 32)
	e.random(b)
	return b
}

// messageID is a random nonzero message ID, for messages outside any SA.
func (e *Engine) messageID() uint32 {
	var b [4]byte
	for {
		e.random(b[:])
		if mid := be32(b[:]); mid != 0 {
			return mid
		}
	}
}

// newDH draws a Diffie-Hellman key pair in group g.
func (e *Engine) newDH(g isakmp.GroupDescription) (*keymat.PrivateKey, error) {
	group, err := keymat.LookupGroup(g)
	if err != nil {
		return nil, err
	}
	if e.cfg.Rand == nil {
		return e.dh.take(group)
	}
	return group.GenerateKey(e.rand)
}

func phaseName(m Mode) string {
	if m == AggressiveMode {
		return "Aggressive Mode"
	}
	return "Main Mode"
}

package ike

import (
	"crypto/hmac"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
	"math/bits"
	"net/netip"
	"strings"

	"github.com/ipseclab/ipseclab/events"
	"github.com/ipseclab/ipseclab/ipsec/isakmp"
)

// Phase 1.5: XAUTH (draft-ietf-ipsec-isakmp-xauth-06) and Mode Config
// (draft-dukes-ike-mode-cfg-02), in Transaction exchanges (type 6) under the
// ISAKMP SA, after phase 1 and before Quick Mode:
//
//	Gateway                                         Client
//	HDR*, HASH, ATTR(REQUEST: TYPE, NAME, PASSWORD) -->              XAUTH 1/4
//	                          <--  HDR*, HASH, ATTR(REPLY: NAME, PASSWORD)   2/4
//	HDR*, HASH, ATTR(SET: STATUS)                   -->                     3/4
//	                          <--  HDR*, HASH, ATTR(ACK: STATUS)            4/4
//	Mode Config, pull (the client asks):
//	                          <--  HDR*, HASH, ATTR(REQUEST: IP4_ADDRESS, ...) 1/2
//	HDR*, HASH, ATTR(REPLY: IP4_ADDRESS=10.9.0.2, ...)  -->                    2/2
//	Mode Config, push (the gateway sets):
//	HDR*, HASH, ATTR(SET: IP4_ADDRESS=10.9.0.2, ...)    -->                    1/2
//	                          <--  HDR*, HASH, ATTR(ACK: IP4_ADDRESS)          2/2
//
// Each pair has a message ID of its own, and HASH = prf(SKEYID_a, M-ID |
// ATTR), as Informational's HASH(1). The gateway and the client are told
// apart by their configuration (the gateway has the users and the pool),
// not by who started phase 1. A wrong password is asked for again, three
// times in all; then the gateway sends STATUS=0 and deletes the ISAKMP SA.
// The client starts Quick Mode once it is done, with its new address as its
// side of the traffic selectors (selectors in quick_mode.go).

// maxXAuthTries is how many passwords a client may try on one ISAKMP SA.
const maxXAuthTries = 3

// remoteAccess is where an ISAKMP SA stands in phase 1.5.
type remoteAccess struct {
	gateway   bool
	xauthDone bool
	cfgDone   bool
	tries     int    // passwords tried (gateway)
	user      string // who logged in
	ours      map[uint32]*transaction
	answered  map[uint32][]byte // our replies, by the message ID they answer
}

// transaction is one of our requests (REQUEST or SET) waiting for its
// answer.
type transaction struct {
	ex  exchange
	cfg bool // Mode Config, not XAUTH
}

func (ra *remoteAccess) done() bool { return ra == nil || (ra.xauthDone && ra.cfgDone) }

var (
	xauthExplain = [...]string{
		1: "Phase 1.5, XAUTH 1/4: the gateway asks the client for a user name and password (XAUTH_TYPE generic): the group's pre-shared key proved the device, XAUTH proves the person",
		2: "Phase 1.5, XAUTH 2/4: the client answers with its user name and password, under the ISAKMP SA's encryption",
		3: "Phase 1.5, XAUTH 3/4: the gateway tells the result (XAUTH_STATUS: 1 accepted, 0 refused)",
		4: "Phase 1.5, XAUTH 4/4: the client acknowledges the result",
	}
	modeCfgExplain = [...]string{
		1: "Phase 1.5, Mode Config 1/2: the client asks for its configuration: an address (INTERNAL_IP4_ADDRESS), netmask, DNS servers, the networks to tunnel (UNITY_SPLIT_INCLUDE)",
		2: "Phase 1.5, Mode Config 2/2: the gateway lends an address from its pool, with DNS servers and the networks to tunnel; the client puts the address on itself and uses it as its side of Quick Mode's selectors",
	}
	modeCfgPushExplain = [...]string{
		1: "Phase 1.5, Mode Config 1/2 (push): the gateway sets the client's configuration unasked: an address from its pool, DNS servers, the networks to tunnel",
		2: "Phase 1.5, Mode Config 2/2 (push): the client acknowledges the address it was given",
	}
)

func xauthInfo(n int) msgInfo {
	return msgInfo{exchange: "xauth", num: n, total: 4, step: events.StepPhase1, explain: xauthExplain[n]}
}

func modeCfgInfo(n int, push bool) msgInfo {
	ex := modeCfgExplain[n]
	if push {
		ex = modeCfgPushExplain[n]
	}
	return msgInfo{exchange: "modecfg", num: n, total: 2, step: events.StepPhase1, explain: ex}
}

// isGateway reports whether a connection lends addresses or checks users:
// the side of phase 1.5 that asks the questions.
func (c *conn) isGateway() bool {
	return (c.cfg.XAuth != nil && len(c.cfg.XAuth.Users) > 0) || (c.cfg.ModeConfig != nil && c.cfg.ModeConfig.Pool.IsValid())
}

// remoteAccessOf reports whether a connection has a phase 1.5.
func remoteAccessOf(c *conn) bool { return c.cfg.XAuth != nil || c.cfg.ModeConfig != nil }

// startRemoteAccess begins phase 1.5 on an ISAKMP SA just established: the
// gateway asks for the password (or sets the configuration); a client
// without XAUTH asks for its configuration.
func (e *Engine) startRemoteAccess(sa *isakmpSA) {
	c := sa.conn
	ra := &remoteAccess{gateway: c.isGateway(), ours: map[uint32]*transaction{}, answered: map[uint32][]byte{}}
	ra.xauthDone = c.cfg.XAuth == nil
	ra.cfgDone = c.cfg.ModeConfig == nil
	sa.ra = ra
	switch {
	case ra.gateway && !ra.xauthDone:
		e.askPassword(sa)
	case ra.gateway && !ra.cfgDone && c.cfg.ModeConfig.Push:
		e.pushConfig(sa)
	case !ra.gateway && ra.xauthDone && !ra.cfgDone:
		e.requestConfig(sa)
	case ra.done():
		e.remoteAccessDone(sa)
	}
}

// sendTransaction sends one of our REQUESTs or SETs and waits for its
// answer, retransmitting.
func (e *Engine) sendTransaction(sa *isakmpSA, attrs *isakmp.ConfigAttributes, cfg bool, info msgInfo) {
	mid := sa.messageID()
	sa.remember(mid) // message IDs are not reused within the SA
	attrs.Identifier = uint16(mid)
	t := &transaction{cfg: cfg}
	sa.ra.ours[mid] = t
	sa.sendRequest(&t.ex, isakmp.ExchangeTransaction, mid, sa.withHash1(mid, []isakmp.Payload{attrs}), true, info, func() {
		e.remoteAccessFailed(sa, fmt.Sprintf("no answer to %s from %s", info.what(), sa.remote))
	})
}

// answerTransaction sends our REPLY or ACK to the peer's message mid.
func (e *Engine) answerTransaction(sa *isakmpSA, p Packet, mid uint32, attrs *isakmp.ConfigAttributes, info msgInfo) {
	b := sa.send(isakmp.ExchangeTransaction, mid, sa.withHash1(mid, []isakmp.Payload{attrs}), true, info)
	sa.ra.answered[mid] = b
	sa.ivs.Forget(mid)
}

// receiveTransaction authenticates a Transaction message and hands it to
// XAUTH or Mode Config.
func (e *Engine) receiveTransaction(sa *isakmpSA, p Packet, m *isakmp.Message) {
	mid := m.Header.MessageID
	if sa.ra != nil {
		if reply, ok := sa.ra.answered[mid]; ok {
			// A repeat of a message we answered: the peer lost our answer.
			e.stats.Duplicates++
			if reply != nil {
				sa.transmit(reply, msgInfo{exchange: "transaction"})
			}
			return
		}
	}
	if sa.state != established || sa.ra == nil || mid == 0 || m.Header.Flags&isakmp.FlagEncryption == 0 {
		e.malformedIn(sa, p, "a Transaction exchange (XAUTH, Mode Config) outside phase 1.5: before phase 1 is done, unencrypted, or on a connection without remote access")
		return
	}
	if err := sa.decrypt(m); err != nil {
		e.malformedIn(sa, p, "Transaction message does not decrypt: "+err.Error())
		return
	}
	hash, rest, ok := leadingHash(m)
	if !ok || !hmac.Equal(hash.Data, sa.keys.Hash1(mid, rest)) {
		e.malformedIn(sa, p, "Transaction message fails its HASH")
		return
	}
	attrs := isakmp.First[*isakmp.ConfigAttributes](m)
	if attrs == nil {
		e.malformedIn(sa, p, "Transaction message without an attribute payload")
		return
	}
	sa.ivs.Update(mid, m.Ciphertext)
	sa.dpd.heard(e.clock.Now())
	ours := sa.ra.ours[mid]
	if ours != nil {
		ours.ex.stopRetransmit()
		delete(sa.ra.ours, mid)
		sa.ivs.Forget(mid)
	}
	isXAuth := hasXAuthAttributes(attrs)
	switch {
	case ours != nil && !ours.cfg && attrs.CfgType == isakmp.CfgReply && sa.ra.gateway:
		e.publishMessage(sa, events.Received, m, len(p.Data), xauthInfo(2))
		e.checkPassword(sa, attrs)
	case ours != nil && !ours.cfg && attrs.CfgType == isakmp.CfgAck && sa.ra.gateway:
		e.publishMessage(sa, events.Received, m, len(p.Data), xauthInfo(4))
		e.xauthAcknowledged(sa)
	case ours != nil && ours.cfg && attrs.CfgType == isakmp.CfgReply && !sa.ra.gateway:
		e.publishMessage(sa, events.Received, m, len(p.Data), modeCfgInfo(2, false))
		e.takeLease(sa, attrs)
	case ours != nil && ours.cfg && attrs.CfgType == isakmp.CfgAck && sa.ra.gateway:
		e.publishMessage(sa, events.Received, m, len(p.Data), modeCfgInfo(2, true))
		e.configDone(sa)
	case ours == nil && attrs.CfgType == isakmp.CfgRequest && isXAuth && !sa.ra.gateway:
		e.publishMessage(sa, events.Received, m, len(p.Data), xauthInfo(1))
		e.givePassword(sa, p, mid, attrs)
	case ours == nil && attrs.CfgType == isakmp.CfgSet && isXAuth && !sa.ra.gateway:
		e.publishMessage(sa, events.Received, m, len(p.Data), xauthInfo(3))
		e.xauthResult(sa, p, mid, attrs)
	case ours == nil && attrs.CfgType == isakmp.CfgRequest && sa.ra.gateway && sa.conn.cfg.ModeConfig != nil:
		e.publishMessage(sa, events.Received, m, len(p.Data), modeCfgInfo(1, false))
		e.answerConfig(sa, p, mid)
	case ours == nil && attrs.CfgType == isakmp.CfgSet && !sa.ra.gateway:
		e.publishMessage(sa, events.Received, m, len(p.Data), modeCfgInfo(1, true))
		e.acceptPushedConfig(sa, p, mid, attrs)
	default:
		e.publishMessage(sa, events.Received, m, len(p.Data), msgInfo{exchange: "transaction", step: events.StepPhase1,
			explain: "a Transaction message this side does not expect in its role"})
		e.malformedIn(sa, p, fmt.Sprintf("unexpected %s in the Transaction exchange", attrs.CfgType))
	}
}

func hasXAuthAttributes(a *isakmp.ConfigAttributes) bool {
	for _, at := range a.Attributes {
		if at.Type >= isakmp.XAuthType && at.Type <= isakmp.XAuthAnswer {
			return true
		}
	}
	return false
}

// askPassword is XAUTH 1/4, on the gateway.
func (e *Engine) askPassword(sa *isakmpSA) {
	e.sendTransaction(sa, &isakmp.ConfigAttributes{CfgType: isakmp.CfgRequest, Attributes: []isakmp.Attribute{
		isakmp.Basic(isakmp.XAuthType, 0), // generic
		isakmp.Variable(isakmp.XAuthUserName, nil),
		isakmp.Variable(isakmp.XAuthUserPassword, nil),
	}}, false, xauthInfo(1))
}

// givePassword is XAUTH 2/4, on the client.
func (e *Engine) givePassword(sa *isakmpSA, p Packet, mid uint32, req *isakmp.ConfigAttributes) {
	x := sa.conn.cfg.XAuth
	if x == nil || x.User == "" {
		e.malformedIn(sa, p, "the gateway asks for an XAUTH password, and this connection has none")
		return
	}
	info := xauthInfo(2)
	info.explain += fmt.Sprintf(" (user %s, password masked)", x.User)
	if e.cfg.PublishKeys {
		// --keys: the lab shows its secrets, this one too.
		info.explain = xauthInfo(2).explain + fmt.Sprintf(" (user %s, password %q, shown because keys are)", x.User, x.Password)
	}
	e.answerTransaction(sa, p, mid, &isakmp.ConfigAttributes{CfgType: isakmp.CfgReply, Identifier: req.Identifier, Attributes: []isakmp.Attribute{
		isakmp.Variable(isakmp.XAuthUserName, []byte(x.User)),
		isakmp.Variable(isakmp.XAuthUserPassword, []byte(x.Password)),
	}}, info)
}

// checkPassword reads XAUTH 2/4 on the gateway and answers with 3/4, or
// asks again.
func (e *Engine) checkPassword(sa *isakmpSA, reply *isakmp.ConfigAttributes) {
	ra := sa.ra
	ra.tries++
	user, pass := attrString(reply, isakmp.XAuthUserName), attrString(reply, isakmp.XAuthUserPassword)
	want, known := sa.conn.cfg.XAuth.Users[user]
	ok := known && subtle.ConstantTimeCompare([]byte(want), []byte(pass)) == 1
	if ok {
		ra.user = user
		e.publishXAuth(sa, user, "accepted", "")
	} else {
		why := "wrong password"
		if !known {
			why = "unknown user"
		}
		if ra.tries < maxXAuthTries {
			e.publishXAuth(sa, user, "refused", fmt.Sprintf("%s (try %d of %d); asking again", why, ra.tries, maxXAuthTries))
			e.askPassword(sa)
			return
		}
		e.publishXAuth(sa, user, "refused", fmt.Sprintf("%s (try %d of %d); giving up", why, ra.tries, maxXAuthTries))
	}
	status := uint16(0)
	if ok {
		status = 1
	}
	info := xauthInfo(3)
	// On refusal ra.user stays empty: the ACK is awaited only to be polite,
	// and the Delete follows it (xauthAcknowledged).
	e.sendTransaction(sa, &isakmp.ConfigAttributes{CfgType: isakmp.CfgSet, Attributes: []isakmp.Attribute{isakmp.Basic(isakmp.XAuthStatus, status)}}, false, info)
}

// xauthResult reads XAUTH 3/4 on the client and acknowledges it.
func (e *Engine) xauthResult(sa *isakmpSA, p Packet, mid uint32, set *isakmp.ConfigAttributes) {
	status, _ := attrUint(set, isakmp.XAuthStatus)
	e.answerTransaction(sa, p, mid, &isakmp.ConfigAttributes{CfgType: isakmp.CfgAck, Identifier: set.Identifier, Attributes: []isakmp.Attribute{isakmp.Basic(isakmp.XAuthStatus, uint16(status))}}, xauthInfo(4))
	user := sa.conn.cfg.XAuth.User
	if status != 1 {
		e.publishXAuth(sa, user, "refused", "the gateway refused our user name and password")
		e.remoteAccessFailed(sa, "XAUTH failed: the gateway refused user "+user)
		return
	}
	sa.ra.xauthDone, sa.ra.user = true, user
	e.publishXAuth(sa, user, "accepted", "")
	if !sa.ra.cfgDone && !sa.conn.cfg.ModeConfig.Push {
		e.requestConfig(sa)
		return
	}
	if sa.ra.done() { // without Mode Config; with push, the gateway's SET comes next
		e.remoteAccessDone(sa)
	}
}

// xauthAcknowledged takes XAUTH 4/4 on the gateway.
func (e *Engine) xauthAcknowledged(sa *isakmpSA) {
	ra := sa.ra
	if ra.user == "" {
		e.deleteISAKMPSA(sa, true, fmt.Sprintf("XAUTH failed %d times", ra.tries))
		return
	}
	ra.xauthDone = true
	if !ra.cfgDone && sa.conn.cfg.ModeConfig.Push {
		e.pushConfig(sa)
		return
	}
	if ra.done() { // with pull, the client's REQUEST comes next
		e.remoteAccessDone(sa)
	}
}

// requestConfig is Mode Config 1/2 (pull), on the client.
func (e *Engine) requestConfig(sa *isakmpSA) {
	e.sendTransaction(sa, &isakmp.ConfigAttributes{CfgType: isakmp.CfgRequest, Attributes: []isakmp.Attribute{
		isakmp.Variable(isakmp.CfgInternalIP4Address, nil),
		isakmp.Variable(isakmp.CfgInternalIP4Netmask, nil),
		isakmp.Variable(isakmp.CfgInternalIP4DNS, nil),
		isakmp.Variable(isakmp.CfgInternalIP4NBNS, nil),
		isakmp.Variable(isakmp.UnitySplitInclude, nil),
		isakmp.Variable(isakmp.UnityBanner, nil),
		isakmp.Variable(isakmp.UnityDefDomain, nil),
	}}, true, modeCfgInfo(1, false))
}

// answerConfig is Mode Config 2/2 (pull), on the gateway.
func (e *Engine) answerConfig(sa *isakmpSA, p Packet, mid uint32) {
	if !sa.ra.xauthDone {
		e.malformedIn(sa, p, "Mode Config request before XAUTH is done")
		return
	}
	attrs := e.lendAddress(sa)
	info := modeCfgInfo(2, false)
	e.answerTransaction(sa, p, mid, &isakmp.ConfigAttributes{CfgType: isakmp.CfgReply, Identifier: uint16(mid), Attributes: attrs}, info)
	e.configDone(sa)
}

// pushConfig is Mode Config 1/2 (push), on the gateway.
func (e *Engine) pushConfig(sa *isakmpSA) {
	e.sendTransaction(sa, &isakmp.ConfigAttributes{CfgType: isakmp.CfgSet, Attributes: e.lendAddress(sa)}, true, modeCfgInfo(1, true))
}

// acceptPushedConfig takes Mode Config 1/2 (push) on the client and
// acknowledges it.
func (e *Engine) acceptPushedConfig(sa *isakmpSA, p Packet, mid uint32, set *isakmp.ConfigAttributes) {
	var ack []isakmp.Attribute
	if a, ok := isakmp.FindAttribute(set.Attributes, isakmp.CfgInternalIP4Address); ok {
		ack = append(ack, isakmp.Variable(a.Type, nil))
	}
	e.answerTransaction(sa, p, mid, &isakmp.ConfigAttributes{CfgType: isakmp.CfgAck, Identifier: set.Identifier, Attributes: ack}, modeCfgInfo(2, true))
	e.takeLease(sa, set)
}

// lendAddress takes an address from the pool for sa's peer and returns the
// attributes that give it, with the DNS servers and split networks; without
// a free address, only those (the client is told by the address missing).
func (e *Engine) lendAddress(sa *isakmpSA) []isakmp.Attribute {
	mc := sa.conn.cfg.ModeConfig
	var attrs []isakmp.Attribute
	addr, ok := sa.conn.leases.lend(sa, mc.Pool, leaseKey(sa))
	if ok {
		sa.lease = &Lease{Addr: netip.PrefixFrom(addr, 32), DNS: mc.DNS, SplitInclude: mc.SplitInclude, Banner: mc.Banner}
		attrs = append(attrs,
			isakmp.Variable(isakmp.CfgInternalIP4Address, addr.AsSlice()),
			isakmp.Variable(isakmp.CfgInternalIP4Netmask, []byte{255, 255, 255, 255}))
	}
	for _, d := range mc.DNS {
		attrs = append(attrs, isakmp.Variable(isakmp.CfgInternalIP4DNS, d.AsSlice()))
	}
	for _, d := range mc.NBNS {
		attrs = append(attrs, isakmp.Variable(isakmp.CfgInternalIP4NBNS, d.AsSlice()))
	}
	if len(mc.SplitInclude) > 0 {
		var b []byte
		for _, n := range mc.SplitInclude {
			// Cisco Unity: address, mask, then 6 bytes of protocol and ports.
			b = append(b, n.Masked().Addr().AsSlice()...)
			b = binary.BigEndian.AppendUint32(b, ^uint32(0)<<(32-n.Bits()))
			b = append(b, make([]byte, 6)...)
		}
		attrs = append(attrs, isakmp.Variable(isakmp.UnitySplitInclude, b))
	}
	if mc.Banner != "" {
		attrs = append(attrs, isakmp.Variable(isakmp.UnityBanner, []byte(mc.Banner)))
	}
	if mc.DefaultDomain != "" {
		attrs = append(attrs, isakmp.Variable(isakmp.UnityDefDomain, []byte(mc.DefaultDomain)))
	}
	e.publishLease(sa, ok)
	return attrs
}

// takeLease reads the configuration the gateway gave the client.
func (e *Engine) takeLease(sa *isakmpSA, a *isakmp.ConfigAttributes) {
	l, ok := parseLease(a)
	if !ok {
		e.publishLease(sa, false)
		e.remoteAccessFailed(sa, "Mode Config gave no address: the gateway's pool may be exhausted")
		return
	}
	sa.lease = &l
	e.publishLease(sa, true)
	if hook := e.cfg.VirtualIP; hook != nil {
		hook(sa.conn.cfg.Name, l)
	}
	e.configDone(sa)
}

// parseLease reads a Mode Config REPLY or SET: ok is false without a usable
// INTERNAL_IP4_ADDRESS. What it cannot read of the rest it leaves out.
func parseLease(a *isakmp.ConfigAttributes) (l Lease, ok bool) {
	addrAttr, found := isakmp.FindAttribute(a.Attributes, isakmp.CfgInternalIP4Address)
	addr, okAddr := netip.AddrFromSlice(addrAttr.Value)
	if !found || !okAddr || !addr.Is4() || addr.IsUnspecified() {
		return l, false
	}
	l.Addr = netip.PrefixFrom(addr, 32)
	for _, at := range a.Attributes {
		switch at.Type {
		case isakmp.CfgInternalIP4DNS:
			if d, ok := netip.AddrFromSlice(at.Value); ok && d.Is4() {
				l.DNS = append(l.DNS, d)
			}
		case isakmp.UnitySplitInclude:
			for b := at.Value; len(b) >= 14; b = b[14:] {
				a, _ := netip.AddrFromSlice(b[:4])
				ones := 32 - bits.TrailingZeros32(binary.BigEndian.Uint32(b[4:8]))
				if p, err := a.Prefix(ones); err == nil {
					l.SplitInclude = append(l.SplitInclude, p)
				}
			}
		case isakmp.UnityBanner:
			l.Banner = strings.ToValidUTF8(string(at.Value), "?")
		}
	}
	return l, true
}

func (e *Engine) configDone(sa *isakmpSA) {
	sa.ra.cfgDone = true
	if sa.ra.done() {
		e.remoteAccessDone(sa)
	}
}

// remoteAccessDone lets the Quick Modes that waited for phase 1.5 start.
func (e *Engine) remoteAccessDone(sa *isakmpSA) {
	waiting := sa.waitQM
	sa.waitQM = nil
	for _, r := range waiting {
		e.startQuickMode(sa, r)
	}
}

// remoteAccessFailed ends an ISAKMP SA whose phase 1.5 failed, and the
// requests that waited on it.
func (e *Engine) remoteAccessFailed(sa *isakmpSA, reason string) {
	waiting := sa.waitQM
	sa.waitQM = nil
	for _, r := range waiting {
		e.requestFailed(r, sa, reason)
	}
	e.deleteISAKMPSA(sa, true, reason)
}

func attrString(a *isakmp.ConfigAttributes, t isakmp.AttributeType) string {
	at, _ := isakmp.FindAttribute(a.Attributes, t)
	return string(at.Value)
}

func attrUint(a *isakmp.ConfigAttributes, t isakmp.AttributeType) (uint64, bool) {
	at, ok := isakmp.FindAttribute(a.Attributes, t)
	if !ok {
		return 0, false
	}
	return at.Uint()
}

// leaseKey names a client for its lease: its XAUTH user when it has one
// (the same user gets the same address back), else its identity.
func leaseKey(sa *isakmpSA) string {
	if sa.ra != nil && sa.ra.user != "" {
		return "user:" + sa.ra.user
	}
	return "id:" + sa.peerID.String()
}

// leasePool is a gateway connection's lent addresses.
type leasePool struct {
	byKey map[string]netip.Addr
	owner map[netip.Addr]*isakmpSA
}

// lend gives key an address of pool: the one it had, if free, or the
// lowest free one; the network and broadcast addresses are never lent.
func (lp *leasePool) lend(sa *isakmpSA, pool netip.Prefix, key string) (netip.Addr, bool) {
	if lp.byKey == nil {
		lp.byKey, lp.owner = map[string]netip.Addr{}, map[netip.Addr]*isakmpSA{}
	}
	if a, ok := lp.byKey[key]; ok {
		if o := lp.owner[a]; o == nil || o == sa || o.dead {
			lp.owner[a] = sa
			return a, true
		}
	}
	pool = pool.Masked()
	last := lastAddr(pool)
	for a := pool.Addr().Next(); a.IsValid() && pool.Contains(a) && a != last; a = a.Next() {
		if o := lp.owner[a]; o == nil || o.dead {
			lp.owner[a], lp.byKey[key] = sa, a
			return a, true
		}
	}
	return netip.Addr{}, false
}

// release returns the address sa held.
func (lp *leasePool) release(sa *isakmpSA) {
	for a, o := range lp.owner {
		if o == sa {
			delete(lp.owner, a)
		}
	}
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().As4()
	binary.BigEndian.PutUint32(b[:], binary.BigEndian.Uint32(b[:])|^(^uint32(0)<<(32-p.Bits())))
	return netip.AddrFrom4(b)
}

// publishXAuth reports an XAUTH outcome, naming the user, never the password.
func (e *Engine) publishXAuth(sa *isakmpSA, user, result, detail string) {
	level := events.Info
	msg := fmt.Sprintf("XAUTH: user %q %s", user, result)
	if detail != "" {
		msg += ": " + detail
	}
	if result != "accepted" {
		level = events.Warn
	}
	e.pub.Publish(events.Event{
		Kind: events.XAuth, Step: events.StepPhase1, Conn: sa.conn.cfg.Name, Level: level, Message: msg,
		Explain: "XAUTH authenticates the person behind the device: the group's pre-shared key is known to every member of the group, so alone it proves little; the user's own password, asked for after phase 1 under its encryption, does.",
		SA:      sa.info(), Fields: map[string]any{"user": user, "result": result, "tries": sa.ra.tries},
	})
}

// publishLease reports the address lent (gateway) or received (client), or
// its absence.
func (e *Engine) publishLease(sa *isakmpSA, ok bool) {
	if !ok {
		e.pub.Publish(events.Event{
			Kind: events.ModeConfig, Step: events.StepPhase1, Conn: sa.conn.cfg.Name, Level: events.Warn,
			Message: fmt.Sprintf("Mode Config: no address for %s: the pool is exhausted", sa.peerName()),
			Explain: "Every address of the pool is lent to a client that is still connected; the client gets no address and cannot build its tunnel.",
			SA:      sa.info(), Fields: map[string]any{"exhausted": true},
		})
		return
	}
	l := sa.lease
	who := "lent to " + sa.peerName()
	if sa.ra.user != "" {
		who = fmt.Sprintf("lent to user %s at %s", sa.ra.user, sa.remote)
	}
	if !sa.ra.gateway {
		who = "received from " + sa.peerName()
	}
	split := "all traffic"
	if len(l.SplitInclude) > 0 {
		split = fmt.Sprint(l.SplitInclude)
	}
	e.pub.Publish(events.Event{
		Kind: events.ModeConfig, Step: events.StepPhase1, Conn: sa.conn.cfg.Name,
		Message: fmt.Sprintf("Mode Config: address %s %s (DNS %v, tunnel %s)", l.Addr.Addr(), who, l.DNS, split),
		Explain: "The client now has an address inside the gateway's network: its packets leave the tunnel with it, and Quick Mode protects exactly the traffic between it and the networks to tunnel.",
		SA:      sa.info(), Fields: map[string]any{"address": l.Addr.Addr().String(), "dns": fmt.Sprint(l.DNS), "split_include": fmt.Sprint(l.SplitInclude), "user": sa.ra.user},
	})
}

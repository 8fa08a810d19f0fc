package ike

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strings"

	"github.com/ipseclab/ipseclab/events"
	"github.com/ipseclab/ipseclab/ipsec/esp"
	"github.com/ipseclab/ipseclab/ipsec/isakmp"
	"github.com/ipseclab/ipseclab/ipsec/keymat"
	"github.com/ipseclab/ipseclab/ipsec/pki"
)

// What the engine tells the event bus. Every message in or out is an
// events.IKEMessage with its place in the exchange; every outcome (proposal
// chosen, SA up, deleted, expired, failures) has its own kind. Each event
// carries the lifecycle step and, where it teaches something, a one-line
// Explain.

// msgInfo places a message in its exchange.
type msgInfo struct {
	exchange   string // "main", "aggressive", "quick", "informational"
	num, total int
	step       events.Step
	explain    string
	conn       *conn // the connection it is about, when not its ISAKMP SA's (a Quick Mode for another's IPsec SAs)
}

// connName names the connection a message of sa is about.
func (i msgInfo) connName(sa *isakmpSA) string {
	if i.conn != nil {
		return i.conn.cfg.Name
	}
	return sa.conn.cfg.Name
}

var exchangeTitles = map[string]string{"main": "Main Mode", "aggressive": "Aggressive Mode", "quick": "Quick Mode", "informational": "Informational",
	"xauth": "XAUTH", "modecfg": "Mode Config", "transaction": "Transaction"}

// what is "Main Mode 3/6", "Quick Mode 1/3", "Informational".
func (i msgInfo) what() string {
	t := exchangeTitles[i.exchange]
	if i.total > 1 {
		t += fmt.Sprintf(" %d/%d", i.num, i.total)
	}
	return t
}

func (sa *isakmpSA) ikeInfo(dir events.Direction, info msgInfo, m *isakmp.Message, size int) *events.IKEInfo {
	ii := &events.IKEInfo{
		Exchange: info.exchange, MsgNum: info.num, MsgTotal: info.total, Dir: dir,
		Local: sa.local.String(), Remote: sa.remote.String(), ICookie: sa.ckyI.String(), RCookie: sa.ckyR.String(),
		Size: size, Role: sa.role.String(),
	}
	if sa.choice.suite.Encr != 0 {
		ii.Proposal = sa.choice.suite.String()
	}
	if m != nil {
		ii.MsgID = m.Header.MessageID
		ii.Payloads = m.PayloadNames()
		ii.Encrypted = m.Header.Flags&isakmp.FlagEncryption != 0
	}
	return ii
}

// publishMessage reports one message sent or received.
func (e *Engine) publishMessage(sa *isakmpSA, dir events.Direction, m *isakmp.Message, size int, info msgInfo) {
	if e.cfg.Events == nil {
		return
	}
	arrow, peer := "→", "to"
	if dir == events.Received {
		arrow, peer = "←", "from"
		sa.lastIn = info.what()
	}
	payloads := strings.Join(m.PayloadNames(), ", ")
	if payloads == "" && m.Header.Flags&isakmp.FlagEncryption != 0 {
		payloads = "(encrypted, unreadable)"
	}
	star := ""
	if m.Header.Flags&isakmp.FlagEncryption != 0 {
		star = "*"
	}
	var fields map[string]any
	if ns := isakmp.All[*isakmp.Notify](m); len(ns) > 0 {
		names := make([]string, len(ns))
		for i, n := range ns {
			names[i] = n.NotifyType.String()
		}
		fields = map[string]any{"notify": names}
	}
	ii := sa.ikeInfo(dir, info, m, size)
	ii.Plain = m.Plaintext()
	e.publishFor(sa, events.Event{
		Kind: events.IKEMessage, Step: info.step, Conn: info.connName(sa), Level: events.Info,
		Message: fmt.Sprintf("%s %s %s %s %s: HDR%s, %s", arrow, info.what(), dir, peer, sa.remote, star, payloads),
		Explain: info.explain,
		IKE:     ii,
		Fields:  fields,
	})
}

func (sa *isakmpSA) info() *events.SAInfo {
	info := &events.SAInfo{
		Type: "isakmp", Local: sa.local.String(), Remote: sa.remote.String(),
		ICookie: sa.ckyI.String(), RCookie: sa.ckyR.String(), Initiator: sa.role == Initiator,
		Encap: sa.local.Port() == portNATT,
	}
	if sa.choice.suite.Encr != 0 {
		info.Proposal = sa.choice.suite.String()
	}
	if sa.lifetime > 0 {
		info.Lifetime = sa.lifetime.String()
	}
	return info
}

func (e *Engine) publishInitiate(c *conn, why string) {
	e.pub.Publish(events.Event{
		Kind: events.InitiateByHand, Step: events.StepInitiation, Conn: c.cfg.Name,
		Message: fmt.Sprintf("initiating %s (%s)", c.cfg.Name, why),
		Explain: "Step 1: someone asked for the tunnel; IKE first needs an ISAKMP SA with the peer (phase 1), then the IPsec SAs (phase 2).",
		Fields:  map[string]any{"why": why},
	})
}

// publishPeerCertificate reports the certificate that authenticated the
// peer: what a student would read in it, and why it was trusted.
func (e *Engine) publishPeerCertificate(sa *isakmpSA, c *x509.Certificate) {
	if c == nil {
		return
	}
	fp := sha256.Sum256(c.Raw)
	subject, issuer := dnString(c.RawSubject), dnString(c.RawIssuer)
	e.pub.Publish(events.Event{
		Kind: events.PeerCertificate, Step: events.StepPhase1, Conn: sa.conn.cfg.Name,
		Message: fmt.Sprintf("%s's certificate %q, issued by %q, valid until %s, %s key: trusted", sa.peerName(), subject, issuer, c.NotAfter.UTC().Format("2006-01-02"), pki.DescribeKey(c.PublicKey)),
		Explain: sa.conn.lesson().peerCert,
		SA:      sa.info(),
		Fields: map[string]any{
			"subject": subject, "issuer": issuer, "serial": c.SerialNumber.String(),
			"not_before": c.NotBefore.UTC(), "not_after": c.NotAfter.UTC(), "sha256": hex.EncodeToString(fp[:]),
			"dns": c.DNSNames, "email": c.EmailAddresses, "ip": fmt.Sprint(c.IPAddresses),
		},
	})
}

func (e *Engine) publishPhase1Up(sa *isakmpSA) {
	nat := "no NAT"
	if sa.nat.any() {
		nat = "NAT-T on UDP 4500"
	}
	e.pub.Publish(events.Event{
		Kind: events.Phase1Up, Step: events.StepPhase1, Conn: sa.conn.cfg.Name,
		Message: fmt.Sprintf("ISAKMP SA established with %s (%s, %s, %s, %s)", sa.peerName(), sa.phaseName(), sa.choice.suite, sa.role, nat),
		Explain: "Phase 1 is complete: one bidirectional ISAKMP SA, " + sa.conn.lesson().established + ", now protects the Quick Modes and Informational messages that follow.",
		IKE:     sa.ikeInfo(events.Received, msgInfo{exchange: sa.mode.String()}, nil, 0),
		SA:      sa.info(),
		Fields:  map[string]any{"peer_id": sa.peerID.String(), "nat_local": sa.nat.local, "nat_remote": sa.nat.remote, "dpd": sa.dpd.enabled, "vendor_ids": sa.peer.vendors},
	})
}

// publishProposalChosen reports the suite of phase 1 (qm nil) or of a Quick
// Mode.
func (e *Engine) publishProposalChosen(sa *isakmpSA, qm *quickMode) {
	step, what, suite, explain := events.StepPhase1, "ISAKMP", sa.choice.suite.String(),
		"Both sides now agree on the phase 1 suite: the cipher and hash that protect IKE itself, and the Diffie-Hellman group."
	if qm != nil {
		step, what, suite = events.StepPhase2, strings.ToUpper(qm.proto.String()), qm.choice.suite.String()
		explain = "The IPsec SAs will use this suite; a DH group in it means PFS: fresh Diffie-Hellman for these keys."
	}
	chooser := "we chose"
	if (qm == nil && sa.role == Initiator) || (qm != nil && qm.initiator) {
		chooser = "the peer chose"
	}
	info := msgInfo{exchange: sa.mode.String()}
	if qm != nil {
		info.conn = qm.conn
	}
	ii := sa.ikeInfo(events.Received, info, nil, 0)
	ii.Proposal = suite
	e.publishFor(sa, events.Event{
		Kind: events.ProposalChosen, Step: step, Conn: info.connName(sa),
		Message: fmt.Sprintf("%s proposal %s (%s)", what, suite, chooser),
		Explain: explain, IKE: ii,
		Fields: map[string]any{"proposal": suite, "protocol": strings.ToLower(what)},
	})
}

// publishNoProposal reports NO-PROPOSAL-CHOSEN, sent (we found nothing in
// the offer) or received (the peer found nothing in ours). An offer is the
// peer's, of any length: the event names its first transforms and counts the
// rest, and one sent answers a message nobody has authenticated yet, so it is
// rate-limited.
func (e *Engine) publishNoProposal(c *conn, peer netip.AddrPort, dir events.Direction, offered offerSummary, accepted string, step events.Step) {
	offer := strings.Join(offered.shown, ", ")
	if more := offered.total - len(offered.shown); more > 0 {
		offer += fmt.Sprintf(" and %d more", more)
	}
	var msg string
	if dir == events.Sent {
		msg = fmt.Sprintf("NO-PROPOSAL-CHOSEN sent to %s: it offered [%s], we accept [%s]", peer, offer, accepted)
		if n := offered.near; n != nil {
			if d := n.diffs(); len(d) > 0 {
				msg += ": " + strings.Join(d, "; ")
			}
		}
	} else {
		msg = fmt.Sprintf("NO-PROPOSAL-CHOSEN from %s: it accepts none of what we offered [%s]", peer, accepted)
	}
	ev := events.Event{
		Kind: events.NoProposal, Step: step, Conn: c.cfg.Name, Level: events.Error,
		Message: msg,
		Explain: noProposalExplain(dir, step, offered),
		Fields:  map[string]any{"direction": string(dir), "offered": offered.shown, "offered_count": offered.total, "accepted": accepted, "peer": peer.String()},
	}
	if n := offered.near; n != nil {
		ev.Fields["nearest_offered"], ev.Fields["nearest_configured"], ev.Fields["differences"] = n.offered.String(), n.ours.String(), n.diffs()
	}
	if dir == events.Sent && step == events.StepPhase1 {
		e.publishLimited(ev)
		return
	}
	e.pub.Publish(ev)
}

// maxOfferShown is how many of a peer's transforms an event names.
const maxOfferShown = 8

// phase1Failed ends a phase 1 negotiation (or an ISAKMP SA) with a reason.
func (e *Engine) phase1Failed(sa *isakmpSA, reason string, fields map[string]any) {
	if sa.dead {
		return
	}
	if fields == nil {
		fields = map[string]any{}
	}
	fields["reason"], fields["peer"] = reason, sa.remote.String()
	e.publishFor(sa, events.Event{
		Kind: events.Phase1Failed, Step: events.StepPhase1, Conn: sa.conn.cfg.Name, Level: events.Error,
		Message: fmt.Sprintf("%s with %s failed: %s", sa.phaseName(), sa.remote, reason),
		SA:      sa.info(), Fields: fields,
	})
	for _, r := range sa.waitQM {
		r.finish(fmt.Errorf("connection %s: phase 1: %s", sa.conn.cfg.Name, reason))
	}
	sa.waitQM = nil
	sa.destroy()
}

// authFailed reports a failed phase 1 authentication, tells the peer when
// notify is set, and ends the negotiation.
func (e *Engine) authFailed(sa *isakmpSA, reason string, notify isakmp.NotifyType) {
	if sa.dead {
		return
	}
	e.stats.AuthFailed++
	what := "AUTHENTICATION-FAILED" // also when the peer's notify told us
	if notify != 0 {
		what = notify.String()
	}
	e.pub.Publish(events.Event{
		Kind: events.AuthFailed, Step: events.StepPhase1, Conn: sa.conn.cfg.Name, Level: events.Error,
		Message: fmt.Sprintf("%s: connection %s with %s: %s", what, sa.conn.cfg.Name, sa.remote, reason),
		Explain: sa.conn.lesson().failed,
		SA:      sa.info(), Fields: map[string]any{"reason": reason, "peer": sa.remote.String()},
	})
	if notify != 0 {
		e.notifyPeer(sa, isakmpNotify(sa, notify))
	}
	e.phase1Failed(sa, "authentication failed: "+reason, nil)
}

func (e *Engine) publishPhase2Up(qm *quickMode, ch *childSA, old *childSA) {
	pfs := "without PFS"
	if qm.dh != nil {
		pfs = "with PFS (" + qm.dh.Group().String() + ")"
	}
	msg := fmt.Sprintf("IPsec SAs established: %s %s, SPIs in %08x out %08x, %s === %s, %s",
		ch.proto, ch.suite, ch.spiIn, ch.spiOut, ch.localTS, ch.remoteTS, pfs)
	explain := "Phase 2 is complete: two unidirectional IPsec SAs, one per direction, each with its own SPI and keys from KEYMAT."
	if old != nil {
		msg += fmt.Sprintf("; they replace %08x/%08x", old.spiIn, old.spiOut)
		explain = "The rekeyed pair is installed while the old one still works (make before break); the old pair is deleted shortly."
	}
	if ch.encap {
		msg += "; ESP in UDP 4500"
	}
	if note, why := lifetimeNote(&ch.conn.cfg.Child, ch.lifetime, ch.lifeBytes); note != "" {
		msg += "; " + note
		explain += " " + why
	}
	if ch.mode == esp.Transport && ch.encap {
		msg += "; transport mode through a NAT"
		if len(qm.peerOA) == 2 {
			msg += fmt.Sprintf(": the peer's NAT-OA payloads say %s (initiator) and %s (responder)", qm.peerOA[0], qm.peerOA[1])
		}
		explain += " In transport mode the TCP and UDP checksums cover the IP addresses, which the NAT rewrites: each side reports the addresses as it knows them in NAT-OA payloads (RFC 3947 §5.2), the selectors become the addresses each side sees, and the receiver recomputes the checksums after decapsulation (RFC 3948 §3.1.2)."
	}
	e.pub.Publish(events.Event{
		Kind: events.Phase2Up, Step: events.StepPhase2, Conn: ch.conn.cfg.Name,
		Message: msg, Explain: explain, SA: ch.info(),
		Fields: map[string]any{"rekey": old != nil, "lifetime_s": ch.lifetime.Seconds(), "life_bytes": ch.lifeBytes},
	})
}

func (e *Engine) publishPhase2Failed(qm *quickMode, reason string) {
	e.pub.Publish(events.Event{
		Kind: events.Phase2Failed, Step: events.StepPhase2, Conn: qm.info(0).connName(qm.sa), Level: events.Error,
		Message: fmt.Sprintf("Quick Mode %08x with %s failed: %s", qm.mid, qm.sa.remote, reason),
		Explain: qm.why,
		IKE:     qm.sa.ikeInfo(events.Received, qm.info(0), nil, 0),
		Fields:  map[string]any{"reason": reason, "msg_id": qm.mid, "rekey": qm.rekeyOf != nil},
	})
}

// publishExpired reports an ISAKMP SA (ch nil) or IPsec SA pair reaching its
// lifetime.
func (e *Engine) publishExpired(sa *isakmpSA, ch *childSA, reason string) {
	info, conn := sa.info(), sa.conn.cfg.Name
	if ch != nil {
		info, conn = ch.info(), ch.conn.cfg.Name
	}
	e.pub.Publish(events.Event{
		Kind: events.SAExpired, Step: events.StepTermination, Conn: conn,
		Message: reason,
		Explain: "Lifetimes limit how much traffic one key protects; an SA at its hard limit is deleted (rekeying normally replaces it before).",
		SA:      info,
	})
}

func (e *Engine) publishChildDeleted(ch *childSA, reason string) {
	e.pub.Publish(events.Event{
		Kind: events.SADeleted, Step: events.StepTermination, Conn: ch.conn.cfg.Name,
		Message: fmt.Sprintf("IPsec SAs %08x/%08x deleted: %s", ch.spiIn, ch.spiOut, reason),
		Explain: "A Delete payload in a protected Informational message tells the peer to remove the SAs too.",
		SA:      ch.info(), Fields: map[string]any{"reason": reason},
	})
}

func (e *Engine) publishISAKMPDeleted(sa *isakmpSA, reason string) {
	e.publishFor(sa, events.Event{
		Kind: events.SADeleted, Step: events.StepTermination, Conn: sa.conn.cfg.Name,
		Message: fmt.Sprintf("ISAKMP SA %s/%s with %s deleted: %s", sa.ckyI, sa.ckyR, sa.peerName(), reason),
		Explain: "The ISAKMP SA is gone; in IKEv1 the IPsec SAs live on until they are deleted or expire.",
		SA:      sa.info(), Fields: map[string]any{"reason": reason},
	})
}

// publishNotify reports a notification other than those with a kind of
// their own.
func (e *Engine) publishNotify(sa *isakmpSA, dir events.Direction, n *isakmp.Notify, protected bool) {
	level := events.Info
	if n.NotifyType.IsError() {
		level = events.Warn
	}
	how := "unprotected"
	if protected {
		how = "protected"
	}
	e.publishFor(sa, events.Event{
		Kind: events.Notify, Step: events.StepPhase1, Conn: sa.conn.cfg.Name, Level: level,
		Message: fmt.Sprintf("%s %s notification %s (%s)", map[events.Direction]string{events.Sent: "sent", events.Received: "received"}[dir], how, n.NotifyType, n.Protocol),
		IKE:     sa.ikeInfo(dir, msgInfo{exchange: "informational"}, nil, 0),
		Fields:  map[string]any{"notify": n.NotifyType.String(), "code": uint16(n.NotifyType), "protected": protected, "direction": string(dir)},
	})
}

// malformed counts a datagram that could not be decoded and reports it.
func (e *Engine) malformed(p Packet, err error, sa *isakmpSA) {
	e.stats.Malformed++
	ev := events.Event{
		Kind: events.IKEMalformed, Level: events.Warn,
		Message: fmt.Sprintf("malformed IKE packet from %s (%d bytes): %v", p.Remote, len(p.Data), err),
		Explain: "A packet that does not parse is dropped and counted; the negotiations with other peers go on.",
		Fields:  map[string]any{"peer": p.Remote.String(), "size": len(p.Data), "error": err.Error(), "notify": isakmp.NotifyFor(err).String()},
	}
	if sa != nil {
		ev.Conn = sa.conn.cfg.Name
	}
	e.publishLimited(ev)
}

// malformedIn counts a message of a known SA that we cannot accept.
func (e *Engine) malformedIn(sa *isakmpSA, p Packet, reason string) {
	e.malformed(p, fmt.Errorf("%s", reason), sa)
}

// unknownSA counts a message for an SA we do not hold: late, after a Delete,
// or from before this node restarted.
func (e *Engine) unknownSA(p Packet, m *isakmp.Message) {
	e.stats.UnknownSA++
	e.publishLimited(events.Event{
		Kind: events.IKEMalformed, Level: events.Debug,
		Message: fmt.Sprintf("%s message from %s for unknown ISAKMP SA %s/%s", m.Header.Exchange.Abbrev(), p.Remote, m.Header.InitiatorCookie, m.Header.ResponderCookie),
		Explain: "No ISAKMP SA has these cookies: it was deleted, or this node restarted and lost it.",
		Fields:  map[string]any{"peer": p.Remote.String(), "unknown_sa": true},
	})
}

// internalError reports a bug that was caught rather than crash the node.
func (e *Engine) internalError(err error) {
	e.stats.InternalErrors++
	e.pub.Publish(events.Event{Kind: events.IKEMalformed, Level: events.Error, Message: "internal error: " + err.Error(), Fields: map[string]any{"internal": true}})
}

// publishPhase1Keys publishes an ISAKMP SA's keys (Config.PublishKeys), with
// the line Wireshark's IKEv1 decryption table takes.
func (e *Engine) publishPhase1Keys(sa *isakmpSA) {
	k := sa.keys
	fields := map[string]any{
		"sa": "isakmp", "icookie": sa.ckyI.String(), "rcookie": sa.ckyR.String(),
		"skeyid": hex.EncodeToString(k.SKEYID), "skeyid_d": hex.EncodeToString(k.SKEYIDd),
		"skeyid_a": hex.EncodeToString(k.SKEYIDa), "skeyid_e": hex.EncodeToString(k.SKEYIDe),
		"ka": hex.EncodeToString(k.EncryptionKey), "iv": hex.EncodeToString(k.IV), "encryption": sa.choice.attrs.Encryption.String(),
		"wireshark_ikev1": sa.ckyI.String() + "," + hex.EncodeToString(k.EncryptionKey),
	}
	// The revised method's keys from the nonces (RFC 2409 §5.3), which
	// encrypted the KE and ID of MM3/MM4 (AM1/AM2); the exchange itself
	// discards them after use.
	if p1 := sa.p1; sa.conn.cfg.Auth.Method == AuthRSARevisedEncryption && p1 != nil {
		for _, n := range []struct {
			name  string
			nonce []byte
			cky   isakmp.Cookie
		}{{"i", p1.ni, sa.ckyI}, {"r", p1.nr, sa.ckyR}} {
			ne := keymat.NonceKey(k.PRF, n.nonce, n.cky)
			fields["ne_"+n.name] = hex.EncodeToString(ne)
			if nc, err := keymat.NewNonceCipher(k.Cipher, k.PRF, ne); err == nil {
				fields["ke_"+n.name] = hex.EncodeToString(nc.Key)
			}
		}
	}
	e.pub.Publish(events.Event{
		Kind: events.KeysDerived, Step: events.StepPhase1, Conn: sa.conn.cfg.Name, Level: events.Debug,
		Message: fmt.Sprintf("ISAKMP SA %s/%s keys derived", sa.ckyI, sa.ckyR),
		Explain: sa.conn.lesson().skeyid,
		Fields:  fields,
	})
}

// wiresharkESP names the data plane's algorithms as Wireshark's esp_sa table.
var (
	wiresharkEncr = map[esp.EncAlg]string{
		esp.EncNull: "NULL", esp.EncDES: "DES-CBC [RFC2405]", esp.Enc3DES: "TripleDES-CBC [RFC2451]",
		esp.EncAESCBC128: "AES-CBC [RFC3602]", esp.EncAESCBC192: "AES-CBC [RFC3602]", esp.EncAESCBC256: "AES-CBC [RFC3602]",
		esp.EncAESGCM16_128: "AES-GCM with 16 octet ICV [RFC4106]", esp.EncAESGCM16_192: "AES-GCM with 16 octet ICV [RFC4106]",
		esp.EncAESGCM16_256: "AES-GCM with 16 octet ICV [RFC4106]",
	}
	wiresharkInteg = map[esp.IntegAlg]string{
		esp.IntegNone: "NULL", esp.IntegHMACMD5_96: "HMAC-MD5-96 [RFC2403]", esp.IntegHMACSHA1_96: "HMAC-SHA-1-96 [RFC2404]",
		esp.IntegHMACSHA256_128: "HMAC-SHA-256-128 [RFC4868]", esp.IntegHMACSHA384_192: "HMAC-SHA-384-192 [RFC4868]",
		esp.IntegHMACSHA512_256: "HMAC-SHA-512-256 [RFC4868]",
	}
)

// publishChildKeys publishes one IPsec SA's keys, with its line for
// Wireshark's esp_sa table (the GCM key followed by its salt, as Wireshark
// wants it).
func (e *Engine) publishChildKeys(qm *quickMode, dir esp.Direction, cfg esp.SAConfig) {
	src, dst := cfg.Remote, cfg.Local
	if dir == esp.Outbound {
		src, dst = cfg.Local, cfg.Remote
	}
	integKey := ""
	if len(cfg.IntegKey) > 0 {
		integKey = "0x" + hex.EncodeToString(cfg.IntegKey)
	}
	e.pub.Publish(events.Event{
		Kind: events.KeysDerived, Step: events.StepPhase2, Conn: qm.conn.cfg.Name, Level: events.Debug,
		Message: fmt.Sprintf("%s %s SA %08x keys derived", dir, cfg.Protocol, cfg.SPI),
		Explain: "KEYMAT = prf(SKEYID_d, [g^xy |] protocol | SPI | Ni_b | Nr_b), with the SPI its destination chose: the two directions get different keys.",
		Fields: map[string]any{
			"sa": cfg.Protocol.String(), "dir": dir.String(), "spi": fmt.Sprintf("%08x", cfg.SPI),
			"src": src.String(), "dst": dst.String(), "encryption": cfg.Enc.String(), "integrity": cfg.Integ.String(),
			"enc_key": hex.EncodeToString(cfg.EncKey), "salt": hex.EncodeToString(cfg.Salt), "integ_key": hex.EncodeToString(cfg.IntegKey),
			"icookie": qm.sa.ckyI.String(), "rcookie": qm.sa.ckyR.String(),
			"wireshark_esp_sa": fmt.Sprintf("%q,%q,%q,\"0x%08x\",%q,\"0x%s\",%q,%q", "IPv4", src.String(), dst.String(), cfg.SPI,
				wiresharkEncr[cfg.Enc], hex.EncodeToString(append(append([]byte(nil), cfg.EncKey...), cfg.Salt...)), wiresharkInteg[cfg.Integ], integKey),
		},
	})
}

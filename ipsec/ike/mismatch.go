package ike

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/ipseclab/ipseclab/events"
	"github.com/ipseclab/ipseclab/ipsec/isakmp"
	"github.com/ipseclab/ipseclab/ipsec/proposal"
)

// This file explains failed negotiations by what differs. A responder that
// refuses an offer knows both sides of the mismatch, what was offered and
// what it has, and names the difference between the offered suite nearest
// to one of its own and that suite. The initiator only sees the notify; it
// explains what the notify means and what to compare.

// nearest is the offered suite closest to one of ours: the one whose
// attributes differ from it in the fewest places. extra is a difference
// outside the suite (the authentication method, the encapsulation mode).
type nearest struct {
	offered, ours proposal.Proposal
	extra         string
	distance      int
}

// considerNearest records an offered suite if it is nearer to one of ours
// than the nearest so far. An offer may hold thousands of transforms: this
// counts without allocating, and extra (which may) is called only for a new
// nearest.
func (o *offerSummary) considerNearest(offered proposal.Proposal, extra func() string, ours []proposal.Proposal) {
	for _, p := range ours {
		d := suiteDistance(offered, p)
		if extra != nil {
			d++
		}
		if o.near == nil || d < o.near.distance {
			o.near = &nearest{offered: offered, ours: p, distance: d}
			if extra != nil {
				o.near.extra = extra()
			}
		}
	}
}

// diffs lists the differences of the nearest pair.
func (n *nearest) diffs() []string {
	d := suiteDifferences(n.offered, n.ours)
	if n.extra != "" {
		d = append(d, n.extra)
	}
	return d
}

// mismatch names the nearest pair, "The nearest pair: aes128-sha256-modp2048
// offered, aes128-sha256-ecp256 configured", for an explanation (the
// event's message names the differences).
func (o offerSummary) mismatch() string {
	if n := o.near; n != nil {
		return fmt.Sprintf("The nearest pair: %s offered, %s configured", n.offered, n.ours)
	}
	return ""
}

// suiteDistance counts the attributes in which two suites differ.
func suiteDistance(a, b proposal.Proposal) int {
	n := 0
	for _, differs := range [...]bool{a.Protocol != b.Protocol, a.Encr != b.Encr || a.KeyBits != b.KeyBits, a.Integ != b.Integ, a.Group != b.Group, a.ESN != b.ESN} {
		if differs {
			n++
		}
	}
	return n
}

// suiteDifferences lists, attribute by attribute, how an offered suite
// differs from one of ours.
func suiteDifferences(offered, ours proposal.Proposal) []string {
	var d []string
	if offered.Protocol != ours.Protocol {
		d = append(d, fmt.Sprintf("the protocol differs (%s offered, %s configured)", offered.Protocol, ours.Protocol))
	}
	// An AEAD cipher (AES-GCM) brings its own integrity: against one
	// without, the cipher and the integrity algorithm differ as one.
	aead := func(p proposal.Proposal) bool { return p.Encr == proposal.EncrAESGCM16 }
	switch {
	case aead(offered) != aead(ours):
		withInteg := func(p proposal.Proposal) string {
			if aead(p) || p.Integ == proposal.IntegNone {
				return cipherName(p)
			}
			return cipherName(p) + "-" + p.Integ.String()
		}
		d = append(d, fmt.Sprintf("the cipher differs (%s offered, %s configured; AES-GCM carries its own integrity check)", withInteg(offered), withInteg(ours)))
	case offered.Encr != ours.Encr || offered.KeyBits != ours.KeyBits:
		d = append(d, fmt.Sprintf("the cipher differs (%s offered, %s configured)", cipherName(offered), cipherName(ours)))
	}
	if offered.Integ != ours.Integ && aead(offered) == aead(ours) {
		what := "the integrity algorithm"
		if ours.Protocol == proposal.IKE {
			what = "the hash"
		}
		d = append(d, fmt.Sprintf("%s differs (%s offered, %s configured)", what, offered.Integ, ours.Integ))
	}
	switch g, h := offered.Group, ours.Group; {
	case g == h:
	case ours.Protocol == proposal.IKE:
		d = append(d, fmt.Sprintf("the Diffie-Hellman group differs (%s offered, %s configured)", g, h))
	case g == proposal.GroupNone:
		d = append(d, fmt.Sprintf("PFS on this side only: the offer has no DH group, this side requires PFS with %s", h))
	case h == proposal.GroupNone:
		d = append(d, fmt.Sprintf("PFS on the peer's side only: it asks for PFS with %s, this side has no PFS configured", g))
	default:
		d = append(d, fmt.Sprintf("the PFS group differs (%s offered, %s configured)", g, h))
	}
	if offered.ESN != ours.ESN {
		d = append(d, fmt.Sprintf("extended sequence numbers differ (%s offered, %s configured)", onOff(offered.ESN), onOff(ours.ESN)))
	}
	return d
}

func cipherName(p proposal.Proposal) string {
	if p.Encr == proposal.EncrNone {
		return "none"
	}
	return proposal.Proposal{Protocol: proposal.ESP, Encr: p.Encr, KeyBits: p.KeyBits}.String()
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// noProposalExplain explains a NO-PROPOSAL-CHOSEN sent (with what differs)
// or received (with what it means).
func noProposalExplain(dir events.Direction, step events.Step, offered offerSummary) string {
	phase1 := step == events.StepPhase1
	switch {
	case dir == events.Sent && phase1:
		return "A phase 1 responder needs one of its own suites among the initiator's transforms, alike in every attribute: cipher, hash, Diffie-Hellman group and authentication method (the lifetime is not compared: a lifetime mismatch is no failure). " +
			orGeneric(offered.mismatch()) + ". Make one side's IKE proposals include the other's."
	case dir == events.Sent:
		return "A Quick Mode responder needs one of its own ESP or AH suites among the initiator's, alike in every attribute: cipher, integrity, the PFS group (a DH group in a proposal is PFS, and both sides must agree whether to use it and which) and the mode (the lifetime is not compared: a lifetime mismatch is no failure). " +
			orGeneric(offered.mismatch()) + ". Make one side's child proposals (and pfs) include the other's."
	case phase1:
		return "The responder found none of our phase 1 suites among those it has for us (or has no connection for our address at all) and says so unprotected, as nothing is authenticated yet. We cannot see its list: compare its IKE proposals with ours, every attribute (cipher, hash, DH group, authentication method); its log names what it has."
	default:
		return "Phase 1 worked, so the peers know each other; the responder found none of our Quick Mode proposals acceptable: compare the ESP or AH algorithms and PFS (whether each side has a DH group in its child proposals, and which) with its configuration; its log names what it has."
	}
}

func orGeneric(mismatch string) string {
	if mismatch == "" {
		return "The offer holds nothing this side can parse"
	}
	return mismatch
}

// selectorMismatch names which of the initiator's client IDs falls outside
// c's selectors, for a responder answering INVALID-ID-INFORMATION.
func selectorMismatch(c *conn, sa *isakmpSA, idci, idcr *isakmp.ID) string {
	ours, theirs := c.selectors(sa)
	if idci == nil {
		return fmt.Sprintf("The initiator sent no client IDs, which means the two IKE addresses (%s === %s); connection %s protects %s === %s.",
			sa.remote.Addr(), sa.local.Addr(), c.cfg.Name, theirs, ours)
	}
	ci, err1 := idSelector(idci)
	cr, err2 := idSelector(idcr)
	if err1 != nil || err2 != nil {
		return "The initiator's client IDs are not addresses or subnets this side can compare."
	}
	var d []string
	if !within(ci, theirs) {
		d = append(d, fmt.Sprintf("its own network (IDci) %s is not within our remote-ts %s", ci, theirs))
	}
	if !within(cr, ours) {
		d = append(d, fmt.Sprintf("the network it wants to reach (IDcr) %s is not within our local-ts %s", cr, ours))
	}
	if len(d) == 0 {
		return ""
	}
	return "Quick Mode names the traffic to protect in two client IDs, from the initiator's point of view; the responder accepts them only within its own selectors, mirrored, and otherwise answers INVALID-ID-INFORMATION. Connection " +
		c.cfg.Name + ": " + strings.Join(d, ", and ") + ". One side's local-ts must be the other's remote-ts."
}

// refusedExplain is what an error notify that ends our Quick Mode means.
func refusedExplain(t isakmp.NotifyType) string {
	switch t {
	case isakmp.NotifyNoProposalChosen:
		return noProposalExplain(events.Received, events.StepPhase2, offerSummary{})
	case isakmp.NotifyInvalidIDInformation:
		return "The responder has no connection whose selectors hold ours, mirrored: it compares our local-ts with its remote-ts and our remote-ts with its local-ts (a subnet may be narrower than the other side's, not wider). Its log names the selectors it has."
	case isakmp.NotifyInvalidHashInformation:
		return "The responder decrypted our Quick Mode 1/3 but computed another HASH(1) over it than the one it carries: the message changed after it was built, so it refused it rather than trust any of it."
	case isakmp.NotifyInvalidKeyInformation:
		return "The responder could not use our Diffie-Hellman value for PFS: a KE payload missing, or of another group than the proposal's."
	}
	return "The responder refused the Quick Mode with this notify; its log says why."
}

// lifetimeNote says, for a new IPsec SA pair, where its lifetimes are the
// peer's rather than ours. IKEv1 does not refuse a proposal over its
// lifetime: we take the shorter of the offer and our own (the responder
// telling the initiator with RESPONDER-LIFETIME, RFC 2407 §4.6.3.1); charon
// accepts the offer and keeps its own. "" when ours apply.
func lifetimeNote(configured *Child, lifetime time.Duration, lifeBytes uint64) (note, explain string) {
	var parts []string
	if lifetime < configured.Lifetime {
		parts = append(parts, fmt.Sprintf("lifetime %s, the peer's, shorter than our %s", lifetime, configured.Lifetime))
	}
	if lifeBytes > 0 && (configured.LifeBytes == 0 || lifeBytes < configured.LifeBytes) {
		ours := "none"
		if configured.LifeBytes > 0 {
			ours = fmt.Sprintf("%d bytes", configured.LifeBytes)
		}
		parts = append(parts, fmt.Sprintf("life-bytes %d, the peer's, where ours is %s", lifeBytes, ours))
	}
	if len(parts) == 0 {
		return "", ""
	}
	return strings.Join(parts, "; "), "The two sides' lifetimes differ. IKEv1 does not refuse a proposal for that. ipseclab takes the shorter of the offer and its own (as the responder it says so with a RESPONDER-LIFETIME notify, RFC 2407 §4.6.3.1); strongSwan 5.9 accepts the offer and keeps its own lifetimes (its log says \"received ...s lifetime, configured ...s\"). Each side rekeys when its own SA ages, so the side with the shorter lifetime rekeys first and the tunnel stays up."
}

// refusedQuickMode finds the Quick Mode of ours that a peer's error notify
// answers. The notify names the SPI we offered, when the peer got as far as
// reading it; charon, refusing before it chose a proposal, names SPI 0, and
// then the notify can only be about our one Quick Mode awaiting an answer.
func (sa *isakmpSA) refusedQuickMode(n *isakmp.Notify) *quickMode {
	var waiting []*quickMode
	for _, qm := range sa.quick {
		if qm.initiator && qm.state == qmI1Sent {
			waiting = append(waiting, qm)
		}
	}
	named := len(n.SPI) == 4 && be32(n.SPI) != 0
	for _, qm := range waiting {
		if !named || be32(n.SPI) == qm.spiIn {
			if !named && len(waiting) > 1 {
				return nil // several are waiting: the notify does not say which it refuses
			}
			return qm
		}
	}
	return nil
}

// silenceExplain is what a Quick Mode without any answer means. A responder
// that refuses one says so under the ISAKMP SA's protection (ipseclab and
// charon alike, for proposals and selectors); silence is something else.
const silenceExplain = "The responder did not answer Quick Mode 1/3 at all, though a responder that refuses one says why (NO-PROPOSAL-CHOSEN, INVALID-ID-INFORMATION). So the messages did not arrive, or the peer could not decrypt or authenticate them (it restarted and no longer has this ISAKMP SA, or a message was damaged), or it dropped them for reasons only its log shows."

// publishAddressChoice reports a Main Mode first message that the peer's
// address gave to c, among others that would also have taken it.
func (e *Engine) publishAddressChoice(c *conn, peer netip.AddrPort, others int) {
	explain := "This node has several connections that accept the peer. It takes the one that expects the peer at the address its message came from, before comparing proposals."
	if c.cfg.Auth.Method == AuthPSK {
		explain += " In Main Mode with a pre-shared key the address is all it has to go on: the key encrypts messages 5 and 6, which carry the identities, so it must be chosen before the identity arrives (RFC 2409 §5.4)."
	}
	e.publishLimited(events.Event{
		Kind: events.ISAKMPConn, Step: events.StepPhase1, Conn: c.cfg.Name,
		Message: fmt.Sprintf("Main Mode 1/6 from %s goes to connection %s, which expects its peer at this address (%d other connection(s) would accept it)",
			peer, c.cfg.Name, others),
		Explain: explain,
		Fields:  map[string]any{"peer": peer.String(), "reason": "address"},
	})
}

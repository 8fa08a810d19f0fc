// Package fault describes a protocol fault injected on purpose into one
// node's IPsec stack: an IKE message dropped, delayed, duplicated, reordered,
// replayed, corrupted or stripped of a payload, a cookie rewritten, a Delete
// forged, or ESP packets damaged. The lab script's `fault:` step and the
// `ipseclab fault` verb both produce a Fault; package ike and package esp
// carry it out on the node's outbound side, so that "gw-b dropped Main Mode
// 4/6" is gw-b not sending it, and the lesson is how the peer reacts.
//
// This package only describes and checks faults; it has no state.
package fault

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Plane is where a fault acts: the IKE engine or the ESP data plane.
type Plane string

const (
	IKE Plane = "ike"
	ESP Plane = "esp"
)

// Action is what a fault does to what it matches.
type Action string

// IKE actions.
const (
	Drop      Action = "drop"      // the message is not sent
	Delay     Action = "delay"     // sent after Fault.Delay
	Duplicate Action = "duplicate" // sent twice
	Reorder   Action = "reorder"   // held until the node's next datagram to the peer has left (or Fault.Delay)
	Corrupt   Action = "corrupt"   // one byte of Fault.Payload flipped, before or after encryption; ESP: one byte of the ICV
	Omit      Action = "omit"      // Fault.Payload left out of the message
	Replay    Action = "replay"    // sent, and a copy sent again once the exchange has moved on; ESP: the packet sent twice
	Cookie    Action = "cookie"    // the sender's cookie in the header set to zero or a random value
	Forge     Action = "forge"     // an unprotected Delete or INITIAL-CONTACT sent to the peer
)

// ESP-only actions.
const (
	WrongSPI Action = "wrong-spi" // the SPI changed to one the peer does not hold
	Truncate Action = "truncate"  // the packet cut short
)

// IKEActions and ESPActions are the actions of each plane, in the order
// messages list them.
var (
	IKEActions = []Action{Drop, Delay, Duplicate, Reorder, Corrupt, Omit, Replay, Cookie, Forge}
	ESPActions = []Action{Corrupt, Replay, WrongSPI, Reorder, Truncate}
)

// Payload names a payload a fault corrupts or omits.
type Payload string

const (
	PayloadHash  Payload = "hash"
	PayloadSig   Payload = "sig"
	PayloadNonce Payload = "nonce"
	PayloadKE    Payload = "ke"
	PayloadSA    Payload = "sa"
	PayloadID    Payload = "id"
	PayloadNATD  Payload = "nat-d"
	PayloadSPI   Payload = "spi" // the SPI in a Quick Mode SA payload's proposal, or in a Delete or notification
)

// Title names the payload in a sentence: "the HASH payload", "the SPI".
func (p Payload) Title() string {
	switch p {
	case PayloadSPI:
		return "the SPI"
	case PayloadNATD:
		return "the first NAT-D payload" // of the two a message carries
	}
	return "the " + strings.ToUpper(string(p)) + " payload"
}

// Payloads lists the payload names.
var Payloads = []Payload{PayloadHash, PayloadSig, PayloadNonce, PayloadKE, PayloadSA, PayloadID, PayloadNATD, PayloadSPI}

// Exchange names, as written in lab files.
const (
	MainMode      = "main-mode"
	Aggressive    = "aggressive-mode"
	QuickMode     = "quick-mode"
	Informational = "informational"
	DPD           = "dpd"
	Transaction   = "transaction"
)

// exchanges gives each exchange's number of messages (0: one message, or
// any number, named without a position).
var exchanges = map[string]int{MainMode: 6, Aggressive: 3, QuickMode: 3, Informational: 0, DPD: 0, Transaction: 0}

// ExchangeNames lists the exchanges as they are written.
var ExchangeNames = []string{MainMode, Aggressive, QuickMode, Informational, DPD, Transaction}

var exchangeTitles = map[string]string{MainMode: "Main Mode", Aggressive: "Aggressive Mode", QuickMode: "Quick Mode",
	Informational: "Informational", DPD: "DPD", Transaction: "Transaction"}

// Message names an IKE message: an exchange and, for Main, Aggressive and
// Quick Mode, the message's position in it.
type Message struct {
	Exchange string
	Num      int // 1-based; 0 for an exchange without positions
}

// ParseMessage reads "main-mode 4/6", "aggressive-mode 2/3", "quick-mode
// 1/3", "informational", "dpd" or "transaction". The "/6" may be left out.
func ParseMessage(s string) (Message, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	name, pos, hasPos := strings.Cut(s, " ")
	total, ok := exchanges[name]
	if !ok {
		return Message{}, fmt.Errorf("unknown message %q: give an exchange (%s), with the message's position for the first three (main-mode 4/6)", s, strings.Join(ExchangeNames, ", "))
	}
	m := Message{Exchange: name}
	if total == 0 {
		if hasPos {
			return Message{}, fmt.Errorf("message %q: %s has no numbered messages; write just %q", s, name, name)
		}
		return m, nil
	}
	if !hasPos {
		return Message{}, fmt.Errorf("message %q: say which message of %s, 1/%d to %d/%d (for example %s 2/%d)", s, name, total, total, total, name, total)
	}
	num, of, hasOf := strings.Cut(strings.TrimSpace(pos), "/")
	n, err := strconv.Atoi(num)
	if err != nil || n < 1 || n > total {
		return Message{}, fmt.Errorf("message %q: %s has messages 1/%d to %d/%d", s, name, total, total, total)
	}
	if hasOf {
		t, err := strconv.Atoi(of)
		if err != nil {
			return Message{}, fmt.Errorf("message %q: write the message's position as N/%d (for example %s 2/%d)", s, total, name, total)
		}
		if t != total {
			return Message{}, fmt.Errorf("message %q: %s has %d messages, not %d", s, name, total, t)
		}
	}
	m.Num = n
	return m, nil
}

// IsZero reports an unset message.
func (m Message) IsZero() bool { return m.Exchange == "" }

// Total is the exchange's number of messages, 0 for one without positions.
func (m Message) Total() int { return exchanges[m.Exchange] }

// String is the message as a lab file writes it: "main-mode 4/6".
func (m Message) String() string {
	if m.Num == 0 {
		return m.Exchange
	}
	return fmt.Sprintf("%s %d/%d", m.Exchange, m.Num, m.Total())
}

// Title is the message as the timeline names it: "Main Mode 4/6".
func (m Message) Title() string {
	if m.Num == 0 {
		return exchangeTitles[m.Exchange]
	}
	return fmt.Sprintf("%s %d/%d", exchangeTitles[m.Exchange], m.Num, m.Total())
}

// carried lists, by message, the payloads a fault may corrupt or omit in
// it: what our stack puts there with any authentication method (a HASH or a
// SIG in the last messages of phase 1; an ID in Main Mode 3/6 and 4/6 only
// with public-key encryption; a KE in Quick Mode only with PFS). A fault on
// a payload a message does not carry this time simply does not match.
var carried = map[Message][]Payload{
	{MainMode, 1}:      {PayloadSA},
	{MainMode, 2}:      {PayloadSA},
	{MainMode, 3}:      {PayloadKE, PayloadNonce, PayloadNATD, PayloadID, PayloadHash},
	{MainMode, 4}:      {PayloadKE, PayloadNonce, PayloadNATD, PayloadID},
	{MainMode, 5}:      {PayloadID, PayloadHash, PayloadSig},
	{MainMode, 6}:      {PayloadID, PayloadHash, PayloadSig},
	{Aggressive, 1}:    {PayloadSA, PayloadKE, PayloadNonce, PayloadID},
	{Aggressive, 2}:    {PayloadSA, PayloadKE, PayloadNonce, PayloadID, PayloadHash, PayloadSig, PayloadNATD},
	{Aggressive, 3}:    {PayloadHash, PayloadSig, PayloadNATD},
	{QuickMode, 1}:     {PayloadHash, PayloadSA, PayloadNonce, PayloadKE, PayloadID, PayloadSPI},
	{QuickMode, 2}:     {PayloadHash, PayloadSA, PayloadNonce, PayloadKE, PayloadID, PayloadSPI},
	{QuickMode, 3}:     {PayloadHash},
	{Informational, 0}: {PayloadHash, PayloadSPI},
	{DPD, 0}:           {PayloadHash, PayloadSPI},
	{Transaction, 0}:   {PayloadHash},
}

// Carries reports whether message m may carry payload p.
func Carries(m Message, p Payload) bool { return slices.Contains(carried[m], p) }

// CarriedBy lists the payloads message m may carry.
func CarriedBy(m Message) []Payload { return carried[m] }

// Occurrence says which matching messages or packets a fault applies to.
type Occurrence struct {
	Nth   int           // apply to the nth match only (1: the next, the default)
	Count int           // apply to this many matches, from the first (ESP's count: N)
	Every bool          // apply to every match until cleared
	For   time.Duration // apply to every match for this long after arming
}

// String is the occurrence in words: "the next", "the 3rd", "every", ...
func (o Occurrence) String() string {
	switch {
	case o.Every:
		return "every"
	case o.For > 0:
		return "every (for " + o.For.String() + ")"
	case o.Count > 1:
		return fmt.Sprintf("the next %d", o.Count)
	case o.Nth > 1:
		return "the " + ordinal(o.Nth)
	}
	return "the next"
}

func ordinal(n int) string {
	suffix := "th"
	switch {
	case n%100 >= 11 && n%100 <= 13:
	case n%10 == 1:
		suffix = "st"
	case n%10 == 2:
		suffix = "nd"
	case n%10 == 3:
		suffix = "rd"
	}
	return strconv.Itoa(n) + suffix
}

// Fault is one fault to inject on one node.
type Fault struct {
	Node  string
	Plane Plane
	Conn  string // only this connection's messages (IKE) or its SAs' packets (ESP); "" for all

	Message Message // IKE: the message it applies to (Forge: optional, else at once)
	Action  Action
	Payload Payload       // Corrupt and Omit (IKE)
	After   bool          // Corrupt: after encryption, so that the peer cannot decrypt it
	Delay   time.Duration // Delay; Reorder and Replay: the longest hold (default DefaultHold)
	Cookie  string        // Cookie: "zero" or "random"
	Forge   string        // Forge: "delete" or "initial-contact"

	Occurrence Occurrence
}

// DefaultHold is how long Reorder and Replay hold a datagram when nothing
// else goes to the peer meanwhile.
const DefaultHold = time.Second

// Forgeries and cookie values.
var (
	Forgeries    = []string{"delete", "initial-contact"}
	CookieValues = []string{"zero", "random"}
)

// FieldError is a problem with one field of a fault, named as lab files and
// flags spell it, so that a lab file's error points at the field.
type FieldError struct {
	Name string
	Err  error
}

func (e *FieldError) Error() string { return e.Err.Error() }
func (e *FieldError) Field() string { return e.Name }

func fieldErr(name, format string, args ...any) error {
	return &FieldError{Name: name, Err: fmt.Errorf(format, args...)}
}

// Validate checks that the fault makes sense on its own (the node's kind is
// its caller's business). Each error names its field.
func (f *Fault) Validate() error {
	var errs []error
	add := func(err error) { errs = append(errs, err) }
	switch f.Plane {
	case IKE:
		if !slices.Contains(IKEActions, f.Action) {
			add(fieldErr("", "an IKE fault needs one action: %s", joinActions(IKEActions)))
			break
		}
		if f.Message.IsZero() && f.Action != Forge {
			add(fieldErr("message", "%s needs the message it applies to (message: main-mode 4/6)", f.Action))
		}
		switch f.Action {
		case Corrupt, Omit:
			if !slices.Contains(Payloads, f.Payload) {
				add(fieldErr(string(f.Action), "unknown payload %q: one of %s", f.Payload, joinPayloads(Payloads)))
			} else if !f.Message.IsZero() && !Carries(f.Message, f.Payload) {
				add(fieldErr(string(f.Action), "%s carries no %s payload (it carries %s)", f.Message, f.Payload, joinPayloads(CarriedBy(f.Message))))
			}
		case Delay:
			if f.Delay <= 0 {
				add(fieldErr("delay", "delay needs a positive duration (delay: 3s)"))
			}
		case Cookie:
			if !slices.Contains(CookieValues, f.Cookie) {
				add(fieldErr("cookie", "cookie %q: zero or random", f.Cookie))
			}
		case Forge:
			if !slices.Contains(Forgeries, f.Forge) {
				add(fieldErr("forge", "forge %q: delete or initial-contact", f.Forge))
			}
		}
		if f.After && f.Action != Corrupt {
			add(fieldErr("after-encryption", "after-encryption applies to corrupt"))
		}
	case ESP:
		if !slices.Contains(ESPActions, f.Action) {
			add(fieldErr("esp", "unknown ESP fault %q: one of %s", f.Action, joinActions(ESPActions)))
		}
		if !f.Message.IsZero() {
			add(fieldErr("message", "an ESP fault applies to packets, not to an IKE message"))
		}
	default:
		add(fieldErr("", "a fault acts on plane ike or esp, not %q", f.Plane))
	}
	o := f.Occurrence
	forms := 0
	for _, set := range []bool{o.Nth > 0, o.Count > 0, o.Every, o.For > 0} {
		if set {
			forms++
		}
	}
	if forms > 1 {
		add(fieldErr("", "say which matches once: nth, count, every or for"))
	}
	if o.Nth < 0 || o.Count < 0 || o.For < 0 {
		add(fieldErr("", "nth, count and for must be positive"))
	}
	return errors.Join(errs...)
}

func joinActions(as []Action) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = string(a)
	}
	return strings.Join(s, ", ")
}

func joinPayloads(ps []Payload) string {
	if len(ps) == 0 {
		return "none of them"
	}
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = string(p)
	}
	return strings.Join(s, ", ")
}

// Verb says what the node did, for the event: "dropped", "corrupted the
// HASH payload of", ...
func (f *Fault) Verb() string {
	switch f.Action {
	case Drop:
		return "dropped"
	case Delay:
		return "delayed by " + f.Delay.String()
	case Duplicate:
		return "duplicated"
	case Reorder:
		return "held back"
	case Corrupt:
		if f.Plane == ESP {
			return "corrupted"
		}
		when := "before encryption"
		if f.After {
			when = "after encryption"
		}
		return fmt.Sprintf("corrupted %s (%s) of", f.Payload.Title(), when)
	case Omit:
		if f.Payload == PayloadNATD {
			return "left the NAT-D payloads out of" // every one of them, as for any payload
		}
		return fmt.Sprintf("left %s out of", f.Payload.Title())
	case Replay:
		return "replayed"
	case Cookie:
		return fmt.Sprintf("set its cookie to %s in", f.Cookie)
	case WrongSPI:
		return "changed the SPI of"
	case Truncate:
		return "truncated"
	case Forge:
		return "forged an unprotected " + f.Forge
	}
	return string(f.Action)
}

// String describes the fault as armed: "drop the next main-mode 4/6".
func (f *Fault) String() string {
	what := f.Message.String()
	if f.Plane == ESP {
		what = "outbound ESP/AH packet"
		if o := f.Occurrence; o.Count > 1 || o.Every || o.For > 0 {
			what += "s"
		}
	}
	s := fmt.Sprintf("%s %s %s", f.Action, f.Occurrence, what)
	switch f.Action {
	case Corrupt, Omit:
		if f.Plane == IKE {
			s = fmt.Sprintf("%s %s in %s %s", f.Action, f.Payload, f.Occurrence, what)
			if f.After {
				s += " after encryption"
			}
		}
	case Delay:
		s += " by " + f.Delay.String()
	case Cookie:
		s = fmt.Sprintf("cookie %s in %s %s", f.Cookie, f.Occurrence, what)
	case Forge:
		s = "forge an unprotected " + f.Forge
		if !f.Message.IsZero() {
			s += " after " + f.Occurrence.String() + " " + what
		}
	}
	if f.Conn != "" {
		s += " of connection " + f.Conn
	}
	return s
}

// Armed is a fault waiting for its matches: the state an injector keeps.
type Armed struct {
	Fault
	at   time.Time
	seen int
}

// Arm starts a fault's life at now (Occurrence.For counts from it).
func Arm(f Fault, now time.Time) *Armed { return &Armed{Fault: f, at: now} }

// Hit counts one match at now and reports whether the fault applies to it,
// and whether it is spent (to be disarmed).
func (a *Armed) Hit(now time.Time) (apply, spent bool) {
	o := a.Occurrence
	a.seen++
	switch {
	case o.Every:
		return true, false
	case o.For > 0:
		if now.Sub(a.at) > o.For {
			return false, true
		}
		return true, false
	case o.Count > 0:
		return true, a.seen >= o.Count
	case o.Nth > 0:
		return a.seen == o.Nth, a.seen >= o.Nth
	}
	return true, true
}

// Expired reports a fault armed for a duration that has run out.
func (a *Armed) Expired(now time.Time) bool {
	return a.Occurrence.For > 0 && now.Sub(a.at) > a.Occurrence.For
}

// Left is an armed fault and what remains of it, for listing.
type Left struct {
	Fault
	Seen int // matches counted so far
	// Remaining is how many more matches it applies to; -1: every match
	// until cleared (or until Until).
	Remaining int
	Skip      int       // matches it lets pass before it applies (nth)
	Until     time.Time // a fault armed for a duration: when it ends; zero otherwise
}

// Left reports what remains of the fault.
func (a *Armed) Left() Left {
	l := Left{Fault: a.Fault, Seen: a.seen, Remaining: 1}
	o := a.Occurrence
	switch {
	case o.Every:
		l.Remaining = -1
	case o.For > 0:
		l.Remaining, l.Until = -1, a.at.Add(o.For)
	case o.Count > 0:
		l.Remaining = max(o.Count-a.seen, 0)
	case o.Nth > 0:
		l.Skip = max(o.Nth-1-a.seen, 0)
	}
	return l
}

// Describe says what remains, relative to now: "1 more match", "every
// match until cleared", "every match until 19:30:05 (12s left)", "the 2nd
// match from now".
func (l Left) Describe(now time.Time) string {
	var s string
	switch {
	case !l.Until.IsZero():
		s = fmt.Sprintf("every match until %s (%s left)", l.Until.Format("15:04:05"), max(l.Until.Sub(now), 0).Round(time.Second))
	case l.Remaining < 0:
		s = "every match until cleared"
	case l.Skip > 0:
		s = "the " + ordinal(l.Skip+1) + " match from now"
	case l.Remaining == 1:
		s = "1 more match"
	default:
		s = fmt.Sprintf("%d more matches", l.Remaining)
	}
	if l.Seen > 0 {
		s += fmt.Sprintf("; %d seen so far", l.Seen)
	}
	return s
}

// Package events is the lab-wide event bus. Every part of ipseclab (deploy, links,
// NAT boxes, IKE, ESP, the script runner) publishes typed events here, and every
// output (the terminal timeline, the JSON log, captures' key tables, script
// expectations, the control socket's event stream) reads them from here.
//
// Nothing in ipseclab prints to the terminal directly: it publishes an Event and
// lets the sinks decide how to show it.
package events

import (
	"encoding/json"
	"fmt"
	"time"
)

// Step is the lifecycle step of an IPsec tunnel that an event belongs to.
// Zero means the event is about the lab itself (deploy, links, NAT) rather than a
// tunnel's life.
type Step int

const (
	StepNone        Step = 0
	StepInitiation  Step = 1 // by hand, or by the first packet that matches a policy (acquire)
	StepPhase1      Step = 2 // Main or Aggressive Mode, ends in the ISAKMP SA
	StepPhase2      Step = 3 // Quick Mode, ends in a pair of IPsec SAs
	StepData        Step = 4 // ESP/AH traffic
	StepTermination Step = 5 // Delete, lifetimes, DPD
)

var stepTitles = [...]string{
	StepNone:        "Lab",
	StepInitiation:  "Step 1 · Initiation",
	StepPhase1:      "Step 2 · IKE Phase 1",
	StepPhase2:      "Step 3 · IKE Phase 2",
	StepData:        "Step 4 · Data transfer",
	StepTermination: "Step 5 · Termination",
}

// Title is the heading the timeline prints for the step.
func (s Step) Title() string {
	if s < 0 || int(s) >= len(stepTitles) {
		return fmt.Sprintf("step %d", int(s))
	}
	return stepTitles[s]
}

// Level says how much attention an event asks for.
type Level string

const (
	Debug Level = "debug"
	Info  Level = "info"
	Warn  Level = "warn"
	Error Level = "error"
)

// Kind names what happened. Kinds are stable strings: they appear in JSON logs
// and in lab files' `expect: {event: ...}` steps, so never rename one.
type Kind string

// Lab and topology.
const (
	LabDeploying  Kind = "lab-deploying"
	LabProgress   Kind = "lab-progress" // Fields: done, total, what
	LabDeployed   Kind = "lab-deployed"
	LabDeployFail Kind = "lab-deploy-failed"
	LabRollback   Kind = "lab-rollback"
	LabDestroying Kind = "lab-destroying"
	LabDestroyed  Kind = "lab-destroyed"
	NodeCreated   Kind = "node-created"
	LinkCreated   Kind = "link-created"
	LANCreated    Kind = "lan-created"
	LabSeed       Kind = "lab-seed" // Fields: seed, chosen (bool), file (where the lab came from), source (the lab file's text, so that a recording names its lab)
)

// Links and impairments.
const (
	LinkUp          Kind = "link-up"
	LinkDown        Kind = "link-down"
	LinkImpair      Kind = "link-impair"   // the impairment of a link changed
	LinkCounters    Kind = "link-counters" // periodic and final counters
	CaptureStarted  Kind = "capture-started"
	CaptureFinished Kind = "capture-finished"
)

// NAT boxes.
const (
	NATMappingNew     Kind = "nat-mapping-new"
	NATMappingExpired Kind = "nat-mapping-expired"
	NATFlush          Kind = "nat-flush"
)

// IKE (steps 1, 2, 3 and 5).
const (
	Acquire         Kind = "acquire"              // step 1: a packet matched a policy with no SA
	InitiateByHand  Kind = "initiate"             // step 1: tunnel up by CLI or script
	IKEMessage      Kind = "ike-message"          // any IKE message sent or received
	IKERetransmit   Kind = "ike-retransmit"       // a message was sent again
	IKEMalformed    Kind = "ike-malformed"        // a packet that could not be decoded
	IKESendFailed   Kind = "ike-send-failed"      // the network refused a datagram; Fields: errno, error
	HalfOpenEvicted Kind = "half-open-evicted"    // an unproven responder SA made room for a new first message
	Suppressed      Kind = "events-suppressed"    // events caused by unauthenticated input, rate-limited; Fields: suppressed
	ProposalChosen  Kind = "proposal-chosen"      // phase 1 or phase 2 proposal selection
	NATDetected     Kind = "nat-detected"         // NAT-D result
	NATFloat        Kind = "nat-float"            // moved to UDP 4500
	NATKeepalive    Kind = "nat-keepalive"        // a NAT-T keepalive (0xFF on UDP 4500) was sent
	NATMapChanged   Kind = "nat-mapping-changed"  // an authenticated packet showed the peer's NAT changed its mapping; Fields: old, new, via
	PeerCertificate Kind = "peer-certificate"     // the certificate that authenticated a peer; Fields: subject, issuer, sha256
	XAuth           Kind = "xauth"                // an XAUTH outcome; Fields: user, result (accepted, refused), tries
	ModeConfig      Kind = "modecfg"              // an address lent or received by Mode Config; Fields: address, dns, split_include
	Phase1Up        Kind = "phase1-up"            // ISAKMP SA established
	ISAKMPConn      Kind = "isakmp-sa-connection" // a responder learnt which connection an ISAKMP SA serves
	Phase1Failed    Kind = "phase1-failed"        // Fields: reason
	Phase2Up        Kind = "phase2-up"            // IPsec SA pair established
	Phase2Failed    Kind = "phase2-failed"        // Fields: reason
	AuthFailed      Kind = "auth-failed"          // AUTHENTICATION-FAILED sent or received
	NoProposal      Kind = "no-proposal"          // NO-PROPOSAL-CHOSEN sent or received
	Notify          Kind = "notify"               // any other notification
	Rekey           Kind = "rekey"                // an SA is being replaced
	RekeyCollision  Kind = "rekey-collision"      // both ends rekeyed the same IPsec SA pair at once
	SAExpired       Kind = "sa-expired"           // lifetime reached
	SADeleted       Kind = "sa-deleted"           // Delete sent or received, or local removal
	DPDSent         Kind = "dpd-r-u-there"        // R-U-THERE sent
	DPDAck          Kind = "dpd-ack"              // R-U-THERE-ACK received
	DPDDead         Kind = "dpd-dead"             // peer declared dead
	DPDIgnored      Kind = "dpd-ignored"          // an R-U-THERE(-ACK) whose sequence number does not fit, counted and ignored; Fields: seq, want
	StackCrashed    Kind = "stack-crashed"        // a node's IPsec stack lost all state on purpose
	StackRestarted  Kind = "stack-restarted"      // and came back
	FaultInjected   Kind = "fault-injected"       // the lab made a node send a message or packet wrong on purpose; Fields: action, message, payload
	Unprotected     Kind = "unprotected-ignored"  // a Delete or notification in the clear, not believed; Fields: what, reason
	KeysDerived     Kind = "keys-derived"         // derived keys, only when keys are requested
	ESPPacket       Kind = "esp-packet"           // step 4: one of the first packets of an SA, described
	ESPDrop         Kind = "esp-drop"             // step 4: replay, integrity or policy drop
	SACounters      Kind = "sa-counters"          // step 4: counters of an SA
	RouteMTU        Kind = "route-mtu"            // step 4: a route into the TUN took its new SA's inner MTU
	StrongSwanLog   Kind = "strongswan-log"       // a line from a strongSwan node's log
	VPNCLog         Kind = "vpnc-log"             // a line of a vpnc node's output
	TrafficReport   Kind = "traffic-report"       // the traffic generator's result
	PingReply       Kind = "ping-reply"           // the built-in ping got a reply
	PingResult      Kind = "ping-result"          // the built-in ping's summary
	ScriptStarted   Kind = "script-started"       // the lab's script began
	ScriptStep      Kind = "script-step"          // the script started a step
	ScriptFinished  Kind = "script-finished"      // Fields: passed, failed, errors
	ExpectPassed    Kind = "expect-passed"        // an expectation held
	ExpectFailed    Kind = "expect-failed"        // an expectation did not hold
	MalformedPacket Kind = "malformed-packet"     // any decoder rejected network input
)

// Direction of a message relative to the node that publishes the event.
type Direction string

const (
	Sent     Direction = "sent"
	Received Direction = "received"
)

// IKEInfo describes one IKE message.
type IKEInfo struct {
	Exchange  string    `json:"exchange"`            // "main", "aggressive", "quick", "informational", "transaction"
	MsgNum    int       `json:"msg_num,omitempty"`   // 1-based position in the exchange (MM 1..6, AM 1..3, QM 1..3)
	MsgTotal  int       `json:"msg_total,omitempty"` // messages in the exchange
	Dir       Direction `json:"dir"`
	Local     string    `json:"local,omitempty"` // ip:port
	Remote    string    `json:"remote,omitempty"`
	ICookie   string    `json:"icookie,omitempty"` // hex
	RCookie   string    `json:"rcookie,omitempty"` // hex
	MsgID     uint32    `json:"msg_id,omitempty"`
	Payloads  []string  `json:"payloads,omitempty"` // payload names in order, e.g. ["SA","KE","NONCE","NAT-D","NAT-D"]
	Encrypted bool      `json:"encrypted,omitempty"`
	Size      int       `json:"size,omitempty"`
	Proposal  string    `json:"proposal,omitempty"` // chosen proposal, strongSwan notation
	Role      string    `json:"role,omitempty"`     // "initiator" or "responder"
	// Plain is the message as it reads decrypted (isakmp.Message.Plaintext:
	// the header with the E flag cleared, then the payloads), for the web
	// view's inspector; base64 in JSON.
	Plain []byte `json:"plain,omitempty"`
}

// SAInfo describes an ISAKMP or IPsec SA.
type SAInfo struct {
	Type      string `json:"type"` // "isakmp", "esp", "ah"
	SPIIn     string `json:"spi_in,omitempty"`
	SPIOut    string `json:"spi_out,omitempty"`
	Proposal  string `json:"proposal,omitempty"`
	Mode      string `json:"mode,omitempty"` // tunnel or transport
	Encap     bool   `json:"udp_encap,omitempty"`
	LocalTS   string `json:"local_ts,omitempty"`
	RemoteTS  string `json:"remote_ts,omitempty"`
	Lifetime  string `json:"lifetime,omitempty"`
	PFS       string `json:"pfs,omitempty"`
	Local     string `json:"local,omitempty"`
	Remote    string `json:"remote,omitempty"`
	ICookie   string `json:"icookie,omitempty"`
	RCookie   string `json:"rcookie,omitempty"`
	Initiator bool   `json:"initiator,omitempty"`
}

// PacketInfo describes a packet as a person would read it in a capture.
type PacketInfo struct {
	Inner string `json:"inner,omitempty"` // e.g. "ICMP 10.1.0.10 → 10.2.0.10 echo request"
	Outer string `json:"outer,omitempty"` // e.g. "ESP 198.51.100.2 → 203.0.113.2"
	SPI   string `json:"spi,omitempty"`
	Seq   uint64 `json:"seq,omitempty"`
	Len   int    `json:"len,omitempty"`
	// For the web view's inspector (base64 in JSON): Wire is the start of
	// the packet as on the wire, up to the encrypted payload (the outer
	// IPv4 header unless the SA is UDP-encapsulated, then the ESP header
	// and IV, or the AH header with its ICV); Plain the inner packet's
	// first bytes, decrypted; ICV an inbound ESP packet's ICV as received,
	// ICVLen its length in either direction (an outbound packet's ICV is
	// computed after the event).
	Wire   []byte `json:"wire,omitempty"`
	Plain  []byte `json:"plain,omitempty"`
	ICV    []byte `json:"icv,omitempty"`
	ICVLen int    `json:"icv_len,omitempty"`
}

// ExpectResult is the outcome of one expectation of a lab's script, carried
// by ExpectPassed and ExpectFailed.
type ExpectResult struct {
	Step   int    `json:"step"`
	At     string `json:"at"` // file:line of the step
	Name   string `json:"name"`
	Passed bool   `json:"passed"`
	Detail string `json:"detail"`
}

// ScriptResult is the outcome of a lab's script, carried by ScriptFinished.
type ScriptResult struct {
	Expectations []ExpectResult `json:"expectations"`
	Errors       []string       `json:"errors,omitempty"` // steps that could not be carried out
}

// OK reports whether every expectation held and every step ran: the run's
// exit code.
func (s ScriptResult) OK() bool {
	_, failed := s.Counts()
	return failed == 0 && len(s.Errors) == 0
}

// Counts are the expectations that held and those that did not.
func (s ScriptResult) Counts() (passed, failed int) {
	for _, e := range s.Expectations {
		if e.Passed {
			passed++
		} else {
			failed++
		}
	}
	return passed, failed
}

// Event is one thing that happened in a lab. Publishers fill what applies; the
// bus assigns Seq and, when it is zero, Time.
type Event struct {
	Seq     uint64    `json:"seq"`
	Time    time.Time `json:"time"`
	Lab     string    `json:"lab,omitempty"`
	Node    string    `json:"node,omitempty"`
	Conn    string    `json:"connection,omitempty"`
	Link    string    `json:"link,omitempty"`
	Kind    Kind      `json:"kind"`
	Step    Step      `json:"step"`
	Level   Level     `json:"level,omitempty"`
	Message string    `json:"message"`           // one plain line: what happened
	Explain string    `json:"explain,omitempty"` // one line tying it to the concept, for students

	IKE    *IKEInfo      `json:"ike,omitempty"`
	SA     *SAInfo       `json:"sa,omitempty"`
	Packet *PacketInfo   `json:"packet,omitempty"`
	Expect *ExpectResult `json:"expect,omitempty"` // ExpectPassed, ExpectFailed
	Script *ScriptResult `json:"script,omitempty"` // ScriptFinished

	// Fields carries kind-specific values (counters, reasons, keys). Values must
	// marshal to JSON.
	Fields map[string]any `json:"fields,omitempty"`
}

// footprint estimates the memory an event holds, for the bus's bound on its
// history: the strings it carries and a fixed cost per part. Constant
// strings (Explain) are shared, and counted all the same, which errs on the
// safe side.
func (e *Event) footprint() int {
	n := 256 + len(e.Message) + len(e.Explain) + len(e.Node) + len(e.Conn) + len(e.Link)
	if e.IKE != nil {
		n += 256 + 16*len(e.IKE.Payloads) + len(e.IKE.Plain)
	}
	if e.SA != nil {
		n += 256
	}
	if e.Packet != nil {
		n += 256 + len(e.Packet.Wire) + len(e.Packet.Plain) + len(e.Packet.ICV)
	}
	if e.Expect != nil || e.Script != nil {
		n += 512
	}
	for k, v := range e.Fields {
		n += 48 + len(k) + valueFootprint(v)
	}
	return n
}

func valueFootprint(v any) int {
	switch v := v.(type) {
	case string:
		return len(v)
	case []string:
		n := 16 * len(v)
		for _, s := range v {
			n += len(s)
		}
		return n
	case []byte:
		return len(v)
	case map[string]any:
		n := 0
		for k, x := range v {
			n += 48 + len(k) + valueFootprint(x)
		}
		return n
	case map[string]uint64:
		return 48 * len(v)
	default:
		return 16
	}
}

// Field returns a field's value, or nil.
func (e *Event) Field(name string) any {
	if e.Fields == nil {
		return nil
	}
	return e.Fields[name]
}

// String gives a compact one-line rendering, used in logs and test failures.
func (e Event) String() string {
	s := fmt.Sprintf("#%d %s", e.Seq, e.Kind)
	if e.Node != "" {
		s += " node=" + e.Node
	}
	if e.Conn != "" {
		s += " conn=" + e.Conn
	}
	if e.Link != "" {
		s += " link=" + e.Link
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// MarshalJSONLine renders the event as one line of JSON, the format of `--json`
// and of the control socket's event stream.
func (e Event) MarshalJSONLine() ([]byte, error) {
	b, err := json.Marshal(e)
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// KnownKinds lists every kind, for validating `expect: {event: ...}` in lab
// files. A kind added above must be added here too (a test checks the count
// against the constants in this file).
func KnownKinds() []Kind {
	return []Kind{
		LabDeploying, LabProgress, LabDeployed, LabDeployFail, LabRollback, LabDestroying, LabDestroyed,
		NodeCreated, LinkCreated, LANCreated, LabSeed,
		LinkUp, LinkDown, LinkImpair, LinkCounters, CaptureStarted, CaptureFinished,
		NATMappingNew, NATMappingExpired, NATFlush,
		Acquire, InitiateByHand, IKEMessage, IKERetransmit, IKEMalformed, IKESendFailed, HalfOpenEvicted, Suppressed, ProposalChosen, NATDetected, NATFloat, NATKeepalive, NATMapChanged,
		PeerCertificate, XAuth, ModeConfig, Phase1Up, ISAKMPConn, Phase1Failed, Phase2Up, Phase2Failed, AuthFailed, NoProposal, Notify, Rekey, RekeyCollision, SAExpired,
		SADeleted, DPDSent, DPDAck, DPDDead, DPDIgnored, StackCrashed, StackRestarted, FaultInjected, Unprotected, KeysDerived, ESPPacket, ESPDrop,
		SACounters, RouteMTU, StrongSwanLog, VPNCLog, TrafficReport, PingReply, PingResult, ScriptStarted, ScriptStep, ScriptFinished, ExpectPassed,
		ExpectFailed, MalformedPacket,
	}
}

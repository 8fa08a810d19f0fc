package vpnc

import (
	"regexp"
	"strings"
	"time"

	"github.com/ipseclab/ipseclab/events"
)

// LogLine is one line vpnc (or the script it runs) wrote on its standard
// output or error.
type LogLine struct {
	Time time.Time // when the line was read
	Text string
}

// What vpnc 0.5.3 prints at --debug 1, and on errors, that marks a step of
// the tunnel's life. vpnc prefixes its errors with its own path.
var (
	reIKESelected   = regexp.MustCompile(`^IKE SA selected (\S+)`)
	reNATStatus     = regexp.MustCompile(`^NAT status: (.*)`)
	reGotAddress    = regexp.MustCompile(`^got address (\S+)`)
	reIPsecSelected = regexp.MustCompile(`^IPSEC SA selected (\S+)`)
	reStarted       = regexp.MustCompile(`^VPNC started in (foreground|background)`)
	reXAuthFailed   = regexp.MustCompile(`authentication unsuccessful|authentication failed`)
	reHashFailed    = regexp.MustCompile(`hash comparison failed: *(.*)`)
	reInvalid       = regexp.MustCompile(`response was invalid \[\d\]: *(.*)`)
	reNoResponse    = regexp.MustCompile(`no response from target`)
	reQuickRejected = regexp.MustCompile(`quick mode response rejected: *(.*)`)
	reConfRejected  = regexp.MustCompile(`configuration response rejected: *(.*)`)
	reCertFailed    = regexp.MustCompile(`certificate|signature|no certificates`)
	reTerminated    = regexp.MustCompile(`terminated by signal: (\d+)`)
	reDeadPeer      = regexp.MustCompile(`dead peer detected`)
)

// Events turns a line into the events it stands for: always a VPNCLog, and
// for the lines that mark a step, the event ipseclab's own stack and charon
// publish at that step (phase1-up, phase2-up, auth-failed, ...), so that a
// lab's expectations hold whichever client the laptop runs.
func (l LogLine) Events() []events.Event {
	text := l.Text
	out := []events.Event{{Kind: events.VPNCLog, Level: events.Debug, Message: "vpnc: " + text}}
	add := func(e events.Event) {
		out = append(out, e)
		out[0].Level = events.Info // a milestone's own line is worth reading
	}
	switch {
	case reIKESelected.MatchString(text):
		p := reIKESelected.FindStringSubmatch(text)[1]
		add(events.Event{Kind: events.ProposalChosen, Step: events.StepPhase1,
			Message: "vpnc: the gateway chose " + p + " for phase 1 (Aggressive Mode)",
			Explain: "vpnc names the method first: psk+xauth is the group key then XAUTH (65001), hybrid(rsa) the gateway's RSA certificate then XAUTH (64221)",
			SA:      &events.SAInfo{Type: "isakmp", Proposal: p, Initiator: true}})
	case reNATStatus.MatchString(text):
		add(events.Event{Kind: events.NATDetected, Step: events.StepPhase1, Message: "vpnc: " + text})
	case reGotAddress.MatchString(text):
		a := reGotAddress.FindStringSubmatch(text)[1]
		add(events.Event{Kind: events.Phase1Up, Step: events.StepPhase1,
			Message: "ISAKMP SA established (vpnc): XAUTH accepted, Mode Config lent " + a,
			Explain: "vpnc prints nothing between Aggressive Mode and Mode Config: an address means the gateway accepted the user's password",
			Fields:  map[string]any{"address": a}})
	case reIPsecSelected.MatchString(text):
		p := reIPsecSelected.FindStringSubmatch(text)[1]
		add(events.Event{Kind: events.ProposalChosen, Step: events.StepPhase2,
			Message: "vpnc: the gateway chose " + p + " for the IPsec SAs (Quick Mode)",
			SA:      &events.SAInfo{Type: "esp", Proposal: p, Mode: "tunnel", Initiator: true}})
	case reStarted.MatchString(text):
		add(events.Event{Kind: events.Phase2Up, Step: events.StepPhase2,
			Message: "IPsec SAs established (vpnc): the tunnel runs through vpnc's own TUN device",
			Explain: "vpnc does ESP itself, in user space, between its TUN device and a UDP socket (or a raw one without NAT-T)",
			SA:      &events.SAInfo{Type: "esp", Mode: "tunnel", Initiator: true}})
	case reHashFailed.MatchString(text):
		add(events.Event{Kind: events.AuthFailed, Step: events.StepPhase1, Level: events.Error,
			Message: "vpnc: the gateway's HASH_R does not match: " + strings.TrimSpace(reHashFailed.FindStringSubmatch(text)[1]),
			Explain: "in Aggressive Mode the client checks the gateway's hash first: a mismatch means the group secrets differ"})
	case reXAuthFailed.MatchString(text):
		add(events.Event{Kind: events.AuthFailed, Step: events.StepPhase1, Level: events.Error,
			Message: "vpnc: the gateway refused the user name or password (XAUTH)",
			Explain: "the group secret was right (phase 1 went through), the user's credentials were not"})
	case reQuickRejected.MatchString(text):
		add(events.Event{Kind: events.Phase2Failed, Step: events.StepPhase2, Level: events.Error,
			Message: "vpnc: Quick Mode failed: " + strings.TrimSpace(reQuickRejected.FindStringSubmatch(text)[1])})
	case reConfRejected.MatchString(text):
		reason := strings.TrimSpace(reConfRejected.FindStringSubmatch(text)[1])
		add(events.Event{Kind: events.Phase1Failed, Step: events.StepPhase1, Level: events.Error,
			Message: "vpnc: Mode Config failed: " + reason, Fields: map[string]any{"reason": reason}})
	case reInvalid.MatchString(text):
		reason := strings.TrimSpace(reInvalid.FindStringSubmatch(text)[1])
		kind := events.Phase1Failed
		if strings.Contains(reason, "NO_PROPOSAL_CHOSEN") {
			kind = events.NoProposal
		}
		add(events.Event{Kind: kind, Step: events.StepPhase1, Level: events.Error,
			Message: "vpnc: the gateway answered " + reason, Fields: map[string]any{"reason": reason}})
	case reNoResponse.MatchString(text):
		add(events.Event{Kind: events.Phase1Failed, Step: events.StepPhase1, Level: events.Error,
			Message: "vpnc: no response from the gateway", Fields: map[string]any{"reason": "no response"}})
	case reDeadPeer.MatchString(text):
		add(events.Event{Kind: events.DPDDead, Step: events.StepTermination, Level: events.Warn,
			Message: "vpnc: dead peer detected, terminating"})
	case reTerminated.MatchString(text):
		add(events.Event{Kind: events.SADeleted, Step: events.StepTermination,
			Message: "vpnc stops (signal " + reTerminated.FindStringSubmatch(text)[1] + ") and deletes its SAs at the gateway"})
	case strings.HasPrefix(text, "/") && reCertFailed.MatchString(text):
		add(events.Event{Kind: events.AuthFailed, Step: events.StepPhase1, Level: events.Error, Message: "vpnc: " + text})
	}
	return out
}

// PublishLog returns an OnLog function that publishes each line's events
// (Events) through p, whose Node and Conn name the vpnc node and its
// connection.
func PublishLog(p events.Publisher) func(LogLine) {
	return func(l LogLine) {
		for _, e := range l.Events() {
			p.Publish(e)
		}
	}
}

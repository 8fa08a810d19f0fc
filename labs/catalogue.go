package labs

import (
	"fmt"
	"strings"
)

// Topic is a chapter of an IPsec course; `ipseclab labs` groups the shipped
// labs by it.
type Topic string

const (
	TopicFiveSteps       Topic = "five-steps"
	TopicPhase1          Topic = "phase1"
	TopicPhase2          Topic = "phase2"
	TopicESPAH           Topic = "esp-ah"
	TopicNATTraversal    Topic = "nat-traversal"
	TopicDPD             Topic = "dpd"
	TopicRemoteAccess    Topic = "remote-access"
	TopicFaults          Topic = "faults"
	TopicTroubleshooting Topic = "troubleshooting"
)

// Topics is the order of a course, and the order `ipseclab labs` lists them.
var Topics = []Topic{TopicFiveSteps, TopicPhase1, TopicPhase2, TopicESPAH, TopicNATTraversal, TopicDPD, TopicRemoteAccess, TopicFaults, TopicTroubleshooting}

// Title is the heading a topic gets in listings.
func (t Topic) Title() string {
	switch t {
	case TopicFiveSteps:
		return "The five steps of a tunnel's life"
	case TopicPhase1:
		return "IKE phase 1: Main and Aggressive Mode, authentication"
	case TopicPhase2:
		return "IKE phase 2: Quick Mode, PFS, lifetimes and rekeying"
	case TopicESPAH:
		return "ESP and AH, tunnel and transport mode"
	case TopicNATTraversal:
		return "NAT traversal (RFC 3947/3948)"
	case TopicDPD:
		return "Dead Peer Detection and peer failures (RFC 3706)"
	case TopicRemoteAccess:
		return "Remote access: XAUTH, Mode Config, Hybrid"
	case TopicFaults:
		return "Protocol faults: messages lost, tampered with, replayed or forged on purpose"
	case TopicTroubleshooting:
		return "Troubleshooting exercises"
	}
	return string(t)
}

// Entry places a shipped lab in the course. A troubleshooting exercise is a
// lab whose run shows a failure for the student to explain and fix; it is
// listed under its own topic and again under troubleshooting.
type Entry struct {
	Topic           Topic
	Troubleshooting bool
}

// catalogue is every shipped lab's place in the course. TestCatalogue keeps
// it and the lab directories in step.
var catalogue = map[string]Entry{
	"site-to-site":       {Topic: TopicFiveSteps},
	"lossy-link":         {Topic: TopicFiveSteps},
	"strongswan-interop": {Topic: TopicFiveSteps},

	"aggressive-mode":   {Topic: TopicPhase1},
	"certificates":      {Topic: TopicPhase1},
	"auth-methods":      {Topic: TopicPhase1},
	"mixed-pki":         {Topic: TopicPhase1},
	"hub-and-spoke":     {Topic: TopicPhase1},
	"wrong-psk":         {Topic: TopicPhase1, Troubleshooting: true},
	"bad-certificate":   {Topic: TopicPhase1, Troubleshooting: true},
	"proposal-mismatch": {Topic: TopicPhase1, Troubleshooting: true},

	"pfs-rekey":         {Topic: TopicPhase2},
	"rekey-collision":   {Topic: TopicPhase2},
	"lifetimes":         {Topic: TopicPhase2},
	"selector-mismatch": {Topic: TopicPhase2, Troubleshooting: true},
	"pfs-mismatch":      {Topic: TopicPhase2, Troubleshooting: true},

	"esp-vs-ah":           {Topic: TopicESPAH},
	"transport-vs-tunnel": {Topic: TopicESPAH},
	"path-mtu":            {Topic: TopicESPAH},
	"mtu-black-hole":      {Topic: TopicESPAH, Troubleshooting: true},

	"nat-traversal":      {Topic: TopicNATTraversal},
	"transport-nat":      {Topic: TopicNATTraversal},
	"double-nat":         {Topic: TopicNATTraversal},
	"nat-mapping-expiry": {Topic: TopicNATTraversal},
	"nat-reboot":         {Topic: TopicNATTraversal},

	"dpd":          {Topic: TopicDPD},
	"peer-crash":   {Topic: TopicDPD},
	"link-cut-dpd": {Topic: TopicDPD},

	"road-warriors":        {Topic: TopicRemoteAccess},
	"hybrid":               {Topic: TopicRemoteAccess},
	"vpnc-client":          {Topic: TopicRemoteAccess},
	"xauth-wrong-password": {Topic: TopicRemoteAccess, Troubleshooting: true},

	"lost-message":  {Topic: TopicFaults},
	"tampered-hash": {Topic: TopicFaults},
	"replayed-esp":  {Topic: TopicFaults},
	"forged-delete": {Topic: TopicFaults},
	"missing-nat-d": {Topic: TopicFaults, Troubleshooting: true},
}

// Place returns where a shipped lab sits in the course.
func Place(name string) (Entry, error) {
	e, ok := catalogue[name]
	if !ok {
		return Entry{}, fmt.Errorf("lab %s is not in the course catalogue (labs/catalogue.go)", name)
	}
	return e, nil
}

// Group is one topic's labs, in listing order.
type Group struct {
	Topic Topic
	Labs  []Info
}

// Grouped returns the shipped labs by topic, in course order. Troubleshooting
// exercises appear under their own topic and again under troubleshooting.
func Grouped() ([]Group, error) {
	list, err := List()
	if err != nil {
		return nil, err
	}
	byTopic := map[Topic][]Info{}
	for _, l := range list {
		e, err := Place(l.Name)
		if err != nil {
			return nil, err
		}
		byTopic[e.Topic] = append(byTopic[e.Topic], l)
		if e.Troubleshooting && e.Topic != TopicTroubleshooting {
			byTopic[TopicTroubleshooting] = append(byTopic[TopicTroubleshooting], l)
		}
	}
	var out []Group
	for _, t := range Topics {
		if len(byTopic[t]) > 0 {
			out = append(out, Group{Topic: t, Labs: byTopic[t]})
		}
	}
	return out, nil
}

// AnswersHeading starts the part of a lesson that `ipseclab labs --lesson`
// keeps back until --answers is given.
const AnswersHeading = "## Answers"

// LessonWithoutAnswers is a shipped lab's lesson up to its answers, with a
// line saying how to see them.
func LessonWithoutAnswers(name string) (string, error) {
	text, err := Lesson(name)
	if err != nil {
		return "", err
	}
	if i := strings.Index(text, "\n"+AnswersHeading); i >= 0 {
		return text[:i+1] + "\n(the answers: ipseclab labs --lesson " + name + " --answers)\n", nil
	}
	return text, nil
}

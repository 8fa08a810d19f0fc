package topology

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/ipseclab/ipseclab/impair/netem"
	"github.com/ipseclab/ipseclab/ipsec/fault"
)

// Step is one entry of a lab's script: exactly one action, optionally timed
// with `at:` (time since the script started). Steps run in order; a step whose
// `at` has passed runs at once.
type Step struct {
	Ping       *PingStep    `yaml:"ping"`
	Traffic    *TrafficStep `yaml:"traffic"`
	TunnelUp   *TunnelStep  `yaml:"tunnel-up"`
	TunnelDown *TunnelStep  `yaml:"tunnel-down"`
	Impair     *ImpairStep  `yaml:"impair"`
	Link       *LinkStep    `yaml:"link"`
	NATFlush   *NodeStep    `yaml:"nat-flush"`
	Crash      *NodeStep    `yaml:"crash"`   // the node's IPsec stack loses all state, as in a reboot
	Restart    *NodeStep    `yaml:"restart"` // and starts again, empty
	Fault      *FaultStep   `yaml:"fault"`   // a protocol fault on a gateway's own stack (ipsec/fault)
	Wait       *WaitStep    `yaml:"wait"`
	Expect     *ExpectStep  `yaml:"expect"`

	Index int `yaml:"-"`
	Pos   Pos `yaml:"-"`
}

// Timing is common to every action.
type Timing struct {
	At Duration `yaml:"at"` // run at this time after the script started
}

// PingStep sends ICMP echo requests with the built-in ping.
type PingStep struct {
	Timing   `yaml:",inline"`
	From     string   `yaml:"from" lab:"required"`
	To       Addr     `yaml:"to" lab:"required"`
	Count    int      `yaml:"count"`    // default 3
	Interval Duration `yaml:"interval"` // default 200ms
	Timeout  Duration `yaml:"timeout"`  // per reply, default 1s
	Size     int      `yaml:"size"`     // payload bytes, default 56
	DF       bool     `yaml:"df"`       // set Don't Fragment and refuse what exceeds the known path MTU, as ping -M do
	// Background runs it beside the steps that follow (a stream during a NAT
	// reboot, say); the script waits for it before it ends.
	Background bool `yaml:"background"`
}

// TrafficStep runs the built-in traffic generator.
type TrafficStep struct {
	Timing   `yaml:",inline"`
	From     string   `yaml:"from" lab:"required"`
	To       Addr     `yaml:"to" lab:"required"`
	Proto    string   `yaml:"proto"` // udp (default) or tcp
	Port     int      `yaml:"port"`  // default 5201
	Duration Duration `yaml:"duration"`
	Rate     string   `yaml:"rate"`  // udp: packets are paced to this bit rate, e.g. 10mbit
	Size     int      `yaml:"size"`  // udp payload bytes
	Count    int64    `yaml:"count"` // udp: packets to send
	Bytes    Size     `yaml:"bytes"` // tcp: bytes to send
	// Background: as PingStep's.
	Background bool `yaml:"background"`
}

// TunnelStep brings a connection up or down by hand.
type TunnelStep struct {
	Timing     `yaml:",inline"`
	Connection string `yaml:"connection" lab:"required"`
	Node       string `yaml:"node"` // which side acts; default: the initiator
}

func (s *TunnelStep) fromScalar(n *yaml.Node) error { s.Connection = n.Value; return nil }

// ImpairStep changes a link's impairment at run time. The settings given are
// merged into the link's current ones; `reset: true` first returns the link to
// what the lab file declared.
type ImpairStep struct {
	Timing `yaml:",inline"`
	Link   string        `yaml:"link" lab:"required"` // an endpoint of the link, node:iface
	Reset  bool          `yaml:"reset"`
	Set    *netem.Change `yaml:"set"` // settings to change, same keys as a link's impair block
}

// LinkStep takes a link down or up.
type LinkStep struct {
	Timing `yaml:",inline"`
	Name   string `yaml:"name" lab:"required"` // an endpoint of the link, node:iface
	Down   bool   `yaml:"down"`
	Up     bool   `yaml:"up"`
}

// NodeStep names a node.
type NodeStep struct {
	Timing `yaml:",inline"`
	Node   string `yaml:"node" lab:"required"`
}

func (s *NodeStep) fromScalar(n *yaml.Node) error { s.Node = n.Value; return nil }

// FaultStep arms a protocol fault on a gateway's own IKE engine or data
// plane: exactly one action, on a named IKE message (or, with esp:, on the
// outbound ESP/AH packets), applying to the next match unless nth, count,
// every or for says otherwise. `clear: true` disarms the node's faults.
//
//	fault: {node: gw-b, message: main-mode 4/6, drop: true}
//	fault: {node: gw-a, message: main-mode 5/6, corrupt: hash, after-encryption: true}
//	fault: {node: gw-a, esp: replay, count: 3}
type FaultStep struct {
	Timing     `yaml:",inline"`
	Node       string `yaml:"node" lab:"required"`
	Connection string `yaml:"connection"` // only this connection's messages
	Message    string `yaml:"message"`    // main-mode 4/6, aggressive-mode 2/3, quick-mode 1/3, informational, dpd, transaction

	Drop            bool     `yaml:"drop"`
	Delay           Duration `yaml:"delay"`
	Duplicate       bool     `yaml:"duplicate"`
	Reorder         bool     `yaml:"reorder"`
	Corrupt         string   `yaml:"corrupt"`          // a payload: hash, sig, nonce, ke, sa, id, nat-d, spi
	AfterEncryption bool     `yaml:"after-encryption"` // corrupt the datagram as sent, not the message before encryption
	Omit            string   `yaml:"omit"`             // a payload
	Replay          bool     `yaml:"replay"`
	Cookie          string   `yaml:"cookie"` // zero or random
	Forge           string   `yaml:"forge"`  // delete or initial-contact; without message, at once
	ESP             string   `yaml:"esp"`    // corrupt, replay, wrong-spi, reorder or truncate
	Hold            Duration `yaml:"hold"`   // reorder, replay: the longest a datagram is held (default 1s)
	Clear           bool     `yaml:"clear"`  // disarm the node's faults

	Count int      `yaml:"count"` // the next N matches
	Nth   int      `yaml:"nth"`   // only the nth match
	Every bool     `yaml:"every"` // every match
	For   Duration `yaml:"for"`   // every match for this long
}

// FaultActions are the keys of a fault step that name its action.
var FaultActions = []string{"drop", "delay", "duplicate", "reorder", "corrupt", "omit", "replay", "cookie", "forge", "esp", "clear"}

// Fault turns the step into the fault it arms; clear reports a `clear: true`
// step, which arms nothing. Errors are *fault.FieldError naming the key.
func (s *FaultStep) Fault() (f fault.Fault, clear bool, err error) {
	f = fault.Fault{Node: s.Node, Plane: fault.IKE, Conn: s.Connection, After: s.AfterEncryption, Delay: s.Hold.Duration,
		Occurrence: fault.Occurrence{Count: s.Count, Nth: s.Nth, Every: s.Every, For: s.For.Duration}}
	var actions []string
	set := func(on bool, name string, a fault.Action) {
		if on {
			actions = append(actions, name)
			f.Action = a
		}
	}
	set(s.Drop, "drop", fault.Drop)
	set(s.Delay.Duration > 0, "delay", fault.Delay)
	set(s.Duplicate, "duplicate", fault.Duplicate)
	set(s.Reorder, "reorder", fault.Reorder)
	set(s.Corrupt != "", "corrupt", fault.Corrupt)
	set(s.Omit != "", "omit", fault.Omit)
	set(s.Replay, "replay", fault.Replay)
	set(s.Cookie != "", "cookie", fault.Cookie)
	set(s.Forge != "", "forge", fault.Forge)
	set(s.ESP != "", "esp", fault.Action(s.ESP))
	set(s.Clear, "clear", "")
	switch {
	case len(actions) == 0:
		return f, false, &fault.FieldError{Err: fmt.Errorf("a fault needs one action: %s", strings.Join(FaultActions, ", "))}
	case len(actions) > 1:
		return f, false, &fault.FieldError{Name: actions[1], Err: fmt.Errorf("a fault has one action, not %s; write one step each", strings.Join(actions, " and "))}
	case s.Clear:
		return f, true, nil
	}
	switch f.Action {
	case fault.Delay:
		f.Delay = s.Delay.Duration
	case fault.Corrupt:
		f.Payload = fault.Payload(s.Corrupt)
	case fault.Omit:
		f.Payload = fault.Payload(s.Omit)
	}
	f.Cookie, f.Forge = s.Cookie, s.Forge
	if s.ESP != "" {
		f.Plane = fault.ESP
	}
	if s.Message != "" {
		m, err := fault.ParseMessage(s.Message)
		if err != nil {
			return f, false, &fault.FieldError{Name: "message", Err: err}
		}
		f.Message = m
	}
	return f, false, f.Validate()
}

// EventMatch selects events.
type EventMatch struct {
	Event      string `yaml:"event"`
	Node       string `yaml:"node"`
	Connection string `yaml:"connection"`
	Link       string `yaml:"link"`
}

// WaitStep pauses for a time, or until an event.
type WaitStep struct {
	Timing     `yaml:",inline"`
	EventMatch `yaml:",inline"`
	For        Duration `yaml:"for"`     // a plain pause
	Timeout    Duration `yaml:"timeout"` // for an event: give up after this long (default 60s); giving up fails the run
}

func (s *WaitStep) fromScalar(n *yaml.Node) error {
	return s.For.UnmarshalYAML(n)
}

// ExpectStep is an expectation; together they decide the exit code.
//
// Event expectations look at the events since the run of actions they follow
// began (in "tunnel-up a; tunnel-up b; expect ...", since tunnel-up a), and
// wait up to `within` for one that matches (or, with `absent: true`, require
// that none arrives during `within`).
type ExpectStep struct {
	Timing     `yaml:",inline"`
	EventMatch `yaml:",inline"`
	Within     Duration `yaml:"within"` // default 10s
	Absent     bool     `yaml:"absent"` // the event must not occur

	Ping       *PingStep `yaml:"ping"`        // run this ping and check its success rate
	Success    *Percent  `yaml:"success"`     // minimum ping success rate, default 100%
	MaxSuccess *Percent  `yaml:"max-success"` // maximum ping success rate: 0% expects a dead path

	Traffic *TrafficStep `yaml:"traffic"`  // run this traffic and check what arrived
	MaxLoss *Percent     `yaml:"max-loss"` // udp: the most packets that may be lost (default 0%); tcp: checksums must match

	SA      *SAMatch `yaml:"sa"`      // check an SA counter
	Counter string   `yaml:"counter"` // packets-in, packets-out, bytes-in, bytes-out, replay-drops, integrity-failures, policy-drops, other-drops, mtu (the outbound SA's inner MTU)
	Min     *int64   `yaml:"min"`
	Max     *int64   `yaml:"max"`

	Name string `yaml:"name"` // shown in the summary; default: a description of the expectation
}

// SAMatch selects the IPsec SAs of a connection on a node.
type SAMatch struct {
	Node       string `yaml:"node" lab:"required"`
	Connection string `yaml:"connection" lab:"required"`
}

// Percent is written "80%" (or a number from 0 to 100).
type Percent float64

// UnmarshalYAML parses a percentage.
func (p *Percent) UnmarshalYAML(n *yaml.Node) error {
	v, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(n.Value), "%"), 64)
	if n.Kind != yaml.ScalarNode || err != nil || v < 0 || v > 100 {
		return fmt.Errorf("%q is not a percentage from 0%% to 100%%", n.Value)
	}
	*p = Percent(v)
	return nil
}

// Action returns the step's action name (the YAML key) and value, and how many
// actions the step has (validation requires exactly one).
func (s *Step) Action() (name string, value any, count int) {
	v := reflect.ValueOf(s).Elem()
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := v.Field(i)
		if f.Kind() != reflect.Pointer || f.IsNil() {
			continue
		}
		tag, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if tag == "" || tag == "-" {
			continue
		}
		if count == 0 {
			name, value = tag, f.Interface()
		}
		count++
	}
	return name, value, count
}

// ActionNames lists the script's actions, for messages and the schema.
func ActionNames() []string {
	var out []string
	t := reflect.TypeOf(Step{})
	for i := 0; i < t.NumField(); i++ {
		if t.Field(i).Type.Kind() != reflect.Pointer {
			continue
		}
		tag, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		out = append(out, tag)
	}
	return out
}

// StepAt returns the `at` of the step's action.
func (s *Step) StepAt() Duration {
	_, v, _ := s.Action()
	if v == nil {
		return Duration{}
	}
	f := reflect.ValueOf(v).Elem().FieldByName("Timing")
	if !f.IsValid() {
		return Duration{}
	}
	return f.Interface().(Timing).At
}

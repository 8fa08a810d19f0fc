package web

import (
	"errors"
	"fmt"

	"github.com/ipseclab/ipseclab/events"
)

// Packet is one message or packet as the inspector shows it: a tree of
// layers, each with its fields, decoded from the bytes the event carries.
type Packet struct {
	Seq     uint64            `json:"seq"`
	Kind    string            `json:"kind"` // "ike", "esp" or "ah"
	Title   string            `json:"title"`
	Explain string            `json:"explain,omitempty"`
	Layers  []*Layer          `json:"layers"`
	Keys    map[string]string `json:"keys,omitempty"`
}

// Layer is one node of the tree: a header or a payload, its fields as
// [name, value] pairs in wire order, and what it contains.
type Layer struct {
	Name     string      `json:"name"`
	Fields   [][2]string `json:"fields"`
	Children []*Layer    `json:"children,omitempty"`
}

func (l *Layer) add(name, format string, args ...any) {
	l.Fields = append(l.Fields, [2]string{name, fmt.Sprintf(format, args...)})
}

func (l *Layer) child(name string) *Layer {
	c := &Layer{Name: name, Fields: [][2]string{}}
	l.Children = append(l.Children, c)
	return c
}

func newLayer(name string) *Layer { return &Layer{Name: name, Fields: [][2]string{}} }

// ErrNoPacket is the answer for an event that carries no packet.
var ErrNoPacket = errors.New("no packet")

// DecodePacket decodes the packet an event carries: an IKE message's
// plaintext (ike-message, ike-retransmit), or the first bytes of an ESP
// or AH packet and its decrypted inner packet (esp-packet). It never
// panics, whatever the event holds: a recorded file is input like any
// other.
func DecodePacket(e *events.Event) (*Packet, error) {
	switch {
	case e.IKE != nil && len(e.IKE.Plain) > 0:
		p := &Packet{Seq: e.Seq, Kind: "ike", Title: ikeTitle(e), Explain: e.Explain}
		p.Layers = decodeIKE(e)
		return p, nil
	case e.Packet != nil && (len(e.Packet.Wire) > 0 || len(e.Packet.Plain) > 0):
		p := &Packet{Seq: e.Seq, Kind: "esp", Title: e.Message, Explain: e.Explain}
		p.Layers, p.Kind = decodeESP(e)
		p.Title = espTitle(e, p.Kind)
		return p, nil
	}
	return nil, fmt.Errorf("event %d (%s) carries no packet: %w", e.Seq, e.Kind, ErrNoPacket)
}

var exchangeTitles = map[string]string{"main": "Main Mode", "aggressive": "Aggressive Mode", "quick": "Quick Mode",
	"informational": "Informational", "xauth": "XAUTH", "modecfg": "Mode Config", "transaction": "Transaction"}

// ikeTitle is "Main Mode 5/6", as the timeline names a message.
func ikeTitle(e *events.Event) string {
	t, ok := exchangeTitles[e.IKE.Exchange]
	if !ok {
		t = e.IKE.Exchange
	}
	if e.IKE.MsgTotal > 1 {
		t += fmt.Sprintf(" %d/%d", e.IKE.MsgNum, e.IKE.MsgTotal)
	}
	if e.Kind == events.IKERetransmit {
		t += " (retransmitted)"
	}
	return t
}

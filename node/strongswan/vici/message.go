// Package vici speaks strongSwan's Versatile IKE Control Interface, the
// protocol charon's vici plugin serves on a unix socket and swanctl uses. Its
// wire format is described in strongSwan's src/libcharon/plugins/vici/README.md:
// a 32-bit length-prefixed segment carries one packet; a packet is a type byte,
// an optional name, and a message; a message is a tree of sections, key/values
// and lists.
package vici

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
)

// Message element types (vici README, "Message format").
const (
	elemSectionStart = 1
	elemSectionEnd   = 2
	elemKeyValue     = 3
	elemListStart    = 4
	elemListItem     = 5
	elemListEnd      = 6
)

// Kind says what an Element holds.
type Kind int

const (
	KindValue   Kind = iota // a key/value pair
	KindList                // a named list of values
	KindSection             // a named sub-section
)

// Element is one named entry of a section, in the order it appeared on the
// wire. The order matters to vici: list-sa, for instance, streams child SAs in
// the order charon holds them.
type Element struct {
	Name    string
	Kind    Kind
	Value   string   // KindValue
	List    []string // KindList
	Section *Message // KindSection
}

// Message is a section: the implicit root section of a request, response or
// event, or a named sub-section of one.
type Message struct {
	Elements []Element
}

// NewMessage returns an empty message.
func NewMessage() *Message { return &Message{} }

// Set appends a key/value pair. vici encodes every value, numbers included, as a
// string.
func (m *Message) Set(name, value string) *Message {
	m.Elements = append(m.Elements, Element{Name: name, Kind: KindValue, Value: value})
	return m
}

// SetList appends a named list.
func (m *Message) SetList(name string, items ...string) *Message {
	m.Elements = append(m.Elements, Element{Name: name, Kind: KindList, List: items})
	return m
}

// SetSection appends a named sub-section.
func (m *Message) SetSection(name string, s *Message) *Message {
	m.Elements = append(m.Elements, Element{Name: name, Kind: KindSection, Section: s})
	return m
}

func (m *Message) find(name string, kind Kind) *Element {
	if m == nil {
		return nil
	}
	for i := range m.Elements {
		if m.Elements[i].Name == name && m.Elements[i].Kind == kind {
			return &m.Elements[i]
		}
	}
	return nil
}

// Value returns the value of a key, or "" when there is none.
func (m *Message) Value(name string) string {
	if e := m.find(name, KindValue); e != nil {
		return e.Value
	}
	return ""
}

// Has reports whether a key/value pair of that name exists.
func (m *Message) Has(name string) bool { return m.find(name, KindValue) != nil }

// List returns a named list, or nil.
func (m *Message) List(name string) []string {
	if e := m.find(name, KindList); e != nil {
		return e.List
	}
	return nil
}

// Section returns a named sub-section, or nil.
func (m *Message) Section(name string) *Message {
	if e := m.find(name, KindSection); e != nil {
		return e.Section
	}
	return nil
}

// Sections returns the sub-sections in wire order.
func (m *Message) Sections() []Element {
	if m == nil {
		return nil
	}
	var out []Element
	for _, e := range m.Elements {
		if e.Kind == KindSection {
			out = append(out, e)
		}
	}
	return out
}

// Success interprets the usual command reply {success = yes|no, errmsg = ...}.
func (m *Message) Success() error {
	if m.Value("success") == "yes" {
		return nil
	}
	if msg := m.Value("errmsg"); msg != "" {
		return errors.New(msg)
	}
	return errors.New("command failed without an error message")
}

// String renders the message in the pseudo-markup of the vici README, for
// error messages and debugging.
func (m *Message) String() string {
	var b strings.Builder
	m.format(&b)
	return b.String()
}

func (m *Message) format(b *strings.Builder) {
	b.WriteString("{")
	for i, e := range m.Elements {
		if i > 0 {
			b.WriteString(" ")
		}
		b.WriteString(e.Name)
		switch e.Kind {
		case KindValue:
			b.WriteString("=")
			b.WriteString(e.Value)
		case KindList:
			b.WriteString("=[")
			b.WriteString(strings.Join(e.List, " "))
			b.WriteString("]")
		case KindSection:
			e.Section.format(b)
		}
	}
	b.WriteString("}")
}

// MarshalBinary encodes the message as a sequence of elements.
func (m *Message) MarshalBinary() ([]byte, error) {
	return m.appendTo(nil)
}

func (m *Message) appendTo(b []byte) ([]byte, error) {
	var err error
	for _, e := range m.Elements {
		switch e.Kind {
		case KindValue:
			b = append(b, elemKeyValue)
			if b, err = appendName(b, e.Name); err != nil {
				return nil, err
			}
			if b, err = appendValue(b, e.Value); err != nil {
				return nil, fmt.Errorf("key %q: %w", e.Name, err)
			}
		case KindList:
			b = append(b, elemListStart)
			if b, err = appendName(b, e.Name); err != nil {
				return nil, err
			}
			for _, item := range e.List {
				b = append(b, elemListItem)
				if b, err = appendValue(b, item); err != nil {
					return nil, fmt.Errorf("list %q: %w", e.Name, err)
				}
			}
			b = append(b, elemListEnd)
		case KindSection:
			b = append(b, elemSectionStart)
			if b, err = appendName(b, e.Name); err != nil {
				return nil, err
			}
			if e.Section != nil {
				if b, err = e.Section.appendTo(b); err != nil {
					return nil, err
				}
			}
			b = append(b, elemSectionEnd)
		default:
			return nil, fmt.Errorf("element %q has unknown kind %d", e.Name, e.Kind)
		}
	}
	return b, nil
}

// Names carry an 8-bit length, values a 16-bit one (vici README).
func appendName(b []byte, name string) ([]byte, error) {
	if len(name) == 0 || len(name) > 0xff {
		return nil, fmt.Errorf("name %q: length must be 1..255", name)
	}
	b = append(b, byte(len(name)))
	return append(b, name...), nil
}

func appendValue(b []byte, v string) ([]byte, error) {
	if len(v) > 0xffff {
		return nil, fmt.Errorf("value of %d bytes exceeds 65535", len(v))
	}
	b = binary.BigEndian.AppendUint16(b, uint16(len(v)))
	return append(b, v...), nil
}

// maxDepth bounds section nesting. Real messages nest a handful of levels; the
// bound keeps a hostile peer from building a deep tree out of 2-byte sections.
const maxDepth = 32

// ParseMessage decodes a message. Sections must balance, lists must close, and
// list items may appear only inside lists, as the README requires.
func ParseMessage(data []byte) (*Message, error) {
	root := &Message{}
	stack := []*Message{root}
	var list *Element // the open list, if any
	r := reader{data: data}
	for !r.done() {
		t, _ := r.byte()
		cur := stack[len(stack)-1]
		if list != nil && t != elemListItem && t != elemListEnd {
			return nil, fmt.Errorf("vici: element type %d inside list %q", t, list.Name)
		}
		switch t {
		case elemSectionStart:
			name, err := r.name()
			if err != nil {
				return nil, err
			}
			if len(stack) > maxDepth {
				return nil, fmt.Errorf("vici: sections nested deeper than %d", maxDepth)
			}
			s := &Message{}
			cur.Elements = append(cur.Elements, Element{Name: name, Kind: KindSection, Section: s})
			stack = append(stack, s)
		case elemSectionEnd:
			if len(stack) == 1 {
				return nil, errors.New("vici: section end without a section")
			}
			stack = stack[:len(stack)-1]
		case elemKeyValue:
			name, err := r.name()
			if err != nil {
				return nil, err
			}
			v, err := r.value()
			if err != nil {
				return nil, err
			}
			cur.Elements = append(cur.Elements, Element{Name: name, Kind: KindValue, Value: v})
		case elemListStart:
			name, err := r.name()
			if err != nil {
				return nil, err
			}
			cur.Elements = append(cur.Elements, Element{Name: name, Kind: KindList})
			list = &cur.Elements[len(cur.Elements)-1]
		case elemListItem:
			if list == nil {
				return nil, errors.New("vici: list item outside a list")
			}
			v, err := r.value()
			if err != nil {
				return nil, err
			}
			list.List = append(list.List, v)
		case elemListEnd:
			if list == nil {
				return nil, errors.New("vici: list end without a list")
			}
			list = nil
		default:
			return nil, fmt.Errorf("vici: unknown element type %d", t)
		}
	}
	if list != nil {
		return nil, fmt.Errorf("vici: list %q not closed", list.Name)
	}
	if len(stack) != 1 {
		return nil, errors.New("vici: section not closed")
	}
	return root, nil
}

type reader struct {
	data []byte
	off  int
}

func (r *reader) done() bool { return r.off >= len(r.data) }

func (r *reader) byte() (byte, error) {
	if r.off >= len(r.data) {
		return 0, errors.New("vici: truncated message")
	}
	b := r.data[r.off]
	r.off++
	return b, nil
}

func (r *reader) bytes(n int) ([]byte, error) {
	if n > len(r.data)-r.off {
		return nil, errors.New("vici: truncated message")
	}
	b := r.data[r.off : r.off+n]
	r.off += n
	return b, nil
}

func (r *reader) name() (string, error) {
	n, err := r.byte()
	if err != nil {
		return "", err
	}
	b, err := r.bytes(int(n))
	return string(b), err
}

func (r *reader) value() (string, error) {
	l, err := r.bytes(2)
	if err != nil {
		return "", err
	}
	b, err := r.bytes(int(binary.BigEndian.Uint16(l)))
	return string(b), err
}

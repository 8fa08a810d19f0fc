package netem

import (
	"errors"
	"fmt"
	"math/bits"
	"strconv"
	"strings"
)

// Dir is one direction of a link.
type Dir int

const (
	AtoB Dir = iota // frames sent by the link's first endpoint
	BtoA            // frames sent by its second endpoint
)

func (d Dir) String() string {
	if d == BtoA {
		return "b-to-a"
	}
	return "a-to-b"
}

// Field names one impairment setting.
type Field uint16

// The settings, in the order tc prints them. The first ten belong to a
// direction (Netem); MTU and Down to the link (Params).
const (
	FieldLimit Field = 1 << iota
	FieldDelay
	FieldJitter
	FieldDistribution
	FieldLoss
	FieldDuplicate
	FieldReorder
	FieldCorrupt
	FieldRate
	FieldGap
	FieldMTU
	FieldDown

	netemFields = FieldMTU - 1
	linkFields  = FieldMTU | FieldDown
)

// Flag describes one setting as a command-line flag and lab-file key.
type Flag struct {
	Name  string // the key and the flag: "delay" (--delay)
	Field Field
	Usage string
	Bool  bool // a switch: --down alone means --down=true
}

var flagList = []Flag{
	{"limit", FieldLimit, "frames a direction may hold, delayed or waiting for the rate; more are tail-dropped (netem's default 1000)", false},
	{"delay", FieldDelay, "one-way delay added to every frame, e.g. 30ms", false},
	{"jitter", FieldJitter, "variation of the delay, e.g. 5ms (± for uniform, σ for normal); never reorders", false},
	{"distribution", FieldDistribution, "shape of the jitter: uniform (default) or normal", false},
	{"loss", FieldLoss, `share of frames lost: 1%, or Gilbert-Elliott bursts "gemodel P R 1-H 1-K"`, false},
	{"duplicate", FieldDuplicate, "share of frames sent twice, e.g. 1%", false},
	{"reorder", FieldReorder, "share of frames sent at once, overtaking delayed ones, e.g. 25% (needs a delay)", false},
	{"corrupt", FieldCorrupt, "share of frames with one bit flipped in the IP packet, e.g. 0.1%", false},
	{"rate", FieldRate, "bit rate limit, tc units: 10mbit, 1gbit, 500kbit (bps = bytes/s)", false},
	{"gap", FieldGap, "reorder every GAP-th frame rather than any (netem's gap)", false},
	{"mtu", FieldMTU, "drop, and count, frames whose IP packet exceeds this size (a silent PMTU black hole)", false},
	{"down", FieldDown, "take the link down (true) or up (false): drops every frame, carrier off", true},
}

// Flags lists the settings in tc's order, for a CLI to register one --NAME
// flag each and pass what was given to Change.Set.
func Flags() []Flag { return append([]Flag(nil), flagList...) }

func (f Field) String() string {
	var names []string
	for _, fl := range flagList {
		if f&fl.Field != 0 {
			names = append(names, fl.Name)
		}
	}
	return strings.Join(names, ",")
}

// Change is a run-time change of a link's impairment. It names some settings,
// in one or both directions, and their new values.
//
// The merge rule: applying a Change sets exactly the settings it names and
// leaves every other setting as it was — changes merge field by field, they
// never replace the whole impairment. `--loss 20%` on a link with `delay: 30ms`
// gives delay 30ms and loss 20%. Loss is one setting whatever its model:
// `--loss 5%` replaces a Gilbert-Elliott model and the reverse. To remove a
// setting, set it to zero (`--loss 0%`, `--delay 0`). `--reset`
// (impair.Link.Reset) returns the link to the settings it was created with,
// i.e. the lab file's.
type Change struct {
	Value Params // the new values; only the named fields are read
	AtoB  Field  // direction settings named for a-to-b
	BtoA  Field  // direction settings named for b-to-a
	Link  Field  // FieldMTU, FieldDown
}

// IsZero reports whether the change names nothing.
func (c Change) IsZero() bool { return c.AtoB|c.BtoA|c.Link == 0 }

// Only restricts the change to one direction: direction settings named for the
// other one are dropped.
func (c Change) Only(d Dir) Change {
	if d == AtoB {
		c.BtoA = 0
	} else {
		c.AtoB = 0
	}
	return c
}

// Set names a setting and parses its value: "delay" "30ms", "loss" "20%",
// "down" "true". A direction setting applies to both directions unless its
// name is prefixed "a-to-b." or "b-to-a.". "up" is accepted as the opposite of
// "down". Errors are *FieldError.
func (c *Change) Set(name, value string) error {
	dirs := []Dir{AtoB, BtoA}
	key := strings.ToLower(strings.TrimLeft(strings.TrimSpace(name), "-"))
	if d, rest, ok := cutDir(key); ok {
		dirs, key = []Dir{d}, rest
	}
	if key == "up" {
		up, err := strconv.ParseBool(value)
		if err != nil {
			return fieldErrorf(name, "%q is not true or false", value)
		}
		key, value = "down", strconv.FormatBool(!up)
	}
	f, ok := fieldByName(key)
	if !ok {
		return fieldErrorf(name, "is not an impairment setting (known: %s)", knownNames())
	}
	if f&linkFields != 0 && len(dirs) == 1 {
		return fieldErrorf(name, "belongs to the link, not to one direction")
	}
	var tmp Params
	if err := parseInto(&tmp, f, value); err != nil {
		return &FieldError{Name: name, Msg: err.Error()}
	}
	if f&linkFields != 0 {
		c.Link |= f
		if f == FieldMTU {
			c.Value.MTU = tmp.MTU
		} else {
			c.Value.Down = tmp.Down
		}
		return nil
	}
	for _, d := range dirs {
		copyFields(c.Value.dir(d), tmp.AtoB, f)
		if d == AtoB {
			c.AtoB |= f
		} else {
			c.BtoA |= f
		}
	}
	return nil
}

func cutDir(key string) (Dir, string, bool) {
	for _, d := range []Dir{AtoB, BtoA} {
		if rest, ok := strings.CutPrefix(key, d.String()+"."); ok {
			return d, rest, true
		}
	}
	return 0, key, false
}

func fieldByName(name string) (Field, bool) {
	for _, fl := range flagList {
		if fl.Name == name {
			return fl.Field, true
		}
	}
	return 0, false
}

func knownNames() string {
	var names []string
	for _, fl := range flagList {
		names = append(names, fl.Name)
	}
	return strings.Join(names, ", ")
}

// parseInto parses one setting's value into p (direction settings go to AtoB).
func parseInto(p *Params, f Field, value string) error {
	n := &p.AtoB
	var err error
	switch f {
	case FieldLimit:
		n.Limit, err = parseCount(value)
	case FieldDelay:
		n.Delay, err = ParseDuration(value)
	case FieldJitter:
		n.Jitter, err = ParseDuration(value)
	case FieldDistribution:
		n.Distribution, err = ParseDistribution(value)
	case FieldLoss:
		n.Loss, err = ParseLoss(value)
	case FieldDuplicate:
		n.Duplicate, err = ParsePercent(value)
	case FieldReorder:
		n.Reorder, err = ParsePercent(value)
	case FieldCorrupt:
		n.Corrupt, err = ParsePercent(value)
	case FieldRate:
		n.Rate, err = ParseRate(value)
	case FieldGap:
		n.Gap, err = parseCount(value)
	case FieldMTU:
		p.MTU, err = parseCount(value)
	case FieldDown:
		p.Down, err = strconv.ParseBool(strings.TrimSpace(value))
		if err != nil {
			err = fmt.Errorf("%q is not true or false", value)
		}
	}
	return err
}

func parseCount(s string) (int, error) {
	v, err := strconv.ParseUint(strings.TrimSpace(s), 10, 31)
	if err != nil {
		return 0, fmt.Errorf("%q is not a whole number of at least 0", s)
	}
	return int(v), nil
}

// copyFields copies the named direction settings from src to dst.
func copyFields(dst *Netem, src Netem, f Field) {
	for f != 0 {
		bit := Field(1) << bits.TrailingZeros16(uint16(f))
		f &^= bit
		switch bit {
		case FieldLimit:
			dst.Limit = src.Limit
		case FieldDelay:
			dst.Delay = src.Delay
		case FieldJitter:
			dst.Jitter = src.Jitter
		case FieldDistribution:
			dst.Distribution = src.Distribution
		case FieldLoss:
			dst.Loss = src.Loss
		case FieldDuplicate:
			dst.Duplicate = src.Duplicate
		case FieldReorder:
			dst.Reorder = src.Reorder
		case FieldCorrupt:
			dst.Corrupt = src.Corrupt
		case FieldRate:
			dst.Rate = src.Rate
		case FieldGap:
			dst.Gap = src.Gap
		}
	}
}

// Apply returns p with the change's settings merged in (see Change).
func (c Change) Apply(p Params) Params {
	copyFields(&p.AtoB, c.Value.AtoB, c.AtoB&netemFields)
	copyFields(&p.BtoA, c.Value.BtoA, c.BtoA&netemFields)
	if c.Link&FieldMTU != 0 {
		p.MTU = c.Value.MTU
	}
	if c.Link&FieldDown != 0 {
		p.Down = c.Value.Down
	}
	return p
}

// String lists the named settings with their values, tc style: "delay 50ms
// loss 20%", "a-to-b: loss 5%; mtu 1400".
func (c Change) String() string {
	dirPart := func(n Netem, f Field) string {
		var out []string
		for _, fl := range flagList {
			if f&fl.Field == 0 || fl.Field&netemFields == 0 {
				continue
			}
			out = append(out, fl.Name+" "+fieldValue(n, fl.Field))
		}
		return strings.Join(out, " ")
	}
	var parts []string
	if c.AtoB == c.BtoA && c.Value.AtoB == c.Value.BtoA {
		if s := dirPart(c.Value.AtoB, c.AtoB); s != "" {
			parts = append(parts, s)
		}
	} else {
		for _, d := range []Dir{AtoB, BtoA} {
			f := c.AtoB
			if d == BtoA {
				f = c.BtoA
			}
			if s := dirPart(c.Value.Dir(d), f); s != "" {
				parts = append(parts, d.String()+": "+s)
			}
		}
	}
	if c.Link&FieldMTU != 0 {
		parts = append(parts, fmt.Sprintf("mtu %d", c.Value.MTU))
	}
	if c.Link&FieldDown != 0 {
		parts = append(parts, fmt.Sprintf("down %t", c.Value.Down))
	}
	return strings.Join(parts, "; ")
}

func fieldValue(n Netem, f Field) string {
	switch f {
	case FieldLimit:
		return strconv.Itoa(n.QueueLimit())
	case FieldDelay:
		return n.Delay.String()
	case FieldJitter:
		return n.Jitter.String()
	case FieldDistribution:
		if n.Distribution == "" {
			return string(Uniform)
		}
		return string(n.Distribution)
	case FieldLoss:
		if n.Loss.IsZero() && !n.Loss.GE {
			return "0%"
		}
		return strings.TrimPrefix(n.Loss.String(), "loss ")
	case FieldDuplicate:
		return n.Duplicate.String()
	case FieldReorder:
		return n.Reorder.String()
	case FieldCorrupt:
		return n.Corrupt.String()
	case FieldRate:
		return n.Rate.String()
	case FieldGap:
		return strconv.Itoa(n.Gap)
	}
	return ""
}

// ParseChange reads settings from command-line words: "--delay 50ms",
// "--loss=20%", "--down", or tc's style without dashes, "delay 50ms loss 20%".
// The CLI `ipseclab impair LINK --delay 50ms --loss 20%` and the script runner
// use it; see Change for the merge rule.
func ParseChange(args []string) (Change, error) {
	var c Change
	var errs []error
	for i := 0; i < len(args); i++ {
		name, value, hasValue := strings.Cut(args[i], "=")
		key := strings.ToLower(strings.TrimLeft(name, "-"))
		_, bare, _ := cutDir(key)
		f, known := fieldByName(bare)
		isSwitch := bare == "up" || (known && f == FieldDown)
		if !hasValue {
			switch {
			case isSwitch && (i+1 >= len(args) || !isBoolWord(args[i+1])):
				value = "true"
			case i+1 < len(args):
				i++
				value = args[i]
			default:
				errs = append(errs, fieldErrorf(name, "needs a value"))
				continue
			}
		}
		if err := c.Set(name, value); err != nil {
			errs = append(errs, err)
		}
	}
	return c, errors.Join(errs...)
}

func isBoolWord(s string) bool {
	_, err := strconv.ParseBool(s)
	return err == nil
}

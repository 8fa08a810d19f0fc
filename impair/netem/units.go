package netem

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"

	"gopkg.in/yaml.v3"
)

// The value types below read and print the units of tc(8) and tc-netem(8), so
// that whatever a user knows from `tc qdisc add ... netem` works here, and
// what ipseclab prints can be pasted into tc.

// Percent is a probability in percent, 0 to 100 ("1%", "0.5%"). tc also reads a
// bare number as percent; ipseclab insists on the sign except for 0, because
// "loss: 0.5" is too easily meant as a fraction.
type Percent float64

// ParsePercent reads "20%", "0.5%" or "0".
func ParsePercent(s string) (Percent, error) {
	s = strings.TrimSpace(s)
	num, hasSign := strings.CutSuffix(s, "%")
	v, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("%q is not a percentage (write e.g. 1%% or 0.5%%)", s)
	}
	if !hasSign && v != 0 {
		return 0, fmt.Errorf("%q needs a percent sign: write %s%% (a percentage, as in tc netem)", s, num)
	}
	if v < 0 || v > 100 {
		return 0, fmt.Errorf("%s is outside 0%% to 100%%", s)
	}
	return Percent(v), nil
}

// Prob is the percentage as a probability, 0 to 1.
func (p Percent) Prob() float64 { return float64(p) / 100 }

// String prints like tc: "%g%%".
func (p Percent) String() string { return strconv.FormatFloat(float64(p), 'g', 6, 64) + "%" }

// MarshalText is lossless, unlike String.
func (p Percent) MarshalText() ([]byte, error) {
	return []byte(strconv.FormatFloat(float64(p), 'g', -1, 64) + "%"), nil
}

// UnmarshalText reads what ParsePercent reads.
func (p *Percent) UnmarshalText(b []byte) error {
	v, err := ParsePercent(string(b))
	if err == nil {
		*p = v
	}
	return err
}

// UnmarshalYAML reads a scalar such as 1% and reports errors at the node.
func (p *Percent) UnmarshalYAML(n *yaml.Node) error {
	return scalarYAML(n, "", func(s string) error { return p.UnmarshalText([]byte(s)) })
}

// Duration is a time in tc's units (s, sec, ms, msec, us, usec) or Go's (ns, µs,
// m, h, and composites like 1m30s).
type Duration time.Duration

// tcTimeUnits are the suffixes of tc's get_time.
var tcTimeUnits = map[string]time.Duration{
	"s": time.Second, "sec": time.Second, "secs": time.Second,
	"ms": time.Millisecond, "msec": time.Millisecond, "msecs": time.Millisecond,
	"us": time.Microsecond, "usec": time.Microsecond, "usecs": time.Microsecond, "µs": time.Microsecond,
	"ns": time.Nanosecond,
}

// ParseDuration reads "30ms", "1.5s", "500us" or "0". Negative times are errors.
func ParseDuration(s string) (Duration, error) {
	s = strings.TrimSpace(s)
	if s == "0" {
		return 0, nil
	}
	i := strings.IndexFunc(s, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if i > 0 {
		if scale, ok := tcTimeUnits[strings.ToLower(s[i:])]; ok {
			v, err := strconv.ParseFloat(s[:i], 64)
			if err == nil && v*float64(scale) < math.MaxInt64 {
				return Duration(math.Round(v * float64(scale))), nil
			}
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		if _, numErr := strconv.ParseFloat(s, 64); numErr == nil {
			return 0, fmt.Errorf("%q needs a unit: write e.g. %sms", s, s)
		}
		return 0, fmt.Errorf("%q is not a time (write e.g. 30ms, 1.5s, 500us)", s)
	}
	if d < 0 {
		return 0, fmt.Errorf("%s is negative", s)
	}
	return Duration(d), nil
}

// Std is the time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// String prints like tc's print_time64: three significant digits in s, ms, us or ns.
func (d Duration) String() string {
	v := float64(d)
	switch {
	case d >= Duration(time.Second):
		return fmt.Sprintf("%.3gs", v/1e9)
	case d >= Duration(time.Millisecond):
		return fmt.Sprintf("%.3gms", v/1e6)
	case d >= Duration(time.Microsecond):
		return fmt.Sprintf("%.3gus", v/1e3)
	default:
		return fmt.Sprintf("%dns", int64(d))
	}
}

// MarshalText is lossless (Go's notation), unlike String.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText reads what ParseDuration reads.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := ParseDuration(string(b))
	if err == nil {
		*d = v
	}
	return err
}

// UnmarshalYAML reads a scalar such as 30ms and reports errors at the node.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	return scalarYAML(n, "", func(s string) error { return d.UnmarshalText([]byte(s)) })
}

// Rate is a bit rate in bits per second, read with tc's suffixes: bit, kbit,
// mbit, gbit, tbit (powers of 1000), kibit, mibit, gibit, tibit (powers of
// 1024), and the byte rates bps, kbps, mbps, gbps, tbps, kibps ... (tc's "bps" is
// bytes per second). Case does not matter.
type Rate uint64

var tcRateUnits = map[string]float64{
	"bit": 1, "kbit": 1e3, "mbit": 1e6, "gbit": 1e9, "tbit": 1e12,
	"kibit": 1 << 10, "mibit": 1 << 20, "gibit": 1 << 30, "tibit": 1 << 40,
	"bps": 8, "kbps": 8e3, "mbps": 8e6, "gbps": 8e9, "tbps": 8e12,
	"kibps": 8 << 10, "mibps": 8 << 20, "gibps": 8 << 30, "tibps": 8 << 40,
}

// ParseRate reads "10mbit", "1gbit", "500kbit", "2mbps" (bytes) or "0".
func ParseRate(s string) (Rate, error) {
	s = strings.TrimSpace(s)
	if s == "0" {
		return 0, nil
	}
	i := strings.IndexFunc(s, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if i == 0 {
		return 0, fmt.Errorf("%q is not a rate (write e.g. 10mbit, 1gbit, 500kbit)", s)
	}
	if i < 0 {
		return 0, fmt.Errorf("%q needs a unit: write e.g. %smbit (tc units: bit, kbit, mbit, gbit; bps is bytes/s)", s, s)
	}
	scale, ok := tcRateUnits[strings.ToLower(s[i:])]
	if !ok {
		return 0, fmt.Errorf("%q has an unknown unit %q (tc units: bit, kbit, mbit, gbit, tbit, kibit..., bps, kbps, mbps, gbps = bytes/s)", s, s[i:])
	}
	v, err := strconv.ParseFloat(s[:i], 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a rate (write e.g. 10mbit)", s)
	}
	bits := math.Round(v * scale)
	if bits >= math.MaxInt64 {
		return 0, fmt.Errorf("%s is too large a rate", s)
	}
	return Rate(bits), nil
}

// String prints like tc's print_rate: the largest of bit, Kbit, Mbit, Gbit, Tbit
// that keeps the number whole (below a million units).
func (r Rate) String() string {
	units := []string{"", "K", "M", "G", "T"}
	v, i := uint64(r), 0
	for ; i < len(units)-1; i++ {
		if v < 1000 || (v%1000 != 0 && v < 1000*1000) {
			break
		}
		v /= 1000
	}
	return strconv.FormatUint(v, 10) + units[i] + "bit"
}

// MarshalText is lossless: String when that reads back exactly, else bits.
func (r Rate) MarshalText() ([]byte, error) {
	if back, err := ParseRate(r.String()); err == nil && back == r {
		return []byte(r.String()), nil
	}
	return []byte(strconv.FormatUint(uint64(r), 10) + "bit"), nil
}

// UnmarshalText reads what ParseRate reads.
func (r *Rate) UnmarshalText(b []byte) error {
	v, err := ParseRate(string(b))
	if err == nil {
		*r = v
	}
	return err
}

// UnmarshalYAML reads a scalar such as 10mbit and reports errors at the node.
func (r *Rate) UnmarshalYAML(n *yaml.Node) error {
	return scalarYAML(n, "", func(s string) error { return r.UnmarshalText([]byte(s)) })
}

// Distribution is the shape of the jitter around the delay.
type Distribution string

const (
	// Uniform spreads the delay evenly over delay ± jitter. It is what the
	// netem kernel module does when tc is given no distribution table.
	Uniform Distribution = "uniform"
	// Normal draws delay + jitter × N(0,1): jitter is the standard deviation, as
	// with tc's "distribution normal" table.
	Normal Distribution = "normal"
)

// ParseDistribution reads "uniform" or "normal".
func ParseDistribution(s string) (Distribution, error) {
	switch d := Distribution(strings.ToLower(strings.TrimSpace(s))); d {
	case Uniform, Normal:
		return d, nil
	case "pareto", "paretonormal":
		return "", fmt.Errorf("%q is not supported (uniform or normal); netem's pareto tables are not reproduced", s)
	default:
		return "", fmt.Errorf("%q is not a distribution (uniform or normal)", s)
	}
}

// UnmarshalText reads what ParseDistribution reads.
func (d *Distribution) UnmarshalText(b []byte) error {
	v, err := ParseDistribution(string(b))
	if err == nil {
		*d = v
	}
	return err
}

// UnmarshalYAML reads uniform or normal and reports errors at the node.
func (d *Distribution) UnmarshalYAML(n *yaml.Node) error {
	return scalarYAML(n, "", func(s string) error { return d.UnmarshalText([]byte(s)) })
}

// scalarYAML passes a scalar node's text to parse and turns a failure into a
// FieldError at the node.
func scalarYAML(n *yaml.Node, field string, parse func(string) error) error {
	for n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind != yaml.ScalarNode {
		return &FieldError{Name: field, Line: n.Line, Column: n.Column, Msg: "needs a single value, not a list or mapping"}
	}
	if err := parse(n.Value); err != nil {
		return &FieldError{Name: field, Line: n.Line, Column: n.Column, Msg: err.Error()}
	}
	return nil
}

// The written forms of the units, as regular expressions in the dialect of
// JSON Schema (ECMA-262), so that an editor checks a lab file as the parsers
// above read it. They are built from the same unit tables.
var (
	// PercentPattern is what ParsePercent reads: "1%", "0.5 %", or a bare
	// zero.
	PercentPattern = `^` + percentRE + `$`
	// DurationPattern is what ParseDuration reads: a number with one of tc's
	// units (any case), Go's composite durations, or 0.
	DurationPattern = `^(0|` + numberRE + unitsRE(tcTimeUnits) + `|(` + numberRE + `(ns|us|µs|μs|ms|s|m|h))+)$`
	// RatePattern is what ParseRate reads: a number with one of tc's units
	// (any case), or 0.
	RatePattern = `^(0|` + numberRE + unitsRE(tcRateUnits) + `)$`
	// LossPattern is what ParseLoss reads: a percentage, "random P", or
	// "gemodel" with one to four percentages, bare or named from p on.
	LossPattern = `^(` + foldRE("random") + ` +)?` + percentRE + `$|^` + foldRE("gemodel") +
		`(( +` + percentArgRE + `){1,4}|( +` + foldRE("p") + ` +` + percentArgRE + `)( +(` +
		foldRE("p") + `|` + foldRE("r") + `|1-` + foldRE("h") + `|1-` + foldRE("k") + `) +` + percentArgRE + `)*)$`
)

const (
	numberRE     = `([0-9]+(\.[0-9]*)?|\.[0-9]+)`
	percentRE    = `(0+(\.0*)?|` + numberRE + ` *%)`
	percentArgRE = `(0+(\.0*)?|` + numberRE + `%)` // one of several fields: no space before %
)

// unitsRE is an alternation of a table's units, matched in any case as the
// parsers match them, longest first so that "msec" is not cut at "ms".
func unitsRE[V any](units map[string]V) string {
	names := make([]string, 0, len(units))
	for u := range units {
		names = append(names, u)
	}
	sort.Slice(names, func(i, j int) bool {
		if len(names[i]) != len(names[j]) {
			return len(names[i]) > len(names[j])
		}
		return names[i] < names[j]
	})
	for i, u := range names {
		names[i] = foldRE(u)
	}
	return "(" + strings.Join(names, "|") + ")"
}

// foldRE matches s in ASCII case-insensitively, as strings.ToLower and
// strings.EqualFold do for the units' letters: "ms" → "[mM][sS]".
func foldRE(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r < 0x80 && unicode.IsLetter(r) {
			b.WriteString("[" + string(unicode.ToLower(r)) + string(unicode.ToUpper(r)) + "]")
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

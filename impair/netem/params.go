package netem

import (
	"errors"
	"fmt"
	"strings"
)

// DefaultLimit is netem's default queue length in packets.
const DefaultLimit = 1000

// Netem is one direction's impairment, field for field the options of
// `tc qdisc add dev DEV root netem ...` (tc-netem(8)), without the correlation
// arguments. The zero value impairs nothing.
type Netem struct {
	// Delay is added to every frame; Jitter spreads it (± Jitter for the uniform
	// distribution, one standard deviation for the normal one). Frames never
	// overtake each other because of jitter: see package impair's documentation.
	Delay        Duration     `json:"delay,omitzero"`
	Jitter       Duration     `json:"jitter,omitzero"`
	Distribution Distribution `json:"distribution,omitzero"` // "" is Uniform, as in netem without a table
	Loss         Loss         `json:"loss,omitzero"`
	Duplicate    Percent      `json:"duplicate,omitzero"`
	// Reorder sends this share of frames at once, ahead of the held-back ones,
	// after every Gap-1 frames delayed normally (netem's "reorder P gap N";
	// Gap 0 means 1, as tc sets it).
	Reorder Percent `json:"reorder,omitzero"`
	Gap     int     `json:"gap,omitzero"`
	Corrupt Percent `json:"corrupt,omitzero"` // flips one random bit of the IP packet
	Rate    Rate    `json:"rate,omitzero"`    // serialization rate of the Ethernet frames; 0: none
	// Limit is how many frames the direction may hold (delayed or waiting for
	// the rate), as netem's limit: a frame arriving when it is full is dropped
	// (tail drop). 0 means DefaultLimit.
	Limit int `json:"limit,omitzero"`
}

// Params is a link's impairment: one Netem per direction, and what belongs to
// the link as a whole. Direction a-to-b carries the frames sent by the link's
// first endpoint.
type Params struct {
	AtoB Netem `json:"a-to-b"`
	BtoA Netem `json:"b-to-a"`
	// MTU drops, and counts, frames whose IP packet is larger, silently, like a
	// switch with a smaller MTU in the path (a PMTU black hole). The
	// interfaces' own MTU is the deployer's to set. 0: no limit.
	MTU int `json:"mtu,omitzero"`
	// Down drops every frame in both directions and takes both interfaces'
	// carrier down, as a pulled cable does.
	Down bool `json:"down,omitzero"`
}

// Both returns Params that impair both directions alike.
func Both(n Netem) Params { return Params{AtoB: n, BtoA: n} }

// Dir returns the settings of one direction.
func (p Params) Dir(d Dir) Netem {
	if d == BtoA {
		return p.BtoA
	}
	return p.AtoB
}

func (p *Params) dir(d Dir) *Netem {
	if d == BtoA {
		return &p.BtoA
	}
	return &p.AtoB
}

// Loss is netem's loss model: random (independent) loss, or the
// Gilbert-Elliott two-state model ("loss gemodel p r 1-h 1-k").
type Loss struct {
	// Random is the probability that each frame is lost (netem "loss random").
	Random Percent `json:"random,omitzero"`
	// GE selects the Gilbert-Elliott model with the four fields below, instead
	// of Random. The channel is GOOD or BAD; before each frame it moves
	// GOOD→BAD with probability P and BAD→GOOD with probability R, then loses
	// the frame with probability GoodLoss (netem's 1-k) in GOOD or BadLoss
	// (netem's 1-h) in BAD. Bursts last 1/R frames on average.
	GE       bool    `json:"gemodel,omitzero"`
	P        Percent `json:"p,omitzero"`
	R        Percent `json:"r,omitzero"`
	BadLoss  Percent `json:"1-h,omitzero"`
	GoodLoss Percent `json:"1-k,omitzero"`
}

// GEModel returns a Gilbert-Elliott loss with tc's argument order.
func GEModel(p, r, oneMinusH, oneMinusK Percent) Loss {
	return Loss{GE: true, P: p, R: r, BadLoss: oneMinusH, GoodLoss: oneMinusK}
}

// IsZero reports whether the loss model loses nothing for sure.
func (l Loss) IsZero() bool {
	if l.GE {
		return l.GoodLoss == 0 && (l.BadLoss == 0 || l.P == 0)
	}
	return l.Random == 0
}

// Mean is the long-run share of frames lost. For the Gilbert-Elliott model that
// is the stationary loss: πB = p/(p+r), mean = (1-πB)·(1-k) + πB·(1-h).
func (l Loss) Mean() float64 {
	if !l.GE {
		return l.Random.Prob()
	}
	p, r := l.P.Prob(), l.R.Prob()
	if p+r == 0 {
		return l.GoodLoss.Prob() // never leaves GOOD
	}
	bad := p / (p + r)
	return (1-bad)*l.GoodLoss.Prob() + bad*l.BadLoss.Prob()
}

// String prints the loss as tc qdisc show does ("loss 1%", "loss gemodel p 1%
// r 30% 1-h 100% 1-k 0%"), or "" for no loss.
func (l Loss) String() string {
	switch {
	case l.GE:
		return fmt.Sprintf("loss gemodel p %s r %s 1-h %s 1-k %s", l.P, l.R, l.BadLoss, l.GoodLoss)
	case l.Random != 0:
		return "loss " + l.Random.String()
	default:
		return ""
	}
}

// ParseLoss reads a loss as tc writes it after "loss": "1%", "random 1%",
// "gemodel P [R [1-H [1-K]]]" (tc's defaults R=100%, 1-H=100%, 1-K=0%), or the
// form tc qdisc show prints, "gemodel p 1% r 30% 1-h 100% 1-k 0%".
func ParseLoss(s string) (Loss, error) {
	f := strings.Fields(s)
	if len(f) == 0 {
		return Loss{}, errors.New("is empty (write e.g. 1% or \"gemodel 1% 30%\")")
	}
	switch strings.ToLower(f[0]) {
	case "random":
		if len(f) != 2 {
			return Loss{}, fmt.Errorf("%q: random takes one percentage", s)
		}
		f = f[1:]
		fallthrough
	default:
		if len(f) != 1 {
			return Loss{}, fmt.Errorf("%q is not a loss (write e.g. 1%% or \"gemodel 1%% 30%%\")", s)
		}
		p, err := ParsePercent(f[0])
		return Loss{Random: p}, err
	case "gemodel":
		l := GEModel(0, 100, 100, 0)
		fields := []*Percent{&l.P, &l.R, &l.BadLoss, &l.GoodLoss}
		names := []string{"p", "r", "1-h", "1-k"}
		args := f[1:]
		if len(args) == 0 {
			return Loss{}, fmt.Errorf("%q: gemodel needs at least p", s)
		}
		keyed := strings.EqualFold(args[0], "p")
		for i := 0; len(args) > 0; i++ {
			k := i
			if keyed {
				k = indexFold(names, args[0])
				if k < 0 || len(args) < 2 {
					return Loss{}, fmt.Errorf("%q: expected one of p, r, 1-h, 1-k followed by a percentage", s)
				}
				args = args[1:]
			} else if i >= len(fields) {
				return Loss{}, fmt.Errorf("%q: gemodel takes at most four percentages (p r 1-h 1-k)", s)
			}
			v, err := ParsePercent(args[0])
			if err != nil {
				return Loss{}, fmt.Errorf("gemodel %s: %w", names[k], err)
			}
			*fields[k] = v
			args = args[1:]
		}
		return l, nil
	}
}

func indexFold(list []string, s string) int {
	for i, v := range list {
		if strings.EqualFold(v, s) {
			return i
		}
	}
	return -1
}

// MarshalText writes the loss as ParseLoss reads it.
func (l Loss) MarshalText() ([]byte, error) {
	if l.GE {
		return []byte(strings.TrimPrefix(l.String(), "loss ")), nil
	}
	return l.Random.MarshalText()
}

// UnmarshalText reads what ParseLoss reads.
func (l *Loss) UnmarshalText(b []byte) error {
	v, err := ParseLoss(string(b))
	if err == nil {
		*l = v
	}
	return err
}

// QueueLimit is the limit netem applies: Limit, or DefaultLimit for 0.
func (n Netem) QueueLimit() int {
	if n.Limit == 0 {
		return DefaultLimit
	}
	return n.Limit
}

// ReorderGap is the gap netem applies: Gap, or 1 for 0, as tc sets it.
func (n Netem) ReorderGap() int {
	if n.Gap == 0 {
		return 1
	}
	return n.Gap
}

// String prints the settings as `tc qdisc show` prints a netem qdisc's
// options, in its order ("limit 1000 delay 30ms  5ms loss 1% ..."), plus the
// distribution when it is not the default, which tc does not print.
func (n Netem) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "limit %d", n.QueueLimit())
	if n.Delay > 0 || n.Jitter > 0 {
		fmt.Fprintf(&b, " delay %s", n.Delay)
		if n.Jitter > 0 {
			fmt.Fprintf(&b, "  %s", n.Jitter)
			if n.Distribution != "" && n.Distribution != Uniform {
				fmt.Fprintf(&b, " distribution %s", n.Distribution)
			}
		}
	}
	if s := n.Loss.String(); s != "" {
		b.WriteString(" " + s)
	}
	if n.Duplicate > 0 {
		fmt.Fprintf(&b, " duplicate %s", n.Duplicate)
	}
	if n.Reorder > 0 {
		fmt.Fprintf(&b, " reorder %s", n.Reorder)
	}
	if n.Corrupt > 0 {
		fmt.Fprintf(&b, " corrupt %s", n.Corrupt)
	}
	if n.Rate > 0 {
		fmt.Fprintf(&b, " rate %s", n.Rate)
	}
	if n.Reorder > 0 {
		fmt.Fprintf(&b, " gap %d", n.ReorderGap())
	}
	return b.String()
}

// String prints both directions (once when they are alike), then the link's
// own settings: "limit 1000 delay 30ms mtu 1400", or "a-to-b: limit 1000 loss
// 5%; b-to-a: limit 1000; down".
func (p Params) String() string {
	var parts []string
	if p.AtoB == p.BtoA {
		parts = append(parts, p.AtoB.String())
	} else {
		parts = append(parts, "a-to-b: "+p.AtoB.String(), "b-to-a: "+p.BtoA.String())
	}
	if p.MTU > 0 {
		parts = append(parts, fmt.Sprintf("mtu %d", p.MTU))
	}
	if p.Down {
		parts = append(parts, "down")
	}
	if p.AtoB == p.BtoA {
		return strings.Join(parts, " ")
	}
	return strings.Join(parts, "; ")
}

// Validate checks the settings. Each error is a *FieldError naming the setting
// as the lab file spells it, prefixed with the direction ("b-to-a.reorder")
// when the directions differ; errors.Join combines them.
func (p Params) Validate() error {
	var errs []error
	if p.AtoB == p.BtoA {
		errs = p.AtoB.validate("", errs)
	} else {
		errs = p.AtoB.validate(AtoB.String()+".", errs)
		errs = p.BtoA.validate(BtoA.String()+".", errs)
	}
	if p.MTU != 0 && (p.MTU < 68 || p.MTU > 65535) {
		errs = append(errs, fieldErrorf("mtu", "%d is not an MTU (68 to 65535, or 0 for none)", p.MTU))
	}
	return errors.Join(errs...)
}

// Validate checks one direction's settings; see Params.Validate.
func (n Netem) Validate() error { return errors.Join(n.validate("", nil)...) }

func (n Netem) validate(prefix string, errs []error) []error {
	bad := func(field, format string, args ...any) {
		errs = append(errs, fieldErrorf(prefix+field, format, args...))
	}
	percent := func(field string, v Percent) {
		if !(v >= 0 && v <= 100) { // also catches NaN
			bad(field, "%v is outside 0%% to 100%%", float64(v))
		}
	}
	if n.Delay < 0 {
		bad("delay", "is negative")
	}
	if n.Jitter < 0 {
		bad("jitter", "is negative")
	}
	switch n.Distribution {
	case "", Uniform, Normal:
	default:
		bad("distribution", "%q is not a distribution (uniform or normal)", n.Distribution)
	}
	if n.Loss.GE {
		if n.Loss.Random != 0 {
			bad("loss", "is both random and gemodel; netem has one loss model at a time")
		}
		percent("loss.gemodel.p", n.Loss.P)
		percent("loss.gemodel.r", n.Loss.R)
		percent("loss.gemodel.1-h", n.Loss.BadLoss)
		percent("loss.gemodel.1-k", n.Loss.GoodLoss)
	} else {
		percent("loss", n.Loss.Random)
	}
	percent("duplicate", n.Duplicate)
	percent("reorder", n.Reorder)
	percent("corrupt", n.Corrupt)
	if n.Reorder > 0 && n.Delay == 0 && n.Rate == 0 {
		bad("reorder", "needs a delay or a rate: only frames held back can be overtaken (netem: reordering not possible without specifying some delay)")
	}
	if n.Gap < 0 {
		bad("gap", "%d is negative", n.Gap)
	} else if n.Gap > 0 && n.Reorder == 0 {
		bad("gap", "needs reorder: gap is the distance between reordered frames (set gap 0 too when turning reorder off)")
	}
	if n.Limit < 0 {
		bad("limit", "%d is negative (0 means netem's default, %d)", n.Limit, DefaultLimit)
	}
	return errs
}

package netem

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParsePercent(t *testing.T) {
	good := map[string]Percent{"1%": 1, "0.5%": 0.5, "100%": 100, "0": 0, "0%": 0, " 20% ": 20}
	for s, want := range good {
		if got, err := ParsePercent(s); err != nil || got != want {
			t.Errorf("ParsePercent(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
	bad := map[string]string{"20": "percent sign", "101%": "outside", "-1%": "outside", "x%": "not a percentage", "NaN%": "not a percentage", "": "not a percentage"}
	for s, want := range bad {
		if _, err := ParsePercent(s); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParsePercent(%q) error %v, want one mentioning %q", s, err, want)
		}
	}
}

func TestParseDuration(t *testing.T) {
	good := map[string]time.Duration{
		"30ms": 30 * time.Millisecond, "1.5s": 1500 * time.Millisecond, "500us": 500 * time.Microsecond,
		"500usec": 500 * time.Microsecond, "2secs": 2 * time.Second, "1m30s": 90 * time.Second, "0": 0, "250µs": 250 * time.Microsecond,
	}
	for s, want := range good {
		if got, err := ParseDuration(s); err != nil || got.Std() != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", s, got.Std(), err, want)
		}
	}
	bad := map[string]string{"30": "needs a unit", "-5ms": "negative", "fast": "not a time"}
	for s, want := range bad {
		if _, err := ParseDuration(s); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseDuration(%q) error %v, want one mentioning %q", s, err, want)
		}
	}
}

func TestParseRate(t *testing.T) {
	good := map[string]Rate{
		"10mbit": 10e6, "1gbit": 1e9, "500kbit": 500e3, "10Mbit": 10e6, "2mbps": 16e6, "1kibit": 1024,
		"100bit": 100, "1.5gbit": 1.5e9, "0": 0, "1bps": 8,
	}
	for s, want := range good {
		if got, err := ParseRate(s); err != nil || got != want {
			t.Errorf("ParseRate(%q) = %d, %v; want %d", s, got, err, want)
		}
	}
	bad := map[string]string{"10": "needs a unit", "10furlongs": "unknown unit", "-1mbit": "not a rate", "mbit": "not a rate"}
	for s, want := range bad {
		if _, err := ParseRate(s); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseRate(%q) error %v, want one mentioning %q", s, err, want)
		}
	}
}

// The printed forms follow tc's print_rate, print_time64 and print_percent.
func TestUnitsPrintLikeTC(t *testing.T) {
	cases := map[string]string{
		Rate(10e6).String():                        "10Mbit",
		Rate(1e9).String():                         "1Gbit",
		Rate(1500e3).String():                      "1500Kbit",
		Rate(999).String():                         "999bit",
		Duration(30 * time.Millisecond).String():   "30ms",
		Duration(1500 * time.Microsecond).String(): "1.5ms",
		Duration(2 * time.Second).String():         "2s",
		Duration(250 * time.Microsecond).String():  "250us",
		Percent(0.5).String():                      "0.5%",
		Percent(100).String():                      "100%",
	}
	for got, want := range cases {
		if got != want {
			t.Errorf("printed %q, want %q", got, want)
		}
	}
}

func TestParseLoss(t *testing.T) {
	cases := map[string]Loss{
		"1%":                                  {Random: 1},
		"random 2.5%":                         {Random: 2.5},
		"gemodel 1%":                          GEModel(1, 100, 100, 0), // tc's defaults
		"gemodel 1% 30%":                      GEModel(1, 30, 100, 0),
		"gemodel 1% 30% 80% 0.1%":             GEModel(1, 30, 80, 0.1),
		"gemodel p 1% r 30% 1-h 80% 1-k 0.1%": GEModel(1, 30, 80, 0.1), // as tc qdisc show prints it
		"GEMODEL P 5% R 10%":                  GEModel(5, 10, 100, 0),
	}
	for s, want := range cases {
		got, err := ParseLoss(s)
		if err != nil || got != want {
			t.Errorf("ParseLoss(%q) = %+v, %v; want %+v", s, got, err, want)
		}
		// What String prints reads back the same.
		if back, err := ParseLoss(strings.TrimPrefix(got.String(), "loss ")); got.String() != "" && (err != nil || back != got) {
			t.Errorf("ParseLoss(String(%q)) = %+v, %v", s, back, err)
		}
	}
	for _, s := range []string{"", "gemodel", "gemodel 1% 2% 3% 4% 5%", "gemodel q 1%", "random", "1% 2%", "gemodel 1% x"} {
		if _, err := ParseLoss(s); err == nil {
			t.Errorf("ParseLoss(%q) accepted", s)
		}
	}
}

func TestLossMean(t *testing.T) {
	if m := (Loss{Random: 20}).Mean(); m != 0.2 {
		t.Errorf("random 20%% mean %v", m)
	}
	// p=1%, r=30%: πB = 0.01/0.31; loss 100% in BAD, 0 in GOOD.
	if m, want := GEModel(1, 30, 100, 0).Mean(), 0.01/0.31; abs(m-want) > 1e-12 {
		t.Errorf("gemodel mean %v, want %v", m, want)
	}
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

func TestNetemStringLikeTCQdiscShow(t *testing.T) {
	n := Netem{Delay: Duration(100 * time.Millisecond), Jitter: Duration(10 * time.Millisecond), Loss: Loss{Random: 0.3},
		Duplicate: 1, Reorder: 25, Gap: 5, Corrupt: 0.1, Rate: Rate(10e6)}
	want := "limit 1000 delay 100ms  10ms loss 0.3% duplicate 1% reorder 25% corrupt 0.1% rate 10Mbit gap 5"
	if got := n.String(); got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	if got := (Netem{}).String(); got != "limit 1000" {
		t.Errorf("zero netem prints %q", got)
	}
	n = Netem{Delay: Duration(30 * time.Millisecond), Jitter: Duration(5 * time.Millisecond), Distribution: Normal, Loss: GEModel(1, 30, 100, 0), Limit: 50}
	want = "limit 50 delay 30ms  5ms distribution normal loss gemodel p 1% r 30% 1-h 100% 1-k 0%"
	if got := n.String(); got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	p := Params{AtoB: Netem{Loss: Loss{Random: 5}}, MTU: 1400, Down: true}
	if got, want := p.String(), "a-to-b: limit 1000 loss 5%; b-to-a: limit 1000; mtu 1400; down"; got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	if got, want := Both(Netem{Delay: Duration(time.Millisecond)}).String(), "limit 1000 delay 1ms"; got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

func TestValidateNamesTheField(t *testing.T) {
	cases := []struct {
		p     Params
		field string
		says  string
	}{
		{Both(Netem{Reorder: 10}), "reorder", "needs a delay"},
		{Both(Netem{Gap: 3}), "gap", "needs reorder"},
		{Params{BtoA: Netem{Reorder: 10}}, "b-to-a.reorder", "needs a delay"},
		{Both(Netem{Duplicate: 120}), "duplicate", "outside"},
		{Both(Netem{Loss: Loss{Random: 5, GE: true, P: 1}}), "loss", "one loss model"},
		{Both(Netem{Loss: Loss{GE: true, P: 101}}), "loss.gemodel.p", "outside"},
		{Both(Netem{Distribution: "pareto"}), "distribution", "not a distribution"},
		{Both(Netem{Limit: -1}), "limit", "negative"},
		{Both(Netem{Delay: -1}), "delay", "negative"},
		{Params{MTU: 20}, "mtu", "not an MTU"},
	}
	for _, c := range cases {
		err := c.p.Validate()
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field() != c.field || !strings.Contains(err.Error(), c.says) {
			t.Errorf("%v: Validate() = %v; want a FieldError on %q saying %q", c.p, err, c.field, c.says)
		}
	}
	ok := []Params{{}, Both(Netem{Delay: Duration(time.Millisecond), Reorder: 25, Gap: 5}), Both(Netem{Rate: 1e6, Reorder: 1}), {MTU: 1280}}
	for _, p := range ok {
		if err := p.Validate(); err != nil {
			t.Errorf("%v: %v", p, err)
		}
	}
}

func TestParamsJSONRoundTrip(t *testing.T) {
	p := Params{
		AtoB: Netem{Delay: Duration(30 * time.Millisecond), Jitter: Duration(1234567), Loss: GEModel(1, 30, 100, 0.5), Rate: 1234567},
		BtoA: Netem{Loss: Loss{Random: 0.123456789}, Duplicate: 1, Reorder: 2, Gap: 3, Corrupt: 4, Limit: 7, Distribution: Normal},
		MTU:  1400, Down: true,
	}
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	var back Params
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	if back != p {
		t.Errorf("JSON round trip\n got %+v\nwant %+v\n(%s)", back, p, b)
	}
}

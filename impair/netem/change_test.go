package netem

import (
	"errors"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

func ms(n int) Duration { return Duration(time.Duration(n) * time.Millisecond) }

func TestParseChangeForms(t *testing.T) {
	want := Change{Value: Both(Netem{Delay: ms(50), Loss: Loss{Random: 20}}), AtoB: FieldDelay | FieldLoss, BtoA: FieldDelay | FieldLoss}
	for _, args := range [][]string{
		{"--delay", "50ms", "--loss", "20%"},
		{"--delay=50ms", "--loss=20%"},
		{"delay", "50ms", "loss", "20%"}, // tc's style
	} {
		c, err := ParseChange(args)
		if err != nil || c != want {
			t.Errorf("ParseChange(%q) = %+v, %v; want %+v", args, c, err, want)
		}
	}
	c, err := ParseChange([]string{"--down"})
	if err != nil || c.Link != FieldDown || !c.Value.Down {
		t.Errorf("--down: %+v, %v", c, err)
	}
	c, err = ParseChange([]string{"--up"})
	if err != nil || c.Link != FieldDown || c.Value.Down {
		t.Errorf("--up: %+v, %v", c, err)
	}
	c, err = ParseChange([]string{"--down", "false", "--mtu", "1400"})
	if err != nil || c.Link != FieldDown|FieldMTU || c.Value.Down || c.Value.MTU != 1400 {
		t.Errorf("--down false --mtu 1400: %+v, %v", c, err)
	}
	c, err = ParseChange([]string{"--b-to-a.loss", "gemodel 1% 30%"})
	if err != nil || c.AtoB != 0 || c.BtoA != FieldLoss || c.Value.BtoA.Loss != GEModel(1, 30, 100, 0) {
		t.Errorf("b-to-a.loss: %+v, %v", c, err)
	}
}

func TestParseChangeErrorsNameTheSetting(t *testing.T) {
	_, err := ParseChange([]string{"--delay", "fast", "--lose", "5%", "--loss"})
	var names []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var fe *FieldError
		if !errors.As(e, &fe) {
			t.Fatalf("%v is not a FieldError", e)
		}
		names = append(names, fe.Field())
	}
	if strings.Join(names, " ") != "--delay --lose --loss" {
		t.Errorf("errors name %q; all: %v", names, err)
	}
	if _, err := ParseChange([]string{"--a-to-b.mtu", "1400"}); err == nil || !strings.Contains(err.Error(), "belongs to the link") {
		t.Errorf("a direction's mtu: %v", err)
	}
}

// The merge rule of Change: named settings change, the others stay.
func TestChangeMerges(t *testing.T) {
	cur := Params{AtoB: Netem{Delay: ms(30), Loss: GEModel(1, 30, 100, 0)}, BtoA: Netem{Delay: ms(30)}, MTU: 1400}
	c, err := ParseChange([]string{"--loss", "20%", "--jitter", "5ms"})
	if err != nil {
		t.Fatal(err)
	}
	got := c.Apply(cur)
	want := Params{AtoB: Netem{Delay: ms(30), Jitter: ms(5), Loss: Loss{Random: 20}}, BtoA: Netem{Delay: ms(30), Jitter: ms(5), Loss: Loss{Random: 20}}, MTU: 1400}
	if got != want {
		t.Errorf("merged\n got %v\nwant %v", got, want)
	}
	// Only one direction.
	got = c.Only(BtoA).Apply(cur)
	if got.AtoB != cur.AtoB || got.BtoA.Loss.Random != 20 {
		t.Errorf("Only(b-to-a) changed %v", got)
	}
	// Clearing is setting to zero.
	c, _ = ParseChange([]string{"--delay", "0"})
	if got := c.Apply(cur); got.AtoB.Delay != 0 || got.AtoB.Loss != cur.AtoB.Loss {
		t.Errorf("--delay 0: %v", got)
	}
	if s := c.String(); s != "delay 0ns" {
		t.Errorf("String %q", s)
	}
	c, _ = ParseChange([]string{"--b-to-a.rate", "10mbit", "--down"})
	if s := c.String(); s != "b-to-a: rate 10Mbit; down true" {
		t.Errorf("String %q", s)
	}
}

func TestFlagsCoverEverySetting(t *testing.T) {
	var all Field
	for _, f := range Flags() {
		var c Change
		value := map[bool]string{true: "true", false: "1"}[f.Bool]
		switch f.Field {
		case FieldDelay, FieldJitter:
			value = "1ms"
		case FieldDistribution:
			value = "normal"
		case FieldLoss, FieldDuplicate, FieldReorder, FieldCorrupt:
			value = "1%"
		case FieldRate:
			value = "1mbit"
		case FieldMTU:
			value = "1400"
		}
		if err := c.Set(f.Name, value); err != nil {
			t.Errorf("Set(%s, %s): %v", f.Name, value, err)
		}
		if c.AtoB|c.Link != f.Field {
			t.Errorf("Set(%s) named %v", f.Name, c.AtoB|c.Link)
		}
		all |= f.Field
	}
	if all != netemFields|linkFields {
		t.Errorf("flags cover %v", all)
	}
}

func decode(t *testing.T, src string) (Params, error) {
	t.Helper()
	var doc struct {
		Impair Params `yaml:"impair"`
	}
	err := yaml.Unmarshal([]byte(src), &doc)
	return doc.Impair, err
}

func TestParamsFromYAML(t *testing.T) {
	p, err := decode(t, `
impair:
  delay: 10ms
  jitter: 2ms
  distribution: normal
  loss: 1%
  mtu: 1400
  b-to-a: {loss: "gemodel 1% 30% 100% 0%", rate: 10mbit}
  a-to-b:
    delay: 20ms
`)
	if err != nil {
		t.Fatal(err)
	}
	want := Params{
		AtoB: Netem{Delay: ms(20), Jitter: ms(2), Distribution: Normal, Loss: Loss{Random: 1}},
		BtoA: Netem{Delay: ms(10), Jitter: ms(2), Distribution: Normal, Loss: GEModel(1, 30, 100, 0), Rate: 10e6},
		MTU:  1400,
	}
	if p != want {
		t.Errorf("\n got %v\nwant %v", p, want)
	}
	p, err = decode(t, "impair: {loss: {gemodel: {p: 2%, r: 20%, 1-k: 0.5%}}, down: true}\n")
	if err != nil || p.AtoB.Loss != GEModel(2, 20, 100, 0.5) || p.BtoA != p.AtoB || !p.Down {
		t.Errorf("gemodel mapping: %v, %v", p, err)
	}
}

// Every error of an impair block is reported, each at its node.
func TestParamsYAMLErrorsPointAtTheNode(t *testing.T) {
	_, err := decode(t, `impair:
  delay: 30
  loss: 20
  speed: 10mbit
  b-to-a:
    mtu: 1400
  loss2: {gemodel: {p: 1%, q: 2%}}
`)
	type at struct {
		field     string
		line, col int
	}
	var got []at
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var fe *FieldError
		if !errors.As(e, &fe) {
			t.Fatalf("%v is not a FieldError", e)
		}
		got = append(got, at{fe.Field(), fe.Line, fe.Column})
	}
	want := []at{{"delay", 2, 10}, {"loss", 3, 9}, {"speed", 4, 3}, {"loss2", 7, 3}, {"b-to-a.mtu", 6, 5}}
	if len(got) != len(want) {
		t.Fatalf("got %v\nwant %v\n%v", got, want, err)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("error %d at %v, want %v (%v)", i, got[i], want[i], err)
		}
	}
	if !strings.Contains(err.Error(), "delay: \"30\" needs a unit") {
		t.Errorf("message: %v", err)
	}

	// Validation errors are placed at the setting they concern.
	_, err = decode(t, "impair:\n  delay: 0ms\n  b-to-a:\n    reorder: 5%\n")
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field() != "b-to-a.reorder" || fe.Line != 4 || fe.Column != 14 {
		t.Errorf("reorder without delay: %#v", fe)
	}
	_, err = decode(t, "impair:\n  reorder: 5%\n")
	if !errors.As(err, &fe) || fe.Field() != "reorder" || fe.Line != 2 {
		t.Errorf("reorder without delay, both directions: %#v", fe)
	}
	_, err = decode(t, "impair:\n  loss: {gemodel: {r: 5%}}\n")
	if !errors.As(err, &fe) || fe.Field() != "loss.gemodel" || !strings.Contains(fe.Msg, "needs at least p") {
		t.Errorf("gemodel without p: %v", err)
	}
}

func TestChangeFromYAML(t *testing.T) {
	var c Change
	if err := yaml.Unmarshal([]byte("{loss: 50%, a-to-b: {delay: 5ms}}"), &c); err != nil {
		t.Fatal(err)
	}
	if c.AtoB != FieldLoss|FieldDelay || c.BtoA != FieldLoss || c.Value.AtoB.Delay != ms(5) || c.Value.BtoA.Loss.Random != 50 {
		t.Errorf("%+v", c)
	}
	// A change is checked value by value; "reorder" alone is fine, the link
	// may have a delay when it is applied.
	if err := yaml.Unmarshal([]byte("{reorder: 5%}"), &c); err != nil {
		t.Errorf("reorder alone: %v", err)
	}
}

func FuzzParamsYAML(f *testing.F) {
	for _, s := range []string{
		"{delay: 30ms, jitter: 5ms, loss: 1%}",
		"{delay: 10ms, mtu: 1400, b-to-a: {loss: \"gemodel 1% 30% 100% 0%\", rate: 10mbit}}",
		"{loss: {gemodel: {p: 2%, r: 20%, 1-k: 0.5%}}, down: true}",
		"{reorder: 25%, gap: 5, delay: 10ms, a-to-b: {duplicate: 1%}}",
		"[1, 2]", "~", "{loss: &x 5%, corrupt: *x}",
	} {
		f.Add(s)
	}
	// Settings are short; a cap keeps the fuzzer's minimisation of a new
	// input (which costs the square of its length) from eating the run.
	const fuzzMaxParams = 256
	f.Fuzz(func(t *testing.T, s string) {
		if len(s) > fuzzMaxParams {
			return
		}
		var p Params
		if err := yaml.Unmarshal([]byte(s), &p); err != nil {
			return
		}
		if err := p.Validate(); err != nil {
			t.Fatalf("decoded %q into invalid settings %v: %v", s, p, err)
		}
		_ = p.String()
	})
}

package fault

import (
	"strings"
	"testing"
	"time"
)

func TestParseMessage(t *testing.T) {
	good := map[string]Message{
		"main-mode 4/6":       {MainMode, 4},
		"Main-Mode 4":         {MainMode, 4},
		"aggressive-mode 2/3": {Aggressive, 2},
		"quick-mode 1/3":      {QuickMode, 1},
		"informational":       {Informational, 0},
		" dpd ":               {DPD, 0},
		"transaction":         {Transaction, 0},
	}
	for in, want := range good {
		got, err := ParseMessage(in)
		if err != nil || got != want {
			t.Errorf("ParseMessage(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	bad := map[string]string{
		"main-mode":         "say which message of main-mode",
		"main-mode 7/6":     "main-mode has messages 1/6 to 6/6",
		"main-mode 0/6":     "main-mode has messages 1/6 to 6/6",
		"quick-mode 2/6":    "quick-mode has 3 messages, not 6",
		"dpd 1/1":           "dpd has no numbered messages",
		"base-mode 1/3":     `unknown message "base-mode 1/3"`,
		"":                  `unknown message ""`,
		"main-mode x/6":     "main-mode has messages",
		"main-mode 4/6 now": "write the message's position as N/6",
	}
	for in, want := range bad {
		if _, err := ParseMessage(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseMessage(%q): %v, want an error with %q", in, err, want)
		}
	}
	if s := (Message{MainMode, 4}).Title(); s != "Main Mode 4/6" {
		t.Errorf("Title: %q", s)
	}
}

func TestValidate(t *testing.T) {
	mm := func(n int) Message { return Message{MainMode, n} }
	cases := []struct {
		f     Fault
		field string // "" with want "": valid
		want  string
	}{
		{Fault{Plane: IKE, Message: mm(4), Action: Drop}, "", ""},
		{Fault{Plane: IKE, Action: Forge, Forge: "delete"}, "", ""},
		{Fault{Plane: ESP, Action: WrongSPI, Occurrence: Occurrence{Count: 3}}, "", ""},
		{Fault{Plane: IKE, Message: mm(5), Action: Corrupt, Payload: PayloadHash, After: true}, "", ""},
		{Fault{Plane: IKE, Action: Drop}, "message", "drop needs the message"},
		{Fault{Plane: IKE, Message: mm(1), Action: Omit, Payload: PayloadNATD}, "omit", "main-mode 1/6 carries no nat-d payload"},
		{Fault{Plane: IKE, Message: mm(1), Action: Corrupt, Payload: "crc"}, "corrupt", `unknown payload "crc"`},
		{Fault{Plane: IKE, Message: mm(1), Action: Delay}, "delay", "positive duration"},
		{Fault{Plane: IKE, Message: mm(1), Action: Cookie, Cookie: "max"}, "cookie", "zero or random"},
		{Fault{Plane: IKE, Message: mm(1), Action: Drop, After: true}, "after-encryption", "applies to corrupt"},
		{Fault{Plane: ESP, Action: Drop}, "esp", `unknown ESP fault "drop"`},
		{Fault{Plane: ESP, Action: Corrupt, Message: mm(1)}, "message", "applies to packets"},
		{Fault{Plane: ESP, Action: Corrupt, Conn: "x"}, "", ""},
		{Fault{Plane: IKE, Message: mm(1), Action: Drop, Occurrence: Occurrence{Every: true, Nth: 2}}, "", "say which matches once"},
		{Fault{Plane: "ah", Action: Drop}, "", "plane ike or esp"},
	}
	for _, c := range cases {
		err := c.f.Validate()
		if c.want == "" {
			if err != nil {
				t.Errorf("%s: %v", c.f.String(), err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.f, err, c.want)
			continue
		}
		found := false
		for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
			if fe, ok := e.(*FieldError); ok && fe.Field() == c.field && strings.Contains(fe.Error(), c.want) {
				found = true
			}
		}
		if !found {
			t.Errorf("%+v: %v, want it at field %q", c.f, err, c.field)
		}
	}
}

func TestOccurrences(t *testing.T) {
	t0 := time.Unix(0, 0)
	hits := func(o Occurrence, n int, step time.Duration) (applied []int, spentAt int) {
		a := Arm(Fault{Occurrence: o}, t0)
		spentAt = -1
		for i := 1; i <= n; i++ {
			apply, spent := a.Hit(t0.Add(time.Duration(i) * step))
			if apply {
				applied = append(applied, i)
			}
			if spent {
				spentAt = i
				break
			}
		}
		return applied, spentAt
	}
	check := func(name string, got []int, spent int, want []int, wantSpent int) {
		t.Helper()
		if len(got) != len(want) || spent != wantSpent {
			t.Errorf("%s: applied to %v, spent at %d; want %v, %d", name, got, spent, want, wantSpent)
			return
		}
		for i := range got {
			if got[i] != want[i] {
				t.Errorf("%s: applied to %v, want %v", name, got, want)
			}
		}
	}
	g, s := hits(Occurrence{}, 5, time.Second)
	check("next", g, s, []int{1}, 1)
	g, s = hits(Occurrence{Nth: 3}, 5, time.Second)
	check("nth 3", g, s, []int{3}, 3)
	g, s = hits(Occurrence{Count: 2}, 5, time.Second)
	check("count 2", g, s, []int{1, 2}, 2)
	g, s = hits(Occurrence{Every: true}, 5, time.Second)
	check("every", g, s, []int{1, 2, 3, 4, 5}, -1)
	g, s = hits(Occurrence{For: 3 * time.Second}, 5, time.Second)
	check("for 3s", g, s, []int{1, 2, 3}, 4)
}

// ParseMessage reads what people type: it never panics, and what it
// accepts it writes back in a form it reads as the same message.
func FuzzParseMessage(f *testing.F) {
	for _, s := range []string{"main-mode 4/6", "aggressive-mode 2", "quick-mode 1/3", "dpd", "informational 1/1", "main-mode -1/6", "main-mode 99999999999999999999/6", " / "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseMessage(s)
		if err != nil {
			return
		}
		back, err := ParseMessage(m.String())
		if err != nil || back != m {
			t.Fatalf("%q parsed as %v, whose String %q reads back as %v, %v", s, m, m.String(), back, err)
		}
		if m.Num != 0 && (m.Num < 1 || m.Num > m.Total()) {
			t.Fatalf("%q: message %d of %d", s, m.Num, m.Total())
		}
	})
}

// What remains of a fault as its matches come.
func TestArmedLeft(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 19, 0, 0, 0, time.UTC)
	f := Fault{Plane: IKE, Action: Drop, Message: Message{Exchange: MainMode, Num: 4}}
	cases := []struct {
		o     Occurrence
		hits  int
		want  string
		left  int
		until time.Time
	}{
		{Occurrence{}, 0, "1 more match", 1, time.Time{}},
		{Occurrence{Count: 3}, 1, "2 more matches; 1 seen so far", 2, time.Time{}},
		{Occurrence{Nth: 3}, 1, "the 2nd match from now; 1 seen so far", 1, time.Time{}},
		{Occurrence{Every: true}, 4, "every match until cleared; 4 seen so far", -1, time.Time{}},
		{Occurrence{For: 30 * time.Second}, 0, "every match until 19:00:30 (20s left)", -1, t0.Add(30 * time.Second)},
	}
	for _, c := range cases {
		f.Occurrence = c.o
		a := Arm(f, t0)
		for range c.hits {
			a.Hit(t0)
		}
		l := a.Left()
		if got := l.Describe(t0.Add(10 * time.Second)); got != c.want || l.Remaining != c.left || !l.Until.Equal(c.until) {
			t.Errorf("%v after %d: %q (remaining %d, until %v), want %q (%d, %v)", c.o, c.hits, got, l.Remaining, l.Until, c.want, c.left, c.until)
		}
	}
}

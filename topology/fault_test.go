package topology

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ipseclab/ipseclab/ipsec/fault"
)

// A fault step decodes into the fault it arms.
func TestFaultStepDecodes(t *testing.T) {
	src := replace(t, "  - wait: 2s", `  - fault: {node: gw2, message: main-mode 4/6, drop: true}
  - fault: {node: gw1, message: "main-mode 5/6", corrupt: hash, after-encryption: true, nth: 2}
  - fault: {node: gw1, esp: replay, count: 3}
  - fault: {node: gw1, esp: corrupt, connection: office}
  - fault: {node: gw1, forge: delete, connection: office}
  - fault: {node: gw1, message: quick-mode 1/3, delay: 3s, every: true}
  - fault: {node: gw1, clear: true}`)
	lab, err := Parse("lab.yaml", []byte(src))
	if err != nil {
		t.Fatalf("rejected:\n%v", err)
	}
	var got []fault.Fault
	for _, s := range lab.Script {
		if s.Fault == nil {
			continue
		}
		f, clear, err := s.Fault.Fault()
		if err != nil {
			t.Fatal(err)
		}
		if clear {
			continue
		}
		got = append(got, f)
	}
	want := []fault.Fault{
		{Node: "gw2", Plane: fault.IKE, Message: fault.Message{Exchange: fault.MainMode, Num: 4}, Action: fault.Drop},
		{Node: "gw1", Plane: fault.IKE, Message: fault.Message{Exchange: fault.MainMode, Num: 5}, Action: fault.Corrupt, Payload: fault.PayloadHash, After: true, Occurrence: fault.Occurrence{Nth: 2}},
		{Node: "gw1", Plane: fault.ESP, Action: fault.Replay, Occurrence: fault.Occurrence{Count: 3}},
		{Node: "gw1", Plane: fault.ESP, Action: fault.Corrupt, Conn: "office"},
		{Node: "gw1", Plane: fault.IKE, Action: fault.Forge, Forge: "delete", Conn: "office"},
		{Node: "gw1", Plane: fault.IKE, Message: fault.Message{Exchange: fault.QuickMode, Num: 1}, Action: fault.Delay, Delay: 3 * time.Second, Occurrence: fault.Occurrence{Every: true}},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d faults, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("fault %d:\n got  %+v\n want %+v", i, got[i], want[i])
		}
	}
}

// Bad fault steps are errors at validate, at the key that is wrong.
func TestFaultStepErrors(t *testing.T) {
	cases := []struct {
		name, step, want string
		at               string // the value the error must point at; "" for the step
	}{
		{"unknown message", "{node: gw1, message: main-mode 7/6, drop: true}", "main-mode has messages 1/6 to 6/6", "main-mode 7/6"},
		{"unknown exchange", "{node: gw1, message: base-mode 1/3, drop: true}", `unknown message "base-mode 1/3"`, "base-mode"},
		{"numbered informational", "{node: gw1, message: informational 1/1, drop: true}", "informational has no numbered messages", "informational"},
		{"unknown payload", "{node: gw1, message: main-mode 5/6, corrupt: hmac}", `unknown payload "hmac"`, "hmac"},
		{"payload not carried", "{node: gw1, message: main-mode 1/6, omit: nat-d}", "main-mode 1/6 carries no nat-d payload (it carries sa)", "nat-d"},
		{"hash not in QM", "{node: gw1, message: quick-mode 3/3, corrupt: nonce}", "quick-mode 3/3 carries no nonce payload", "nonce"},
		{"strongswan node", "{node: gw2, message: main-mode 4/6, drop: true}", "gw2 is a strongswan node, which has no ipseclab IKE engine", "gw2"},
		{"host node", "{node: a, message: main-mode 4/6, drop: true}", "a is a host node", "a,"},
		{"unknown node", "{node: zz, message: main-mode 4/6, drop: true}", `"zz" is not a node of this lab`, "zz"},
		{"no action", "{node: gw1, message: main-mode 4/6}", "a fault needs one action", ""},
		{"two actions", "{node: gw1, message: main-mode 4/6, drop: true, duplicate: true}", "a fault has one action, not drop and duplicate", ""},
		{"no message", "{node: gw1, drop: true}", "drop needs the message it applies to", ""},
		{"bad esp action", "{node: gw1, esp: bitflip}", `unknown ESP fault "bitflip"`, ""},
		{"bad cookie", "{node: gw1, message: main-mode 1/6, cookie: one}", `cookie "one": zero or random`, ""},
		{"bad forge", "{node: gw1, forge: rekey}", `forge "rekey": delete or initial-contact`, ""},
		{"two occurrences", "{node: gw1, message: main-mode 1/6, drop: true, every: true, nth: 2}", "say which matches once", ""},
		{"after-encryption without corrupt", "{node: gw1, message: main-mode 1/6, drop: true, after-encryption: true}", "after-encryption applies to corrupt", ""},
		{"unknown connection", "{node: gw1, message: main-mode 1/6, drop: true, connection: nope}", `"nope" is not a connection`, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src := replace(t, "  - wait: 2s", "  - fault: "+tc.step)
			if strings.Contains(tc.name, "strongswan") {
				src = strings.Replace(src, "gw2: {kind: gateway, gateway: 203.0.113.1}", "gw2: {kind: strongswan, gateway: 203.0.113.1}", 1)
			}
			_, err := Parse("lab.yaml", []byte(src))
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("want topology.Errors, got %v", err)
			}
			var hit *Error
			for _, e := range errs {
				if strings.Contains(e.Msg, tc.want) {
					hit = e
				}
			}
			if hit == nil {
				t.Fatalf("no error contains %q; got:\n%v", tc.want, err)
			}
			if want := lineOf(src, "  - fault: "); hit.Pos.Line != want || hit.Pos.File != "lab.yaml" {
				t.Errorf("error at %s, want line %d", hit.Pos, want)
			}
			if tc.at != "" {
				line := strings.Split(src, "\n")[hit.Pos.Line-1]
				if want := strings.Index(line, tc.at) + 1; hit.Pos.Col != want {
					t.Errorf("error at column %d, want %d (%q): %v", hit.Pos.Col, want, tc.at, hit)
				}
			}
		})
	}
}

package labrun_test

import (
	"encoding/json"
	"testing"

	"github.com/ipseclab/ipseclab/ipsec/stack"
	"github.com/ipseclab/ipseclab/labrun"
)

// The groups follow the JSON of the struct they come from: a nested object is
// a group, the other fields make up the rest group, in the struct's order,
// an object deeper down is named by its path, and a round trip through JSON
// keeps both names and order.
func TestCountersOfFollowsTheJSON(t *testing.T) {
	type part struct {
		Zeta  uint64 `json:"zeta"`
		Alpha int    `json:"alpha"`
	}
	v := struct {
		Loose uint64 `json:"loose"`
		First part   `json:"first"`
		Later struct {
			Added  uint64 `json:"added_later"`
			Nested part   `json:"nested"`
		} `json:"later"`
	}{Loose: 7, First: part{Zeta: 1, Alpha: 2}}
	v.Later.Added = 3
	v.Later.Nested = part{Zeta: 4, Alpha: 5}
	groups, err := labrun.CountersOf(v, "rest")
	if err != nil {
		t.Fatal(err)
	}
	out, err := json.Marshal(labrun.NodeStats{Node: "n", Impl: "ipseclab", Counters: groups})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"node":"n","impl":"ipseclab","counters":{"first":{"zeta":1,"alpha":2},"later":{"added_later":3,"nested.zeta":4,"nested.alpha":5},"rest":{"loose":7}}}`
	if string(out) != want {
		t.Fatalf("marshalled\n%s\nwant\n%s", out, want)
	}
	var back labrun.NodeStats
	if err := json.Unmarshal(out, &back); err != nil {
		t.Fatal(err)
	}
	again, _ := json.Marshal(back)
	if string(again) != want {
		t.Fatalf("after a round trip\n%s\nwant\n%s", again, want)
	}
}

// Every field of the stack's Stats reaches the verb, ipsec/ike's and
// ipsec/esp's included, whatever they add.
func TestCountersOfTheStackHaveEveryField(t *testing.T) {
	groups, err := labrun.CountersOf(stack.Stats{}, "stack")
	if err != nil {
		t.Fatal(err)
	}
	data, _ := json.Marshal(stack.Stats{})
	var top map[string]any
	_ = json.Unmarshal(data, &top)
	flat := map[string]map[string]any{"stack": {}}
	for k, v := range top {
		if m, ok := v.(map[string]any); ok {
			flat[k] = m
		} else {
			flat["stack"][k] = v
		}
	}
	n := 0
	for _, g := range groups {
		for _, c := range g.Counters {
			if _, ok := flat[g.Name][c.Name]; !ok {
				t.Errorf("%s.%s is not in stack.Stats", g.Name, c.Name)
			}
			n++
		}
	}
	want := 0
	for _, m := range flat {
		want += len(m)
	}
	if n != want || n == 0 {
		t.Errorf("%d counters in the groups, %d in stack.Stats", n, want)
	}
	for _, g := range []string{"ike", "data_plane", "stack"} {
		found := false
		for _, x := range groups {
			found = found || x.Name == g
		}
		if !found {
			t.Errorf("no group %q in %+v", g, groups)
		}
	}
}

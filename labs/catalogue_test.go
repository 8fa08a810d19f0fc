package labs

import (
	"testing"
)

// Every shipped lab has a place in the course, and the listing shows each
// lab under its topic and each exercise again under troubleshooting.
func TestEveryLabIsInTheCatalogue(t *testing.T) {
	list, err := List()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range list {
		if _, err := Place(l.Name); err != nil {
			t.Error(err)
		}
	}
	groups, err := Grouped()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, g := range groups {
		for _, l := range g.Labs {
			seen[l.Name]++
			e, _ := Place(l.Name)
			if g.Topic != e.Topic && !(g.Topic == TopicTroubleshooting && e.Troubleshooting) {
				t.Errorf("%s is listed under %s, but its topic is %s", l.Name, g.Topic, e.Topic)
			}
		}
	}
	for _, l := range list {
		e, _ := Place(l.Name)
		want := 1
		if e.Troubleshooting && e.Topic != TopicTroubleshooting {
			want = 2
		}
		if seen[l.Name] != want {
			t.Errorf("%s is listed %d times, want %d", l.Name, seen[l.Name], want)
		}
	}
}

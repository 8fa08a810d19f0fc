package labs

import (
	"regexp"
	"strings"
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

var numbered = regexp.MustCompile(`(?m)^(\d+)\. `)

// Every lesson asks questions and answers each of them, and --lesson without
// --answers keeps the answers back.
func TestEveryLessonHasQuestionsAndAnswers(t *testing.T) {
	list, err := List()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range list {
		text, err := Lesson(l.Name)
		if err != nil {
			t.Fatal(err)
		}
		qi := strings.Index(text, "\n## Questions")
		ai := strings.Index(text, "\n"+AnswersHeading)
		if qi < 0 || ai < qi {
			t.Errorf("%s: the lesson needs a ## Questions section followed by %s", l.Name, AnswersHeading)
			continue
		}
		questions := numbered.FindAllString(text[qi:ai], -1)
		answers := numbered.FindAllString(text[ai:], -1)
		if len(questions) < 3 || strings.Join(questions, "") != strings.Join(answers, "") {
			t.Errorf("%s: %d questions (%q) and answers numbered %q: want at least 3, each answered", l.Name, len(questions), questions, answers)
		}
		shown, err := LessonWithoutAnswers(l.Name)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(shown, AnswersHeading) || !strings.Contains(shown, "## Questions") || !strings.Contains(shown, "--lesson "+l.Name+" --answers") {
			t.Errorf("%s: the lesson without answers shows them, or lost its questions, or does not say how to see the answers:\n%s", l.Name, shown)
		}
	}
}

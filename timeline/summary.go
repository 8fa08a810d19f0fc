package timeline

import (
	"fmt"
	"strings"

	"github.com/ipseclab/ipseclab/events"
)

// summaryIndent puts a result's detail under its name, past "  ✔ passed  ".
const summaryIndent = "            "

// Heading prints a section heading in the timeline's style, for what a
// caller adds after the events (the SAs at the end of a run, say).
func (t *Timeline) Heading(title string) {
	width := 64
	if t.opt.Width > 0 {
		width = min(width, t.opt.Width)
	}
	bar := strings.Repeat("━", max(2, width-4-DisplayWidth(title)))
	fmt.Fprintf(t.w, "\n%s\n", t.c(bold, "━━ "+title+" "+bar))
}

// Summary lists a script's expectations as passed or failed, each with its
// place in the lab file and what was seen, then the steps that could not be
// carried out, then the closing line (the script-finished event's message).
func (t *Timeline) Summary(r events.ScriptResult, closing string) {
	t.Heading("Summary")
	for _, x := range r.Expectations {
		mark := t.c(green, "✔ passed")
		if !x.Passed {
			mark = t.c(red, "✘ FAILED")
		}
		t.summaryItem(mark, x.Name+"  ("+x.At+")")
		for _, l := range t.summaryWrap(x.Detail) {
			fmt.Fprintln(t.w, summaryIndent+l)
		}
	}
	for _, s := range r.Errors {
		t.summaryItem(t.c(red, "✘ ERROR "), s)
	}
	if len(r.Expectations) == 0 {
		fmt.Fprintln(t.w, "  (the script has no expectations)")
	}
	fmt.Fprintln(t.w, "  "+closing)
}

// summaryItem prints a mark and its text, the text wrapped under itself.
func (t *Timeline) summaryItem(mark, text string) {
	for i, l := range t.summaryWrap(text) {
		if i == 0 {
			fmt.Fprintf(t.w, "  %s  %s\n", mark, l)
		} else {
			fmt.Fprintln(t.w, summaryIndent+l)
		}
	}
}

func (t *Timeline) summaryWrap(text string) []string {
	if t.opt.Width <= 0 {
		return []string{text}
	}
	avail := max(t.opt.Width-len(summaryIndent), 20)
	return Wrap(text, avail, avail)
}

package netem

import "fmt"

// FieldError is a problem with one impairment setting. Name is the setting as
// the lab file and the CLI spell it ("loss", "reorder", "b-to-a.delay",
// "loss.gemodel.p"), so a message can point at it; it also satisfies the
// topology package's FieldError interface through Field. Line and Column are
// the position of the offending YAML node when the setting came from a lab file
// (zero otherwise); Error does not repeat them, so that the caller can prefix
// its own "lab.yaml:LINE:COL: ".
type FieldError struct {
	Name         string
	Line, Column int
	Msg          string
}

// Field names the offending setting.
func (e *FieldError) Field() string { return e.Name }

func (e *FieldError) Error() string {
	if e.Name == "" {
		return e.Msg
	}
	return e.Name + ": " + e.Msg
}

func fieldErrorf(name, format string, args ...any) *FieldError {
	return &FieldError{Name: name, Msg: fmt.Sprintf(format, args...)}
}

// Position is the line and column of the offending YAML node (0, 0 when the
// error did not come from a file), so a lab file's error names its place.
func (e *FieldError) Position() (line, col int) { return e.Line, e.Column }

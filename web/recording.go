package web

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/ipseclab/ipseclab/events"
)

// Record is one event of a recorded run: its JSON line as read, and the
// event decoded.
type Record struct {
	Line  []byte
	Event events.Event
}

// maxRecordLine bounds one line of a recording: an event is a few hundred
// bytes, an IKE message with a certificate a few kilobytes.
const maxRecordLine = 16 << 20

// ReadRecording reads a run recorded with `run --json` (JSON lines, one
// event each). name is the file's name for errors, which say which line
// is wrong: `events.jsonl:17: ...`. A line that is not JSON (a truncated
// file's last line among them), JSON that is not an ipseclab event (no
// seq, kind or time), or a sequence number that does not increase (lines
// reordered, or two runs joined) is refused. Kinds this version does not
// know are kept: the views show them generically. Blank lines are skipped.
func ReadRecording(r io.Reader, name string) ([]Record, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var recs []Record
	var last uint64
	for n := 1; ; n++ {
		line, err := readLine(br)
		if err != nil && !errors.Is(err, io.EOF) {
			return recs, fmt.Errorf("%s:%d: %w", name, n, err)
		}
		if errors.Is(err, io.EOF) && len(line) == 0 {
			break
		}
		complete := err == nil
		trimmed := bytes.TrimSpace(line)
		if len(trimmed) > 0 {
			rec, perr := parseRecord(trimmed)
			if perr != nil {
				if !complete {
					perr = fmt.Errorf("%w (the last line has no end of line: the file looks truncated)", perr)
				}
				return recs, fmt.Errorf("%s:%d: %w", name, n, perr)
			}
			if rec.Event.Seq <= last {
				return recs, fmt.Errorf("%s:%d: sequence number %d after %d: the events are out of order (lines reordered, or two runs in one file)", name, n, rec.Event.Seq, last)
			}
			last = rec.Event.Seq
			recs = append(recs, rec)
		}
		if !complete {
			break
		}
	}
	if len(recs) == 0 {
		return nil, fmt.Errorf("%s: no events (record a run with `ipseclab run LAB --json > %s`)", name, name)
	}
	return recs, nil
}

// readLine reads one line without its newline; io.EOF with what was read
// when the input ends without one.
func readLine(br *bufio.Reader) ([]byte, error) {
	var buf []byte
	for {
		part, err := br.ReadSlice('\n')
		if len(buf)+len(part) > maxRecordLine {
			return nil, fmt.Errorf("a line longer than %d MiB: not an event", maxRecordLine>>20)
		}
		buf = append(buf, part...)
		switch {
		case err == nil:
			return buf[:len(buf)-1], nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		default:
			return buf, err
		}
	}
}

// parseRecord checks that a line is an ipseclab event and decodes it.
func parseRecord(line []byte) (Record, error) {
	if line[0] != '{' {
		return Record{}, errors.New("not an ipseclab event: a line of `run --json` is a JSON object")
	}
	var probe struct {
		Seq  *uint64         `json:"seq"`
		Time *time.Time      `json:"time"`
		Kind *string         `json:"kind"`
		Step json.RawMessage `json:"step"`
	}
	if err := json.Unmarshal(line, &probe); err != nil {
		return Record{}, fmt.Errorf("not JSON: %v", jsonErr(err))
	}
	switch {
	case probe.Seq == nil || probe.Kind == nil || probe.Time == nil:
		return Record{}, errors.New(`not an ipseclab event: it has no "seq", "kind" or "time" (is this a file of ` + "`ipseclab run --json`?)")
	case *probe.Seq == 0:
		return Record{}, errors.New(`not an ipseclab event: "seq" is 0; events are numbered from 1`)
	case *probe.Kind == "":
		return Record{}, errors.New(`not an ipseclab event: "kind" is empty`)
	}
	rec := Record{Line: bytes.Clone(line)}
	if err := json.Unmarshal(line, &rec.Event); err != nil {
		return Record{}, fmt.Errorf("an event with a field of the wrong type: %v", jsonErr(err))
	}
	return rec, nil
}

func jsonErr(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("%v (at byte %d)", err, se.Offset)
	}
	return err.Error()
}

// LabHint is what a recording says about its lab: its name, and from its
// lab-seed event the lab file it was read from and the file's text.
type LabHint struct {
	Name   string
	File   string
	Source string
}

// Hint reads a recording's lab hint.
func Hint(recs []Record) LabHint {
	var h LabHint
	for i := range recs {
		e := &recs[i].Event
		if h.Name == "" {
			h.Name = e.Lab
		}
		if e.Kind == events.LabSeed {
			h.File, _ = e.Fields["file"].(string)
			h.Source, _ = e.Fields["source"].(string)
			break
		}
		if i > 1000 {
			break
		}
	}
	return h
}

// Load puts a recording into the server's history and ends it.
func (s *Server) Load(recs []Record) {
	for i := range recs {
		s.AddLine(recs[i].Event.Seq, recs[i].Line)
	}
	s.End()
}

package strongswan

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ipseclab/ipseclab/events"
)

// LogLine is one line of charon's filelog as this package configures it
// (time_format "%F %T", log_level and ike_name on):
//
//	2026-11-27 12:41:53 16[CHD4] <office|1> adding inbound ESP SA
type LogLine struct {
	Time    time.Time // to the second: charon 5.9.8's filelog has no finer stamp
	Thread  int       // charon's thread number
	Group   string    // subsystem: IKE, CHD, NET, ENC, CFG, MGR, KNL, ...
	Level   int       // 0 (basic) to 4 (private: keys)
	IKESA   string    // name of the IKE SA's connection, if the line is about one
	IKESAID uint32    // charon's unique id of that IKE SA
	Text    string
}

// ParseLogLine parses one filelog line (without its newline).
func ParseLogLine(s string) (LogLine, error) {
	var l LogLine
	const stamp = "2006-01-02 15:04:05"
	if len(s) < len(stamp)+1 || s[len(stamp)] != ' ' {
		return l, errors.New("strongswan log: no timestamp")
	}
	t, err := time.ParseInLocation(stamp, s[:len(stamp)], time.Local)
	if err != nil {
		return l, fmt.Errorf("strongswan log: %w", err)
	}
	l.Time = t
	rest := s[len(stamp)+1:]

	// "16[CHD4] "
	open := strings.IndexByte(rest, '[')
	end := strings.IndexByte(rest, ']')
	if open <= 0 || end < open+3 || len(rest) < end+2 || rest[end+1] != ' ' {
		return l, errors.New("strongswan log: no thread[GROUPlevel] field")
	}
	if l.Thread, err = strconv.Atoi(rest[:open]); err != nil || l.Thread < 0 {
		return l, fmt.Errorf("strongswan log: thread %q", rest[:open])
	}
	tag := rest[open+1 : end]
	lvl := tag[len(tag)-1]
	if lvl < '0' || lvl > '4' {
		return l, fmt.Errorf("strongswan log: level in %q", tag)
	}
	l.Group, l.Level = tag[:len(tag)-1], int(lvl-'0')
	rest = rest[end+2:]

	// "<office|1> " when the line is about an IKE SA.
	if strings.HasPrefix(rest, "<") {
		if close := strings.Index(rest, "> "); close > 0 {
			name, id, ok := strings.Cut(rest[1:close], "|")
			if !ok {
				name, id = "", name
			}
			n, err := strconv.ParseUint(id, 10, 32)
			if err != nil {
				return l, fmt.Errorf("strongswan log: IKE SA id in %q", rest[:close+1])
			}
			l.IKESA, l.IKESAID = name, uint32(n)
			rest = rest[close+2:]
		}
	}
	l.Text = rest
	return l, nil
}

// PublishLog returns an OnLog function that publishes every line at or below
// maxLevel as a StrongSwanLog event. Level 1 is what an operator reads; 2
// and above narrate every task, and 4 dumps keys.
func PublishLog(p events.Publisher, maxLevel int) func(LogLine) {
	return func(l LogLine) {
		if l.Level > maxLevel {
			return
		}
		level := events.Info
		if l.Level >= 2 {
			level = events.Debug
		}
		p.Publish(events.Event{
			Kind:    events.StrongSwanLog,
			Conn:    l.IKESA,
			Level:   level,
			Message: l.Text,
			Fields: map[string]any{
				"group":     l.Group,
				"log_level": l.Level,
				"thread":    l.Thread,
				"ike_sa_id": l.IKESAID,
			},
		})
	}
}

// logTail follows charon's filelog as it grows and hands each complete line to
// its consumers. inotify wakes it when charon writes, so lines arrive as they
// are logged, not at a polling interval.
type logTail struct {
	file    *os.File
	notify  *os.File // the inotify descriptor, read through the runtime poller
	consume func(line string)

	done chan struct{}
	once sync.Once
}

func startLogTail(path string, consume func(string)) (*logTail, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("inotify: %w", err)
	}
	if _, err := unix.InotifyAddWatch(fd, path, unix.IN_MODIFY); err != nil {
		unix.Close(fd)
		f.Close()
		return nil, fmt.Errorf("inotify watch %s: %w", path, err)
	}
	t := &logTail{
		file:    f,
		notify:  os.NewFile(uintptr(fd), "inotify"),
		consume: consume,
		done:    make(chan struct{}),
	}
	go t.run()
	return t, nil
}

func (t *logTail) run() {
	defer close(t.done)
	defer t.file.Close()
	var partial []byte
	buf := make([]byte, 64*1024)
	notifications := make([]byte, 4096)
	drain := func() {
		for {
			n, err := t.file.Read(buf)
			data := buf[:n]
			for len(data) > 0 {
				i := bytes.IndexByte(data, '\n')
				if i < 0 {
					partial = append(partial, data...)
					break
				}
				line := data[:i]
				if len(partial) > 0 {
					line = append(partial, line...)
					partial = partial[:0]
				}
				t.consume(string(line))
				data = data[i+1:]
			}
			if err != nil || n == 0 {
				return
			}
		}
	}
	for {
		drain()
		// Block until charon writes again, or Close interrupts the read.
		if _, err := t.notify.Read(notifications); err != nil {
			drain() // whatever was written before the stop
			return
		}
	}
}

// Close stops the tail after it has consumed everything written so far.
func (t *logTail) Close() {
	t.once.Do(func() {
		t.notify.Close()
		<-t.done
	})
}

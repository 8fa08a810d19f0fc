package labrun

import (
	"os"
	"sync"
)

// EventLogMax is the size at which a lab's event log (events.jsonl in its
// state directory) moves to events.jsonl.1, replacing the one before: the
// log of a lab that runs for days, or is flooded, takes at most twice this
// on disk.
const EventLogMax = 8 << 20

// RotatingLog is an append-only file, private to its owner, that starts
// again when it would grow past its maximum, keeping one older generation
// beside it (PATH.1). Each Write goes whole to one file.
type RotatingLog struct {
	path string
	max  int64

	mu   sync.Mutex
	f    *os.File
	size int64
}

// OpenRotatingLog opens (or creates) the log at path.
func OpenRotatingLog(path string, max int64) (*RotatingLog, error) {
	f, err := CreatePrivate(path, true)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &RotatingLog{path: path, max: max, f: f, size: st.Size()}, nil
}

// Write appends p, rotating first if p would take the file past its maximum.
func (l *RotatingLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.size > 0 && l.size+int64(len(p)) > l.max {
		if err := l.rotate(); err != nil {
			return 0, err
		}
	}
	n, err := l.f.Write(p)
	l.size += int64(n)
	return n, err
}

func (l *RotatingLog) rotate() error {
	if err := l.f.Close(); err != nil {
		return err
	}
	if err := os.Rename(l.path, l.path+".1"); err != nil {
		return err
	}
	f, err := CreatePrivate(l.path, false)
	if err != nil {
		return err
	}
	l.f, l.size = f, 0
	return nil
}

// Close closes the current file.
func (l *RotatingLog) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.Close()
}

package fdread

import (
	"errors"
	"os"
	"testing"
	"time"
)

func pipe(t *testing.T) (*Reader, *os.File, *os.File) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	rd, err := New(r)
	if err != nil {
		t.Fatal(err)
	}
	return rd, r, w
}

// Nothing to read: TryRead says so at once, without waiting.
func TestTryReadDoesNotWait(t *testing.T) {
	rd, _, w := pipe(t)
	buf := make([]byte, 16)
	if n, wouldBlock, err := rd.TryRead(buf); !wouldBlock || n != 0 || err != nil {
		t.Fatalf("empty pipe: %d, wouldBlock %v, %v", n, wouldBlock, err)
	}
	w.Write([]byte("abc"))
	if n, wouldBlock, err := rd.TryRead(buf); wouldBlock || err != nil || string(buf[:n]) != "abc" {
		t.Fatalf("after a write: %q, wouldBlock %v, %v", buf[:n], wouldBlock, err)
	}
}

// What arrived between a TryRead that found nothing and the Wait after it
// must not wait for the next arrival: the poller's readiness is reset as a
// wait begins, and Wait asks the kernel.
func TestWaitSeesWhatArrivedBefore(t *testing.T) {
	rd, _, w := pipe(t)
	buf := make([]byte, 16)
	if _, wouldBlock, _ := rd.TryRead(buf); !wouldBlock {
		t.Fatal("empty pipe readable")
	}
	w.Write([]byte("x"))
	done := make(chan error, 1)
	go func() { done <- rd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Wait waits for a second arrival although a byte is there")
	}
	if n, _, err := rd.TryRead(buf); n != 1 || err != nil {
		t.Fatalf("after Wait: %d, %v", n, err)
	}
}

// Wait returns when something arrives, and with os.ErrClosed when the file
// closes under it.
func TestWaitWakesOnDataAndClose(t *testing.T) {
	rd, r, w := pipe(t)
	done := make(chan error, 1)
	go func() { done <- rd.Wait() }()
	time.Sleep(20 * time.Millisecond)
	w.Write([]byte("y"))
	if err := <-done; err != nil {
		t.Fatalf("Wait on data: %v", err)
	}
	rd.TryRead(make([]byte, 4))
	go func() { done <- rd.Wait() }()
	time.Sleep(20 * time.Millisecond)
	r.Close()
	if err := <-done; !errors.Is(err, os.ErrClosed) {
		t.Fatalf("Wait on close: %v, want os.ErrClosed", err)
	}
	if _, _, err := rd.TryRead(make([]byte, 4)); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("TryRead after close: %v, want os.ErrClosed", err)
	}
}

// Package bufpool lends the data plane's packet buffers. A gateway's data
// plane needs about 10 MiB of them to take batches of 64 KiB datagrams at
// full speed, but an idle one needs none: its receivers wait for the next
// datagram without holding buffers (they borrow a batch once one is there,
// and give it back before waiting again), so a lab of a thousand gateways
// holds buffers for those that pass traffic at the moment, not for all.
package bufpool

import "sync"

// Slabs lends byte slices of one size.
type Slabs struct {
	size int
	pool sync.Pool
}

var (
	mu     sync.Mutex
	bySize = map[int]*Slabs{}
)

// Of returns the process's lender of slabs of size bytes.
func Of(size int) *Slabs {
	mu.Lock()
	defer mu.Unlock()
	s := bySize[size]
	if s == nil {
		s = &Slabs{size: size}
		s.pool.New = func() any {
			b := make([]byte, size)
			return &b
		}
		bySize[size] = s
	}
	return s
}

// Get borrows a slab of the lender's size. Its contents are whatever the
// last borrower left.
func (s *Slabs) Get() *[]byte { return s.pool.Get().(*[]byte) }

// Put gives a slab back; the borrower must not touch it afterwards.
func (s *Slabs) Put(b *[]byte) {
	if b != nil && len(*b) == s.size {
		s.pool.Put(b)
	}
}

package nat

// SetEventReadBuffer sets the receive buffer of conntrack event sockets opened
// from now on, so that a test can make one overflow; it returns the old size.
func SetEventReadBuffer(n int) int {
	old := eventReadBuffer
	eventReadBuffer = n
	return old
}

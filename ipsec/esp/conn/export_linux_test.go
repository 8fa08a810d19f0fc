package conn

import "net/netip"

// For the tests in package conn_test, which need root and so the testenv
// helpers: internal tests cannot import them (testenv imports node, which
// imports the IPsec stack, which imports this package).

type UDPPortForTest = udpPort

func NewUDPPortForTest(port uint16) (*udpPort, error) { return openUDP(port, 0) }

func (u *udpPort) Send(pkts [][]byte, dsts []netip.AddrPort) error { return u.send(pkts, dsts) }

func (u *udpPort) Receive(pkts [][]byte, srcs []netip.AddrPort) (int, error) {
	return u.receive(pkts, srcs)
}

func (u *udpPort) Close() error { return u.close() }

// LastFill says how many datagrams the last receive syscall returned and how
// many packets they were cut into.
func (u *udpPort) LastFill() (datagrams, segments int) { return u.s.rx.n, len(u.pending) }

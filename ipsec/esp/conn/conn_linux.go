package conn

import (
	"errors"
	"net/netip"

	"github.com/ipseclab/ipseclab/ipsec/esp"
)

// Config says how to open a Network.
type Config struct {
	// NATTPort is the UDP port for ESP in UDP, shared with IKE (4500).
	NATTPort uint16
	// Mark is the SO_MARK of every socket, so that policy routing can keep
	// the data plane's own packets out of its TUN.
	Mark int
}

// Network is the esp.Network of a network namespace: raw ESP and AH sockets
// and the NAT-T UDP port.
type Network struct {
	esp, ah *rawSocket
	udp     *udpPort
}

var _ esp.Network = (*Network)(nil)

// Open opens the sockets in the calling thread's network namespace (run it
// inside namespace.RunHandle); they stay in that namespace afterwards.
func Open(cfg Config) (*Network, error) {
	n := &Network{}
	var err error
	if n.esp, err = openRaw(esp.ProtoESP, cfg.Mark); err == nil {
		if n.ah, err = openRaw(esp.ProtoAH, cfg.Mark); err == nil {
			n.udp, err = openUDP(cfg.NATTPort, cfg.Mark)
		}
	}
	if err != nil {
		n.Close()
		return nil, err
	}
	return n, nil
}

// SendIP sends whole IPv4 packets carrying ESP or AH, each run of one
// protocol through that protocol's socket: the socket's protocol is what
// policy routing sees.
func (n *Network) SendIP(pkts [][]byte) error {
	var errs []error
	for len(pkts) > 0 {
		proto := esp.Protocol(pkts[0][ipv4Protocol])
		j := 1
		for j < len(pkts) && esp.Protocol(pkts[j][ipv4Protocol]) == proto {
			j++
		}
		sock := n.esp
		if proto == esp.ProtoAH {
			sock = n.ah
		}
		if err := sock.send(pkts[:j]); err != nil {
			errs = append(errs, err)
		}
		pkts = pkts[j:]
	}
	return errors.Join(errs...)
}

// SendUDP sends datagrams from the NAT-T port, pkts[i] to dsts[i].
func (n *Network) SendUDP(pkts [][]byte, dsts []netip.AddrPort) error {
	return n.udp.send(pkts, dsts)
}

// Receivers are the three sockets' receive functions.
func (n *Network) Receivers() []esp.Receiver {
	return []esp.Receiver{
		{Batch: rawBatch, Receive: n.esp.receive},
		{Batch: rawBatch, Receive: n.ah.receive},
		{UDP: true, Batch: udpReceiveBatch, Receive: n.udp.receive},
	}
}

// Close closes the sockets; a blocked receive returns os.ErrClosed.
func (n *Network) Close() error {
	var errs []error
	for _, s := range []*rawSocket{n.esp, n.ah} {
		if s != nil {
			errs = append(errs, s.close())
		}
	}
	if n.udp != nil {
		errs = append(errs, n.udp.close())
	}
	return errors.Join(errs...)
}

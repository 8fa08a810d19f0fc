package stack

import (
	"net"
	"net/netip"

	"github.com/vishvananda/netns"

	"github.com/ipseclab/ipseclab/internal/namespace"
	"github.com/ipseclab/ipseclab/ipsec/esp"
	"github.com/ipseclab/ipseclab/ipsec/esp/linux"
)

// Namespace is a Host: a network namespace of this machine, where the data
// plane gets its TUN device, raw sockets and NAT-T port (linux.Open) and IKE its
// UDP 500 sockets. The namespace is entered only on throwaway threads
// (namespace.RunHandle); sockets keep it afterwards.
type Namespace struct {
	Handle netns.NsHandle
	// DataPlane sets the TUN name, MTU, routing table and NAT-T port; its
	// Config is the stack's.
	DataPlane linux.Config
}

// OpenDataPlane implements Host.
func (n Namespace) OpenDataPlane(cfg esp.Config) (*esp.DataPlane, error) {
	oc := n.DataPlane
	oc.Config = cfg
	return linux.Open(n.Handle, oc)
}

// ListenIKE implements Host.
func (n Namespace) ListenIKE(local netip.AddrPort) (pc net.PacketConn, err error) {
	err = namespace.RunHandle(n.Handle, func() error {
		pc, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(local))
		return err
	})
	return pc, err
}

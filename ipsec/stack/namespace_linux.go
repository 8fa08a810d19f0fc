package stack

import (
	"errors"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

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
		uc, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(local))
		if err != nil {
			return err
		}
		// A hub that a thousand spokes call at once gets a thousand first
		// messages in a burst: the default 208 KiB buffer dropped a third
		// of them, and their senders waited a second to retransmit.
		_ = uc.SetReadBuffer(ikeReceiveBuffer)
		pc = uc
		return nil
	})
	return pc, err
}

// ikeReceiveBuffer is the IKE socket's receive buffer (SO_RCVBUF, capped by
// net.core.rmem_max): the kernel's memory, used only while datagrams wait.
const ikeReceiveBuffer = 2 << 20

// SetVirtualIP implements Host: the address goes on the namespace's
// loopback, a /32 that routes nowhere by itself.
func (n Namespace) SetVirtualIP(addr netip.Prefix, add bool) error {
	h, err := netlink.NewHandleAt(n.Handle)
	if err != nil {
		return err
	}
	defer h.Close()
	lo, err := h.LinkByName("lo")
	if err != nil {
		return err
	}
	a := &netlink.Addr{IPNet: &net.IPNet{IP: addr.Addr().AsSlice(), Mask: net.CIDRMask(32, 32)}}
	if add {
		return h.AddrReplace(lo, a)
	}
	if err := h.AddrDel(lo, a); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
		return err
	}
	return nil
}

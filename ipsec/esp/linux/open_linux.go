package linux

import (
	"fmt"
	"net"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/ipseclab/ipseclab/internal/namespace"
	"github.com/ipseclab/ipseclab/ipsec/esp"
	"github.com/ipseclab/ipseclab/ipsec/esp/conn"
	"github.com/ipseclab/ipseclab/ipsec/esp/tun"
)

// Config configures a data plane inside a network namespace.
type Config struct {
	esp.Config

	TUNName string // default "ipsec0"
	// Each route into the TUN carries the inner MTU of its policy's current
	// outbound SA: the MTU of the path to the peer minus what that SA adds,
	// as Linux's IPsec computes it per SA. The path MTU is the MTU of the
	// route to the peer (which the kernel lowers on ICMP "fragmentation
	// needed"), or of the interface it leaves by, looked up when an SA is
	// installed and every second after.
	//
	// MaxPathMTU is the largest path MTU used, and the size of the data
	// plane's packet buffers. Zero, the default, takes the largest MTU of the
	// namespace's interfaces at Open, at least 1500 and at most 9216, so
	// that a lab with jumbo links uses them.
	MaxPathMTU int
	// MTU is the inner MTU of a route before its first SA: DefaultMTU unless
	// set.
	MTU        int
	RouteTable int    // default DefaultRouteTable (220)
	NATTPort   uint16 // default 4500
	// NoOffload opens the TUN without segmentation offload: one packet per
	// read and write. For comparison; offload is faster.
	NoOffload bool
}

// DefaultMTU is the inner MTU before an SA is known: a 1500-byte path minus
// esp.MaxOverhead, so that no protected packet needs fragmenting.
const DefaultMTU = ethernetMTU - esp.MaxOverhead

const (
	// ethernetMTU is the least MaxPathMTU, whatever the interfaces say.
	ethernetMTU = 1500
	// jumboMTU bounds the largest path MTU taken from the interfaces, and so
	// the size of the data plane's segment buffers: 9216 bytes, the largest
	// jumbo frame switches commonly carry.
	jumboMTU = 9216
)

// Open creates a data plane in the namespace ns: a TUN device, raw ESP and AH
// sockets, the NAT-T UDP socket, and the policy-routing rules that steer
// protected traffic into the TUN. Policies added later get their routes.
// Close removes the device, the sockets and the rules.
func Open(ns netns.NsHandle, cfg Config) (_ *esp.DataPlane, err error) {
	if cfg.TUNName == "" {
		cfg.TUNName = "ipsec0"
	}
	if cfg.MTU == 0 {
		cfg.MTU = DefaultMTU
	}
	if cfg.RouteTable == 0 {
		cfg.RouteTable = DefaultRouteTable
	}
	if cfg.NATTPort == 0 {
		cfg.NATTPort = 4500
	}

	var (
		dev         *tun.Device
		network     *conn.Network
		acceptLocal *sysctlSetting
		ioctlFD     = -1
	)
	closeAll := func() {
		if ioctlFD >= 0 {
			unix.Close(ioctlFD)
		}
		if dev != nil {
			dev.Close()
		}
		if network != nil {
			network.Close()
		}
		if acceptLocal != nil {
			acceptLocal.restore()
		}
	}
	err = namespace.RunHandle(ns, func() error {
		var err error
		if dev, err = tun.Open(cfg.TUNName, !cfg.NoOffload); err != nil {
			return err
		}
		if network, err = conn.Open(conn.Config{NATTPort: cfg.NATTPort, Mark: BypassMark}); err != nil {
			return err
		}
		if acceptLocal, err = setAcceptLocal(); err != nil {
			return err
		}
		// For the routes' interface MTU queries (SIOCGIFMTU).
		ioctlFD, err = unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		return err
	})
	if err != nil {
		closeAll()
		return nil, err
	}

	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		closeAll()
		return nil, fmt.Errorf("netlink in namespace: %w", err)
	}
	if cfg.MaxPathMTU == 0 {
		cfg.MaxPathMTU = largestLinkMTU(h, cfg.TUNName)
	}
	cfg.MaxPathMTU = max(cfg.MaxPathMTU, ethernetMTU)
	link, err := h.LinkByName(cfg.TUNName)
	if err == nil {
		// The routes into the TUN carry each policy's MTU; the device's own
		// is only a ceiling for them.
		err = h.LinkSetMTU(link, cfg.MaxPathMTU)
	}
	if err == nil {
		err = h.LinkSetUp(link)
	}
	var rt *routes
	if err == nil {
		rt, err = newRoutes(h, link, cfg.RouteTable, cfg.MTU, cfg.MaxPathMTU, acceptLocal, ioctlFD)
		ioctlFD = -1 // the routes' now, closed with them
	}
	if err != nil {
		h.Close()
		closeAll()
		return nil, fmt.Errorf("set up %s: %w", cfg.TUNName, err)
	}

	d := esp.New(cfg.Config)
	d.Start(dev, network, rt)
	return d, nil
}

// largestLinkMTU is the largest MTU of the namespace's interfaces but the TUN
// and loopback, between 1500 and jumboMTU.
func largestLinkMTU(h *netlink.Handle, tun string) int {
	mtu := ethernetMTU
	links, err := h.LinkList()
	if err != nil {
		return mtu
	}
	for _, l := range links {
		a := l.Attrs()
		if a.Name == tun || a.Flags&net.FlagLoopback != 0 {
			continue
		}
		mtu = max(mtu, min(a.MTU, jumboMTU))
	}
	return mtu
}

package impair

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/ipseclab/ipseclab/internal/namespace"
)

// tapOffloads are the offloads a TAP device takes while its direction passes
// super-frames: checksum and TCP segmentation, IPv4 and IPv6. UDP segmentation
// (TUN_F_USO4/6) is not offered, so the kernel segments UDP GSO itself.
const tapOffloads = unix.TUN_F_CSUM | unix.TUN_F_TSO4 | unix.TUN_F_TSO6

// hostNetns identifies the namespace the lab process started in, taken while
// the package initializes on the main thread. /proc/self/ns/net cannot be
// trusted later: a goroutine that locked the main thread and left it in a
// node's namespace (labrun.InNetns does that when it happens to run there)
// leaves it parked in that namespace for good.
var hostNetns = func() (st unix.Stat_t) {
	_ = unix.Stat("/proc/thread-self/ns/net", &st)
	return st
}()

// tap is one end of a link: a TAP device inside a node's namespace, read and
// written by the lab process.
type tap struct {
	name string
	ns   netns.NsHandle
	file *os.File // non-blocking, so reads wait in Go's netpoller and Close wakes them
}

// openTAP creates the TAP device name inside the namespace ns and opens it.
// The device is persistent: it outlives the file, so that a lab's devices can
// go with their namespaces, all in one batch (release), instead of one by one
// under the kernel's RTNL lock, each waiting for RCU grace periods (remove).
func openTAP(ns netns.NsHandle, name string, mac net.HardwareAddr) (_ *tap, err error) {
	if len(name) == 0 || len(name) >= unix.IFNAMSIZ {
		return nil, fmt.Errorf("interface name %q: 1 to %d bytes", name, unix.IFNAMSIZ-1)
	}
	var st unix.Stat_t
	if !ns.IsOpen() || unix.Fstat(int(ns), &st) != nil || (st.Dev == hostNetns.Dev && st.Ino == hostNetns.Ino) {
		return nil, fmt.Errorf("refusing to create %s outside a lab namespace (the host's network namespace is never changed)", name)
	}
	nl, err := netlink.NewHandleAt(ns)
	if err != nil {
		return nil, fmt.Errorf("netlink in the namespace of %s: %w", name, err)
	}
	defer nl.Close()
	if _, err := nl.LinkByName(name); err == nil {
		return nil, fmt.Errorf("interface %s already exists in its namespace", name)
	}

	// TUNSETIFF creates the device in the namespace of whoever opened
	// /dev/net/tun, so both happen on a thread inside the node's namespace.
	fd := -1
	err = namespace.RunHandle(ns, func() error {
		var err error
		fd, err = unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
		if err != nil {
			return fmt.Errorf("open /dev/net/tun: %w", err)
		}
		ifr, err := unix.NewIfreq(name)
		if err != nil {
			return err
		}
		ifr.SetUint16(unix.IFF_TAP | unix.IFF_NO_PI | unix.IFF_VNET_HDR)
		if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
			return fmt.Errorf("create TAP device %s: %w", name, err)
		}
		if err := unix.IoctlSetInt(fd, unix.TUNSETPERSIST, 1); err != nil {
			return fmt.Errorf("make TAP device %s persistent: %w", name, err)
		}
		return nil
	})
	if err != nil {
		if fd >= 0 {
			unix.Close(fd)
		}
		return nil, err
	}
	t := &tap{name: name, ns: ns, file: os.NewFile(uintptr(fd), "tap:"+name)}
	defer func() {
		if err != nil {
			_ = t.remove()
		}
	}()
	if err := t.setOffload(true); err != nil {
		return nil, err
	}
	l, err := nl.LinkByName(name)
	if err != nil {
		return nil, fmt.Errorf("find the new device %s: %w", name, err)
	}
	if err := nl.LinkSetHardwareAddr(l, mac); err != nil {
		return nil, fmt.Errorf("MAC address of %s: %w", name, err)
	}
	if err := nl.LinkSetUp(l); err != nil {
		return nil, fmt.Errorf("bring %s up: %w", name, err)
	}
	return t, nil
}

// remove closes the device's file and removes the device: persistence off
// first, so that the close takes the device with it.
func (t *tap) remove() error {
	err := t.ioctl(unix.TUNSETPERSIST, func(fd int) error { return unix.IoctlSetInt(fd, unix.TUNSETPERSIST, 0) })
	return errors.Join(err, t.file.Close())
}

// release closes the device's file and leaves the device to its namespace,
// whose deletion removes it.
func (t *tap) release() error { return t.file.Close() }

func (t *tap) ioctl(req uint, set func(fd int) error) error {
	rc, err := t.file.SyscallConn()
	if err != nil {
		return err
	}
	var ierr error
	if err := rc.Control(func(fd uintptr) { ierr = set(int(fd)) }); err != nil {
		return err
	}
	return ierr
}

// setOffload switches the TAP device's offloads: on, the kernel may hand over
// GSO super-frames with partial checksums; off, only finished packets.
func (t *tap) setOffload(on bool) error {
	flags := 0
	if on {
		flags = tapOffloads
	}
	err := t.ioctl(unix.TUNSETOFFLOAD, func(fd int) error { return unix.IoctlSetInt(fd, unix.TUNSETOFFLOAD, flags) })
	if err != nil {
		return fmt.Errorf("TUNSETOFFLOAD on %s: %w", t.name, err)
	}
	return nil
}

// setCarrier sets the device's carrier, as a cable plugged in or pulled.
//
// A carrier that returns takes effect later, in the kernel's linkwatch work:
// until it has put the device's queueing discipline back, what the node sends
// is dropped without a trace. So coming up waits for the notification that
// work sends once done (operational state up), and a script's ping right
// after `link: {up: true}` is not lost (lossy-link lost its first one in
// about one run in twenty).
func (t *tap) setCarrier(up bool) error {
	v := 0
	var ready <-chan struct{}
	if up {
		v = 1
		ready = t.operUp()
	}
	err := t.ioctl(unix.TUNSETCARRIER, func(fd int) error { return unix.IoctlSetPointerInt(fd, unix.TUNSETCARRIER, v) })
	if err != nil {
		return fmt.Errorf("carrier of %s: %w", t.name, err)
	}
	if ready != nil {
		<-ready
	}
	return nil
}

// carrierWait bounds the wait for the kernel to bring a device up: beyond
// it the link is up for the pipeline all the same.
const carrierWait = time.Second

// operUp subscribes to the device's link notifications and returns a
// channel closed at the first that reports it operationally up, or after
// carrierWait. It returns
// nil when there is nothing to wait for: the kernel has not yet taken the
// device out of service (a link taken down and up at once; the carrier's
// return then needs no work, and its notification may come a second later,
// as linkwatch spaces the events it deems not urgent), or the subscription
// failed.
//
// The state is read before subscribing: only the carrier, set after this
// returns, can bring the device back, so no notification is missed.
func (t *tap) operUp() <-chan struct{} {
	if t.inService() {
		return nil
	}
	updates, done := make(chan netlink.LinkUpdate, 16), make(chan struct{})
	ns := t.ns
	if err := netlink.LinkSubscribeWithOptions(updates, done, netlink.LinkSubscribeOptions{Namespace: &ns}); err != nil {
		return nil
	}
	ready := make(chan struct{})
	go func() {
		defer func() {
			close(ready)
			close(done)
			for range updates { // until the subscription's reader has stopped
			}
		}()
		timeout := time.After(carrierWait)
		for {
			select {
			case u, ok := <-updates:
				if !ok {
					return
				}
				if a := u.Link.Attrs(); a.Name == t.name && a.OperState == netlink.OperUp {
					return
				}
			case <-timeout:
				return
			}
		}
	}()
	return ready
}

// inService reports whether the device is operationally up, as the kernel
// last saw it; false if it cannot be read.
func (t *tap) inService() bool {
	nl, err := netlink.NewHandleAt(t.ns)
	if err != nil {
		return false
	}
	defer nl.Close()
	l, err := nl.LinkByName(t.name)
	return err == nil && l.Attrs().OperState == netlink.OperUp
}

// linkMAC is the endpoint's MAC address: locally administered, unicast, and
// derived from the link's identity so that captures of the same lab compare.
func linkMAC(link string, end Endpoint) net.HardwareAddr {
	sum := sha256.Sum256([]byte("ipseclab mac\x00" + link + "\x00" + end.String()))
	mac := net.HardwareAddr(sum[:6])
	mac[0] = mac[0]&^0x01 | 0x02
	return mac
}

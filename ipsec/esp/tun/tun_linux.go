package tun

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/ipseclab/ipseclab/internal/fdread"
)

// Open creates a TUN device in the calling thread's network namespace (run
// it inside namespace.RunHandle), with segmentation offload if offload is
// set.
func Open(name string, offload bool) (*Device, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("open /dev/net/tun: %w", err)
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	flags := uint16(unix.IFF_TUN | unix.IFF_NO_PI)
	if offload {
		flags |= unix.IFF_VNET_HDR
	}
	ifr.SetUint16(flags)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("create TUN %s: %w", name, err)
	}
	if offload {
		// Checksum offload and TSO for IPv4: IPv6 and UDP the kernel segments
		// itself before the TUN sees them.
		if err := unix.IoctlSetInt(fd, unix.TUNSETOFFLOAD, unix.TUN_F_CSUM|unix.TUN_F_TSO4); err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("TUN %s: segmentation offload: %w", name, err)
		}
	}
	// A non-blocking descriptor makes os.File use the poller: a blocked Read
	// returns os.ErrClosed when the device is closed.
	f := os.NewFile(uintptr(fd), "/dev/net/tun")
	d := &Device{f: f, offload: offload}
	if r, err := fdread.New(f); err == nil {
		d.tryRead, d.wait = r.TryRead, r.Wait
	}
	return d, nil
}

// Release closes the device's file but leaves the device, for the deletion
// of its network namespace to remove: a namespace's deletion removes all its
// devices in one batch, where closing each TUN file removes its device on its
// own, waiting for RCU grace periods under the kernel's RTNL lock (15 ms
// each here, 15 s for a lab of a thousand gateways).
func (t *Device) Release() error {
	if f, ok := t.f.(*os.File); ok {
		if rc, err := f.SyscallConn(); err == nil {
			_ = rc.Control(func(fd uintptr) { _ = unix.IoctlSetInt(int(fd), unix.TUNSETPERSIST, 1) })
		}
	}
	return t.f.Close()
}

package esp

import (
	"fmt"

	"golang.org/x/sys/unix"
	"golang.zx2c4.com/wireguard/tun"
)

// openTUN creates a TUN device in the calling thread's network namespace (run
// it inside namespace.RunHandle). With offload, the device carries a virtio-net
// header (IFF_VNET_HDR) and takes TSO: the kernel hands over TCP super-packets
// of up to 64 KiB, which wireguard-go's tun package splits into MTU-sized
// segments on Read and coalesces again (GRO) on Write, so a bulk TCP flow costs
// one TUN syscall per batch instead of one per packet.
func openTUN(name string, offload bool) (tun.Device, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
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
	dev, _, err := tun.CreateUnmonitoredTUNFromFD(fd)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("TUN %s: %w", name, err)
	}
	return dev, nil
}

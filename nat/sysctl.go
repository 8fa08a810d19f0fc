package nat

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/containernetworking/plugins/pkg/utils/sysctl"
	"github.com/vishvananda/netns"

	"github.com/ipseclab/ipseclab/internal/namespace"
	"github.com/ipseclab/ipseclab/nat/natconf"
)

// The per-namespace sysctls the NAT sets. /proc/sys/net resolves to the network
// namespace of the thread that opens it, so they are written from a thread
// inside the NAT node's namespace and never reach the host's.
const (
	sysctlForward       = "net.ipv4.ip_forward"                           // a NAT box is a router
	sysctlTimestamp     = "net.netfilter.nf_conntrack_timestamp"          // start times, for Mapping.Age
	sysctlUDPTimeout    = "net.netfilter.nf_conntrack_udp_timeout"        // UDP not yet answered
	sysctlUDPTimeoutStr = "net.netfilter.nf_conntrack_udp_timeout_stream" // UDP answered and lasting
)

// udpTimeouts are the two conntrack UDP timeouts of a namespace.
type udpTimeouts struct{ unreplied, stream time.Duration }

// readUDPTimeouts reads the namespace's current UDP timeouts, so that a later
// Update with no timeout can put them back.
func readUDPTimeouts(ns netns.NsHandle) (udpTimeouts, error) {
	var t udpTimeouts
	err := namespace.RunHandle(ns, func() error {
		var err error
		if t.unreplied, err = readSeconds(sysctlUDPTimeout); err != nil {
			return err
		}
		t.stream, err = readSeconds(sysctlUDPTimeoutStr)
		return err
	})
	return t, err
}

// applySysctls turns on forwarding and conntrack timestamps and sets the UDP
// timeouts that c asks for (defaults where it asks for none).
//
// It runs after the rules are in place: on kernels where conntrack is a module,
// its sysctls appear in a namespace only once a rule that uses conntrack (the
// nat chains do) has been loaded there.
func applySysctls(ns netns.NsHandle, c *natconf.Config, defaults udpTimeouts) error {
	t := defaults
	if c.UDPTimeout != 0 {
		t.unreplied = time.Duration(c.UDPTimeout)
		t.stream = time.Duration(c.UDPTimeout)
	}
	if c.UDPStreamTimeout != 0 {
		t.stream = time.Duration(c.UDPStreamTimeout)
	}
	settings := []struct{ name, value string }{
		{sysctlForward, "1"},
		{sysctlTimestamp, "1"},
		{sysctlUDPTimeout, strconv.Itoa(int(t.unreplied / time.Second))},
		{sysctlUDPTimeoutStr, strconv.Itoa(int(t.stream / time.Second))},
	}
	return namespace.RunHandle(ns, func() error {
		for _, s := range settings {
			if _, err := sysctl.Sysctl(s.name, s.value); err != nil {
				return fmt.Errorf("set %s=%s in the NAT's namespace: %w", s.name, s.value, err)
			}
		}
		return nil
	})
}

func readSeconds(name string) (time.Duration, error) {
	v, err := sysctl.Sysctl(name)
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", name, err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil {
		return 0, fmt.Errorf("read %s: %q is not a number", name, v)
	}
	return time.Duration(n) * time.Second, nil
}

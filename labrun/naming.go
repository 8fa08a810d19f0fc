package labrun

import (
	"crypto/sha256"
	"fmt"
	"net"
	"strings"
)

// NetnsPrefix starts the name of every namespace ipseclab creates, so that
// `destroy --all` finds every leftover, even after the lab process was killed.
const NetnsPrefix = "ipseclab-"

// LabPrefix is the namespace-name prefix of one lab. Lab names cannot contain
// '.', and node names cannot start with '_', so neither labs nor nodes collide.
func LabPrefix(lab string) string { return NetnsPrefix + lab + "." }

// NodeNetns is the namespace name of a node: ipseclab-<lab>.<node>.
func NodeNetns(lab, node string) string { return LabPrefix(lab) + node }

// LANNetns is the namespace that holds a lab's LAN bridges.
func LANNetns(lab string) string { return LabPrefix(lab) + "_lans" }

// LabOfNetns returns the lab a namespace name belongs to, if it is ipseclab's.
func LabOfNetns(ns string) (string, bool) {
	rest, ok := strings.CutPrefix(ns, NetnsPrefix)
	if !ok {
		return "", false
	}
	lab, _, ok := strings.Cut(rest, ".")
	return lab, ok
}

// MAC derives a stable, locally administered unicast MAC address for an
// interface, so captures of the same lab look the same run after run.
func MAC(lab, node, iface string) net.HardwareAddr {
	h := sha256.Sum256([]byte(fmt.Sprintf("%s/%s/%s", lab, node, iface)))
	mac := net.HardwareAddr(h[:6])
	mac[0] = (mac[0] | 0x02) &^ 0x01
	return mac
}

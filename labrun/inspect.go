package labrun

import (
	"fmt"
	"net"
	"sort"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/ipseclab/ipseclab/topology"
)

// LabInfo is what `ipseclab inspect` shows.
type LabInfo struct {
	Lab     string       `json:"lab"`
	PID     int          `json:"pid,omitempty"`
	Status  string       `json:"status,omitempty"`
	Seed    uint64       `json:"seed,omitempty"`
	Started time.Time    `json:"started,omitempty"`
	Nodes   []NodeInfo   `json:"nodes"`
	Links   []LinkStatus `json:"links,omitempty"` // impairments and counters, from the lab process
}

// NodeInfo describes one node as found in its namespace.
type NodeInfo struct {
	Name       string            `json:"name"`
	Kind       topology.Kind     `json:"kind"`
	Labels     map[string]string `json:"labels,omitempty"` // the lab file's labels: for your own tooling
	Namespace  string            `json:"namespace"`
	Present    bool              `json:"present"` // the namespace exists
	Interfaces []InterfaceInfo   `json:"interfaces"`
	Routes     []string          `json:"routes"`
}

// InterfaceInfo is one interface of a node.
type InterfaceInfo struct {
	Name  string   `json:"name"`
	Type  string   `json:"type"`
	MAC   string   `json:"mac,omitempty"`
	MTU   int      `json:"mtu"`
	Up    bool     `json:"up"`
	Addrs []string `json:"addresses"`
}

// Inspect reads every node's namespace of a deployed lab with netlink. It does
// not need the lab process.
func Inspect(lab *topology.Lab) (*LabInfo, error) {
	info := &LabInfo{Lab: lab.Name}
	for _, name := range lab.NodeNames() {
		ni := NodeInfo{Name: name, Kind: lab.Topology.Nodes[name].Kind, Labels: lab.Topology.Nodes[name].Labels, Namespace: NodeNetns(lab.Name, name)}
		h, err := netns.GetFromPath(NetnsPath(ni.Namespace))
		if err == nil {
			ni.Present = true
			err = readNamespace(h, &ni)
			h.Close()
			if err != nil {
				return nil, fmt.Errorf("node %s: %w", name, err)
			}
		}
		info.Nodes = append(info.Nodes, ni)
	}
	return info, nil
}

func readNamespace(h netns.NsHandle, ni *NodeInfo) error {
	nl, err := netlink.NewHandleAt(h, unix.NETLINK_ROUTE)
	if err != nil {
		return err
	}
	defer nl.Close()
	links, err := nl.LinkList()
	if err != nil {
		return err
	}
	sort.Slice(links, func(i, j int) bool { return links[i].Attrs().Index < links[j].Attrs().Index })
	names := map[int]string{}
	for _, l := range links {
		a := l.Attrs()
		names[a.Index] = a.Name
		ii := InterfaceInfo{Name: a.Name, Type: l.Type(), MTU: a.MTU, Up: a.Flags&net.FlagUp != 0}
		if len(a.HardwareAddr) > 0 {
			ii.MAC = a.HardwareAddr.String()
		}
		addrs, err := nl.AddrList(l, netlink.FAMILY_ALL)
		if err != nil {
			return err
		}
		for _, ad := range addrs {
			if ad.IP.IsLinkLocalUnicast() {
				continue
			}
			ii.Addrs = append(ii.Addrs, ad.IPNet.String())
		}
		ni.Interfaces = append(ni.Interfaces, ii)
	}
	// Every table, not only main: a gateway's routes into its TUN, with
	// each SA's inner MTU, live in a table of their own.
	routes, err := nl.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: unix.RT_TABLE_UNSPEC}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return err
	}
	sort.SliceStable(routes, func(i, j int) bool {
		return routes[i].Table == unix.RT_TABLE_MAIN && routes[j].Table != unix.RT_TABLE_MAIN
	})
	for _, r := range routes {
		if r.Table == unix.RT_TABLE_LOCAL || r.Type == unix.RTN_LOCAL || r.Type == unix.RTN_BROADCAST {
			continue
		}
		s := "default"
		if r.Dst != nil {
			if ones, _ := r.Dst.Mask.Size(); ones > 0 {
				s = r.Dst.String()
			}
		}
		if r.Gw != nil {
			s += " via " + r.Gw.String()
		}
		if n := names[r.LinkIndex]; n != "" {
			s += " dev " + n
		}
		if r.MTU > 0 {
			s += fmt.Sprintf(" mtu %d", r.MTU)
		}
		if r.Table != unix.RT_TABLE_MAIN {
			s += fmt.Sprintf(" table %d", r.Table)
		}
		ni.Routes = append(ni.Routes, s)
	}
	return nil
}

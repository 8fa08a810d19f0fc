package netenv

import (
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// HostSnapshot describes the host's network namespace: links, addresses,
// routes of every table, and the nftables ruleset. A lab must leave it exactly
// as it found it.
type HostSnapshot struct {
	Links, Addrs, Routes, Nft []string
	Netns                     []string
}

// TakeHostSnapshot reads the host namespace (the test process's own).
func TakeHostSnapshot(t testing.TB) HostSnapshot {
	t.Helper()
	var s HostSnapshot
	links, err := netlink.LinkList()
	if err != nil {
		t.Fatalf("list host links: %v", err)
	}
	for _, l := range links {
		a := l.Attrs()
		s.Links = append(s.Links, fmt.Sprintf("%d %s %s mtu=%d flags=%v master=%d", a.Index, a.Name, l.Type(), a.MTU, a.Flags, a.MasterIndex))
	}
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		t.Fatalf("list host addresses: %v", err)
	}
	for _, a := range addrs {
		s.Addrs = append(s.Addrs, fmt.Sprintf("%d %s", a.LinkIndex, a.IPNet))
	}
	routes, err := netlink.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Table: unix.RT_TABLE_UNSPEC}, netlink.RT_FILTER_TABLE)
	if err != nil {
		t.Fatalf("list host routes: %v", err)
	}
	for _, r := range routes {
		s.Routes = append(s.Routes, fmt.Sprintf("t%d %v via %v dev %d src %v", r.Table, r.Dst, r.Gw, r.LinkIndex, r.Src))
	}
	c, err := nftables.New()
	if err == nil {
		tables, err := c.ListTables()
		if err != nil {
			t.Fatalf("list host nftables tables: %v", err)
		}
		for _, tb := range tables {
			s.Nft = append(s.Nft, fmt.Sprintf("table %v %s", tb.Family, tb.Name))
			chains, _ := c.ListChainsOfTableFamily(tb.Family)
			for _, ch := range chains {
				if ch.Table.Name != tb.Name {
					continue
				}
				rules, _ := c.GetRules(tb, ch)
				s.Nft = append(s.Nft, fmt.Sprintf("chain %s/%s rules=%d", tb.Name, ch.Name, len(rules)))
				for _, r := range rules {
					s.Nft = append(s.Nft, fmt.Sprintf("rule %s/%s %d %x", tb.Name, ch.Name, r.Handle, r.UserData))
				}
			}
		}
	}
	ents, _ := os.ReadDir("/run/netns")
	for _, e := range ents {
		s.Netns = append(s.Netns, e.Name())
	}
	for _, l := range [][]string{s.Links, s.Addrs, s.Routes, s.Nft, s.Netns} {
		sort.Strings(l)
	}
	return s
}

// Diff describes how two snapshots differ, or returns "".
func (s HostSnapshot) Diff(after HostSnapshot) string {
	var b strings.Builder
	cmp := func(what string, x, y []string) {
		in := map[string]int{}
		for _, v := range x {
			in[v]++
		}
		for _, v := range y {
			in[v]--
		}
		for v, n := range in {
			switch {
			case n > 0:
				fmt.Fprintf(&b, "%s removed: %s\n", what, v)
			case n < 0:
				fmt.Fprintf(&b, "%s added: %s\n", what, v)
			}
		}
	}
	cmp("link", s.Links, after.Links)
	cmp("address", s.Addrs, after.Addrs)
	cmp("route", s.Routes, after.Routes)
	cmp("nftables", s.Nft, after.Nft)
	return b.String()
}

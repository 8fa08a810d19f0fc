package nat_test

import (
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"github.com/ti-mo/conntrack"

	"github.com/ipseclab/ipseclab/events"
	"github.com/ipseclab/ipseclab/internal/testenv"
	"github.com/ipseclab/ipseclab/internal/testenv/netenv"
	"github.com/ipseclab/ipseclab/nat"
	"github.com/ipseclab/ipseclab/nat/natconf"
)

func TestPreservedPortReachesOutsideWithNATAddress(t *testing.T) {
	tb := newTestbed(t)
	box := tb.start(t, natconf.Config{Outside: "eth1", Ports: natconf.PortsPreserve})

	in := udpSocket(t, tb.inside, ap(insideAddr, 40000))
	out := udpSocket(t, tb.outside, ap(outsideAddr, 7000))
	src := sendUDP(t, in, out, "hello")
	if src != ap(natOutside, 40000) {
		t.Fatalf("outside host saw %s; want the NAT's address with the port kept, %s", src, ap(natOutside, 40000))
	}
	// The mapping carries the reply back to the inside host.
	if got := sendUDPTo(t, out, src, in, "reply"); got != ap(outsideAddr, 7000) {
		t.Fatalf("inside host saw the reply from %s; want %s", got, ap(outsideAddr, 7000))
	}
	time.Sleep(1100 * time.Millisecond) // so that the mapping has an age
	ms, err := box.Show()
	if err != nil {
		t.Fatal(err)
	}
	m, ok := findMapping(ms, ap(insideAddr, 40000), "udp")
	if !ok {
		t.Fatalf("Show has no mapping for %s: %v", ap(insideAddr, 40000), ms)
	}
	if m.Outside != src || m.Remote != ap(outsideAddr, 7000) || m.Forwarded || m.PortChanged() {
		t.Fatalf("Show says %v; the outside host saw %s", m, src)
	}
	if m.Age < time.Second || m.Age > time.Minute || m.TimeLeft <= 0 {
		t.Fatalf("mapping age %v, time left %v", m.Age, m.TimeLeft)
	}
	if m.State != "replied" && m.State != "assured" {
		t.Fatalf("mapping state %q after a reply", m.State)
	}
}

// sendUDPTo sends from one socket to an explicit address (a NAT mapping, a
// forward) and returns the source the receiving socket saw.
func sendUDPTo(t *testing.T, from *net.UDPConn, dst netip.AddrPort, to *net.UDPConn, payload string) netip.AddrPort {
	t.Helper()
	if _, err := from.WriteToUDPAddrPort([]byte(payload), dst); err != nil {
		t.Fatal(err)
	}
	src, ok := recvUDP(t, to, payload, 3*time.Second)
	if !ok {
		t.Fatalf("%q to %s never arrived", payload, dst)
	}
	return src
}

func TestRandomPortsChangeTheSourcePortAndShowAgreesWithConntrack(t *testing.T) {
	tb := newTestbed(t)
	box := tb.start(t, natconf.Config{Ports: natconf.PortsRandom}) // outside from the default route
	if box.Outside() != "eth1" {
		t.Fatalf("outside interface %q; the default route is on eth1", box.Outside())
	}
	out := udpSocket(t, tb.outside, ap(outsideAddr, 7000))
	seen := map[uint16]netip.AddrPort{}
	// With fully random ports, a mapping keeps its port by chance once in
	// about 64000: three chances together make this test fail about once in
	// 20000 runs, and a box that preserves ports fail every time.
	for _, port := range []uint16{40001, 40002, 40003} {
		in := udpSocket(t, tb.inside, ap(insideAddr, port))
		src := sendUDP(t, in, out, fmt.Sprint("from ", port))
		if src.Addr() != natOutside {
			t.Fatalf("outside host saw %s; want the NAT's address %s", src, natOutside)
		}
		if src.Port() == port {
			t.Errorf("port %d kept in ports: random mode", port)
		}
		seen[port] = src
	}

	ms, err := box.Show()
	if err != nil {
		t.Fatal(err)
	}
	for port, src := range seen {
		m, ok := findMapping(ms, ap(insideAddr, port), "udp")
		if !ok || m.Outside != src || !m.PortChanged() {
			t.Errorf("Show has %v for inside port %d; the outside host saw %s", m, port, src)
		}
	}

	// Show is conntrack's view: compare with a dump taken directly.
	c, err := conntrack.Dial(&netlink.Config{NetNS: int(tb.box.h)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	flows, err := c.Dump(nil)
	if err != nil {
		t.Fatal(err)
	}
	natted := 0
	for _, f := range flows {
		if !f.Status.SrcNAT() {
			continue
		}
		natted++
		in := netip.AddrPortFrom(f.TupleOrig.IP.SourceAddress, f.TupleOrig.Proto.SourcePort)
		m, ok := findMapping(ms, in, "udp")
		if !ok || m.ID != f.ID ||
			m.Outside != netip.AddrPortFrom(f.TupleReply.IP.DestinationAddress, f.TupleReply.Proto.DestinationPort) ||
			m.Remote != netip.AddrPortFrom(f.TupleOrig.IP.DestinationAddress, f.TupleOrig.Proto.DestinationPort) {
			t.Errorf("conntrack entry %d %s / %s is shown as %v", f.ID, f.TupleOrig, f.TupleReply, m)
		}
		if left := time.Duration(f.Timeout) * time.Second; m.TimeLeft > left+time.Second || m.TimeLeft < left-2*time.Second {
			t.Errorf("mapping %d: time left %v, conntrack says %v", f.ID, m.TimeLeft, left)
		}
	}
	if natted != len(ms) {
		t.Errorf("conntrack has %d NATed entries, Show lists %d", natted, len(ms))
	}
}

func TestShortUDPTimeoutExpiresTheMapping(t *testing.T) {
	tb := newTestbed(t)
	sub := tb.bus.Subscribe(nil)
	defer sub.Close()
	box := tb.start(t, natconf.Config{Outside: "eth1", UDPTimeout: natconf.Duration(2 * time.Second)})
	if v := readSysctl(t, tb.box, "net.netfilter.nf_conntrack_udp_timeout"); v != "2" {
		t.Fatalf("nf_conntrack_udp_timeout in the NAT is %s, want 2", v)
	}
	if v := readSysctl(t, tb.box, "net.netfilter.nf_conntrack_udp_timeout_stream"); v != "2" {
		t.Fatalf("nf_conntrack_udp_timeout_stream in the NAT is %s, want 2 (udp-timeout covers both)", v)
	}

	in := udpSocket(t, tb.inside, ap(insideAddr, 40000))
	out := udpSocket(t, tb.outside, ap(outsideAddr, 7000))
	sent := time.Now()
	sendUDP(t, in, out, "one")
	newEv := waitEvent(t, sub, events.NATMappingNew, 3*time.Second, nil)
	if newEv.Node != "home-nat" || newEv.Field("inside") != "192.168.1.10:40000" || newEv.Field("outside") != "198.51.100.2:40000" {
		t.Fatalf("new-mapping event %v fields %v", newEv, newEv.Fields)
	}
	ms, err := box.Show()
	if err != nil {
		t.Fatal(err)
	}
	m, ok := findMapping(ms, ap(insideAddr, 40000), "udp")
	if !ok || m.TimeLeft > 2*time.Second {
		t.Fatalf("mapping %v: want one with at most 2s left", m)
	}

	// The watcher announces the expiry promptly, although conntrack's own
	// garbage collector may not look for a minute.
	exp := waitEvent(t, sub, events.NATMappingExpired, 6*time.Second, func(e events.Event) bool {
		return e.Field("conntrack_id") == m.ID
	})
	if exp.Field("reason") != "expired" {
		t.Fatalf("expired event %v: reason %v", exp, exp.Field("reason"))
	}
	if idle := time.Since(sent); idle < 2*time.Second {
		t.Fatalf("mapping announced gone after %v, before its 2s timeout", idle)
	}
	ms, err = box.Show()
	if err != nil {
		t.Fatal(err)
	}
	if m, ok := findMapping(ms, ap(insideAddr, 40000), "udp"); ok {
		t.Fatalf("mapping still shown after it expired: %v", m)
	}
}

func TestFlushGivesANewPortInRandomMode(t *testing.T) {
	tb := newTestbed(t)
	sub := tb.bus.Subscribe(nil)
	defer sub.Close()
	box := tb.start(t, natconf.Config{Outside: "eth1", Ports: natconf.PortsRandom})
	in := udpSocket(t, tb.inside, ap(insideAddr, 40000))
	out := udpSocket(t, tb.outside, ap(outsideAddr, 7000))
	before := sendUDP(t, in, out, "before")
	// Sent again while the mapping lives, it keeps its port.
	if again := sendUDP(t, in, out, "again"); again != before {
		t.Fatalf("a live mapping changed from %s to %s", before, again)
	}

	dropped, err := box.Flush()
	if err != nil {
		t.Fatal(err)
	}
	if len(dropped) != 1 || dropped[0].Outside != before {
		t.Fatalf("Flush dropped %v; want the one mapping to %s", dropped, before)
	}
	if ms, _ := box.Show(); len(ms) != 0 {
		t.Fatalf("mappings after flush: %v", ms)
	}
	fl := waitEvent(t, sub, events.NATFlush, 3*time.Second, nil)
	if fl.Field("mappings") != 1 {
		t.Fatalf("flush event %v", fl)
	}
	gone := waitEvent(t, sub, events.NATMappingExpired, 3*time.Second, nil)
	if gone.Field("reason") != "flush" || gone.Field("conntrack_id") != dropped[0].ID {
		t.Fatalf("after a flush: %v %v", gone, gone.Fields)
	}

	// One chance in about 64000 that the new random port equals the old one.
	after := sendUDP(t, in, out, "after")
	if after.Addr() != natOutside || after.Port() == before.Port() {
		t.Fatalf("after the flush the outside host saw %s, before it %s: want a new port", after, before)
	}
}

func TestESPDropBlocksProtocol50WhileUDPPasses(t *testing.T) {
	tb := newTestbed(t)
	box := tb.start(t, natconf.Config{Outside: "eth1", ESP: natconf.ESPPass})
	espIn := rawESP(t, tb.inside, insideAddr)
	espOut := rawESP(t, tb.outside, outsideAddr)
	in := udpSocket(t, tb.inside, ap(insideAddr, 4500))
	out := udpSocket(t, tb.outside, ap(outsideAddr, 4500))

	send := func(payload string) {
		t.Helper()
		if _, err := espIn.WriteToIP(espPacket(0x1000, 1, payload), &net.IPAddr{IP: outsideAddr.AsSlice()}); err != nil {
			t.Fatal(err)
		}
	}

	// esp: pass: ESP crosses, its source rewritten to the NAT's address.
	send("esp-pass")
	src, ok := recvESP(t, espOut, "esp-pass", 3*time.Second)
	if !ok || src != natOutside {
		t.Fatalf("esp: pass: ESP arrived=%v from %s; want it from %s", ok, src, natOutside)
	}
	ms, _ := box.Show()
	if m, ok := findMapping(ms, ap(insideAddr, 0), "esp"); !ok || m.Outside != ap(natOutside, 0) {
		t.Fatalf("esp: pass: no ESP mapping in %v", ms)
	}

	// esp: drop, switched on while the box runs.
	if err := box.Update(natconf.Config{Outside: "eth1", ESP: natconf.ESPDrop}); err != nil {
		t.Fatal(err)
	}
	send("esp-drop")
	// UDP sent after the ESP packet takes the same path; once it has
	// arrived, the ESP packet would have too.
	if src := sendUDP(t, in, out, "udp-passes"); src.Addr() != natOutside {
		t.Fatalf("UDP came from %s", src)
	}
	if _, ok := recvESP(t, espOut, "esp-drop", 500*time.Millisecond); ok {
		t.Fatal("esp: drop: an ESP packet crossed the NAT")
	}
	// Inbound ESP to the NAT's address is dropped too, although the mapping
	// from before the switch still exists.
	if _, err := espOut.WriteToIP(espPacket(0x2000, 1, "esp-in"), &net.IPAddr{IP: natOutside.AsSlice()}); err != nil {
		t.Fatal(err)
	}
	sendUDPTo(t, out, ap(natOutside, 4500), in, "udp-in")
	if _, ok := recvESP(t, espIn, "esp-in", 500*time.Millisecond); ok {
		t.Fatal("esp: drop: an inbound ESP packet crossed the NAT")
	}
}

func TestIKEPortRemapChangesSourcePort500(t *testing.T) {
	for _, tc := range []struct {
		mode  natconf.IKEPort
		ports natconf.Ports
	}{{natconf.IKEPortPreserve, natconf.PortsPreserve}, {natconf.IKEPortRemap, natconf.PortsPreserve}, {natconf.IKEPortRemap, natconf.PortsRandom}} {
		t.Run(fmt.Sprintf("%s/%s", tc.mode, tc.ports), func(t *testing.T) {
			tb := newTestbed(t)
			tb.start(t, natconf.Config{Outside: "eth1", IKEPort: tc.mode, Ports: tc.ports})
			out := udpSocket(t, tb.outside, ap(outsideAddr, 500))
			ike := udpSocket(t, tb.inside, ap(insideAddr, 500))
			src := sendUDP(t, ike, out, "ike")
			if src.Addr() != natOutside {
				t.Fatalf("IKE came from %s", src)
			}
			switch tc.mode {
			case natconf.IKEPortPreserve:
				if src.Port() != 500 {
					t.Fatalf("ike-port: preserve: port 500 became %d", src.Port())
				}
			case natconf.IKEPortRemap:
				if src.Port() == 500 || src.Port() < 1024 {
					t.Fatalf("ike-port: remap: port 500 became %d; want a port from 1024 up", src.Port())
				}
				// The reply to the remapped port reaches the IKE socket.
				if got := sendUDPTo(t, out, src, ike, "ike-reply"); got != ap(outsideAddr, 500) {
					t.Fatalf("reply came from %s", got)
				}
			}
			if tc.ports == natconf.PortsPreserve {
				// Other ports are not affected by ike-port.
				other := udpSocket(t, tb.inside, ap(insideAddr, 4500))
				if src := sendUDP(t, other, out, "natt"); src != ap(natOutside, 4500) {
					t.Fatalf("port 4500 became %s", src)
				}
			}
		})
	}
}

func TestDoubleNATCarriesTrafficEndToEnd(t *testing.T) {
	// inside 192.168.1.10 ─ [nat1] 10.0.0.2 ─ 10.0.0.1 [nat2 (carrier)] 198.51.100.2 ─ outside
	inside, home, carrier, outside := newHost(t, "inside"), newHost(t, "home"), newHost(t, "carrier"), newHost(t, "outside")
	cgnat := netip.MustParseAddr("10.0.0.1")
	homeOut := netip.MustParseAddr("10.0.0.2")
	link(t, inside, "eth0", insideAddr, home, "eth0", natInside)
	link(t, home, "eth1", homeOut, carrier, "eth0", cgnat)
	link(t, carrier, "eth1", natOutside, outside, "eth0", outsideAddr)
	route(t, inside, "default", natInside)
	route(t, home, "default", cgnat)
	route(t, carrier, "default", outsideAddr)

	bus := events.NewBus("double")
	defer bus.Close()
	boxes := map[string]*nat.Box{}
	for name, c := range map[string]struct {
		h   host
		cfg natconf.Config
	}{"home": {home, natconf.Config{}}, "carrier": {carrier, natconf.Config{Ports: natconf.PortsRandom}}} {
		b, err := nat.Start(c.h.h, c.cfg, events.Publisher{Bus: bus, Node: name})
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		boxes[name] = b
	}

	in := udpSocket(t, inside, ap(insideAddr, 40000))
	out := udpSocket(t, outside, ap(outsideAddr, 4500))
	src := sendUDP(t, in, out, "through two NATs")
	if src.Addr() != natOutside {
		t.Fatalf("outside host saw %s; want the carrier NAT's address %s", src, natOutside)
	}
	if got := sendUDPTo(t, out, src, in, "and back"); got != ap(outsideAddr, 4500) {
		t.Fatalf("reply arrived from %s", got)
	}

	// The home NAT's outside is the carrier NAT's inside.
	hm, _ := boxes["home"].Show()
	cm, _ := boxes["carrier"].Show()
	h, ok1 := findMapping(hm, ap(insideAddr, 40000), "udp")
	c, ok2 := findMapping(cm, ap(homeOut, h.Outside.Port()), "udp")
	if !ok1 || !ok2 || h.Outside.Addr() != homeOut || c.Outside != src {
		t.Fatalf("home NAT %v, carrier NAT %v, outside saw %s", hm, cm, src)
	}
}

func TestForwardsReachTheInsideHostAndUnsolicitedTrafficDoesNot(t *testing.T) {
	tb := newTestbed(t)
	// A careless outside host that knows a route to the private network.
	route(t, tb.outside, "192.168.1.0/24", natOutside)
	box := tb.start(t, natconf.Config{Outside: "eth1", Forward: []natconf.Forward{
		{Proto: natconf.UDP, Port: 500, To: must(natconf.ParseTarget("192.168.1.10"))(t)},
		{Proto: natconf.UDP, Port: 4500, To: must(natconf.ParseTarget("192.168.1.10:4501"))(t)},
	}})
	ike := udpSocket(t, tb.inside, ap(insideAddr, 500))
	natt := udpSocket(t, tb.inside, ap(insideAddr, 4501))
	other := udpSocket(t, tb.inside, ap(insideAddr, 7000))
	peer := udpSocket(t, tb.outside, ap(outsideAddr, 500))

	if src := sendUDPTo(t, peer, ap(natOutside, 500), ike, "to 500"); src != ap(outsideAddr, 500) {
		t.Fatalf("forwarded packet came from %s; a forward keeps the peer's address", src)
	}
	if src := sendUDPTo(t, peer, ap(natOutside, 4500), natt, "to 4500"); src != ap(outsideAddr, 500) {
		t.Fatalf("forwarded packet came from %s", src)
	}
	// The inside host answers from its own port; the peer sees the NAT's.
	if src := sendUDPTo(t, ike, ap(outsideAddr, 500), peer, "answer"); src != ap(natOutside, 500) {
		t.Fatalf("answer through the forward came from %s", src)
	}

	ms, err := box.Show()
	if err != nil {
		t.Fatal(err)
	}
	m, ok := findMapping(ms, ap(insideAddr, 4501), "udp")
	if !ok || !m.Forwarded || m.Outside != ap(natOutside, 4500) || m.Remote != ap(outsideAddr, 500) {
		t.Fatalf("forward shown as %v (all: %v)", m, ms)
	}

	// Straight to the inside address, not through a forward: dropped, as by
	// any home router.
	if _, err := peer.WriteToUDPAddrPort([]byte("unsolicited"), ap(insideAddr, 7000)); err != nil {
		t.Fatal(err)
	}
	sendUDPTo(t, peer, ap(natOutside, 500), ike, "marker")
	if _, ok := recvUDP(t, other, "unsolicited", 500*time.Millisecond); ok {
		t.Fatal("an unsolicited packet from outside reached the inside host")
	}
}

func TestStartFailsForAMissingOutsideInterface(t *testing.T) {
	tb := newTestbed(t)
	_, err := nat.Start(tb.box.h, natconf.Config{Outside: "wan0"}, events.Publisher{Node: "home-nat"})
	if err == nil {
		t.Fatal("Start accepted an outside interface that does not exist")
	}
	t.Log(err)
}

func TestHostNamespaceIsUntouched(t *testing.T) {
	testenv.NeedRoot(t)
	before := hostRuleset(t)
	hostSnap := netenv.TakeHostSnapshot(t)
	hostTimeout := readHostSysctl(t, "net/netfilter/nf_conntrack_udp_timeout")

	tb := newTestbed(t)
	box := tb.start(t, natconf.Config{Outside: "eth1", UDPTimeout: natconf.Duration(5 * time.Second), Ports: natconf.PortsRandom,
		ESP: natconf.ESPDrop, IKEPort: natconf.IKEPortRemap,
		Forward: []natconf.Forward{{Proto: natconf.UDP, Port: 4500, To: must(natconf.ParseTarget("192.168.1.10:4500"))(t)}}})
	in := udpSocket(t, tb.inside, ap(insideAddr, 500))
	out := udpSocket(t, tb.outside, ap(outsideAddr, 500))
	sendUDP(t, in, out, "ike")
	if _, err := box.Flush(); err != nil {
		t.Fatal(err)
	}
	// The NAT's table is in its own namespace, with every chain.
	if got := namespaceChains(t, tb.box); got != "ipseclab/forward ipseclab/postrouting ipseclab/prerouting" {
		t.Fatalf("chains in the NAT's namespace: %q", got)
	}
	if err := box.Close(); err != nil {
		t.Fatal(err)
	}

	if after := hostRuleset(t); after != before {
		t.Fatalf("the host's nftables ruleset changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if d := hostSnap.Diff(netenv.TakeHostSnapshot(t)); d != "" {
		t.Fatalf("the host namespace changed:\n%s", d)
	}
	if v := readHostSysctl(t, "net/netfilter/nf_conntrack_udp_timeout"); v != hostTimeout {
		t.Fatalf("the host's nf_conntrack_udp_timeout changed from %s to %s", hostTimeout, v)
	}
}

// hostRuleset lists the host's nftables tables, chains and rules, with every
// expression, as google/nftables reads them back.
func hostRuleset(t *testing.T) string {
	t.Helper()
	c, err := nftables.New()
	if err != nil {
		t.Fatal(err)
	}
	tables, err := c.ListTables()
	if err != nil {
		t.Fatalf("list the host's tables: %v", err)
	}
	chains, err := c.ListChains()
	if err != nil {
		t.Fatalf("list the host's chains: %v", err)
	}
	var b strings.Builder
	for _, tb := range tables {
		fmt.Fprintf(&b, "table %d %s flags=%d\n", tb.Family, tb.Name, tb.Flags)
		for _, ch := range chains {
			if ch.Table.Name != tb.Name || ch.Table.Family != tb.Family {
				continue
			}
			fmt.Fprintf(&b, "  chain %s type=%s hook=%v prio=%v policy=%v\n", ch.Name, ch.Type, deref(ch.Hooknum), deref(ch.Priority), deref(ch.Policy))
			rules, err := c.GetRules(tb, ch)
			if err != nil {
				t.Fatalf("rules of %s/%s: %v", tb.Name, ch.Name, err)
			}
			for _, r := range rules {
				j, _ := json.Marshal(r.Exprs)
				fmt.Fprintf(&b, "    rule %d %s %x\n", r.Handle, j, r.UserData)
			}
		}
	}
	return b.String()
}

func deref[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}

func namespaceChains(t *testing.T, on host) string {
	t.Helper()
	c, err := nftables.New(nftables.WithNetNSFd(int(on.h)))
	if err != nil {
		t.Fatal(err)
	}
	chains, err := c.ListChains()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, ch := range chains {
		names = append(names, ch.Table.Name+"/"+ch.Name)
	}
	slices.Sort(names)
	return strings.Join(names, " ")
}

func readHostSysctl(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("/proc/sys/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// When the kernel drops conntrack events because the watcher's socket
// overflowed, the watcher resubscribes and catches up from the table: every
// mapping is still announced, once, as new and then as gone.
func TestWatcherCatchesUpAfterLosingEvents(t *testing.T) {
	defer nat.SetEventReadBuffer(nat.SetEventReadBuffer(4096)) // a few events' worth
	tb := newTestbed(t)
	sub := tb.bus.Subscribe(nil)
	defer sub.Close()
	box := tb.start(t, natconf.Config{Outside: "eth1"})

	// A burst of new flows: one socket to many ports of the outside host.
	const flows = 3000
	in := udpSocket(t, tb.inside, ap(insideAddr, 40000))
	for port := 1; port <= flows; port++ {
		if _, err := in.WriteToUDPAddrPort([]byte("x"), ap(outsideAddr, uint16(port))); err != nil {
			t.Fatal(err)
		}
	}
	ms, err := box.Show()
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != flows {
		t.Fatalf("%d mappings after %d flows", len(ms), flows)
	}
	count := func(kind events.Kind) {
		t.Helper()
		seen := map[any]bool{}
		timeout := time.After(20 * time.Second)
		for len(seen) < flows {
			select {
			case e := <-sub.C():
				if e.Kind != kind {
					continue
				}
				id := e.Field("conntrack_id")
				if seen[id] {
					t.Fatalf("mapping %v announced twice as %s", id, kind)
				}
				seen[id] = true
			case <-timeout:
				t.Fatalf("%d of %d mappings announced as %s", len(seen), flows, kind)
			}
		}
	}
	count(events.NATMappingNew)

	if _, err := box.Flush(); err != nil {
		t.Fatal(err)
	}
	count(events.NATMappingExpired)
	// Nothing more: no mapping is announced twice.
	select {
	case e := <-sub.C():
		if e.Kind == events.NATMappingNew || e.Kind == events.NATMappingExpired {
			t.Fatalf("extra announcement %v", e)
		}
	case <-time.After(300 * time.Millisecond):
	}
}

func TestTimeoutsAreSetAndPutBack(t *testing.T) {
	tb := newTestbed(t)
	const unreplied, stream = "net.netfilter.nf_conntrack_udp_timeout", "net.netfilter.nf_conntrack_udp_timeout_stream"
	origU, origS := readSysctl(t, tb.box, unreplied), readSysctl(t, tb.box, stream)
	box := tb.start(t, natconf.Config{UDPTimeout: natconf.Duration(5 * time.Second), UDPStreamTimeout: natconf.Duration(time.Minute)})
	if u, s := readSysctl(t, tb.box, unreplied), readSysctl(t, tb.box, stream); u != "5" || s != "60" {
		t.Fatalf("timeouts %s/%s, want 5/60", u, s)
	}
	if v := readSysctl(t, tb.box, "net.ipv4.ip_forward"); v != "1" {
		t.Fatalf("the NAT does not forward: ip_forward=%s", v)
	}
	if err := box.Update(natconf.Config{}); err != nil {
		t.Fatal(err)
	}
	if u, s := readSysctl(t, tb.box, unreplied), readSysctl(t, tb.box, stream); u != origU || s != origS {
		t.Fatalf("after an update without timeouts: %s/%s, want the namespace's own %s/%s", u, s, origU, origS)
	}
}

// Two inside hosts sending from the same port to the same peer cannot both
// keep it: the second mapping gets another port (PortsPreserve's doc). For
// ESP, which has no port, the second host gets nothing through.
func TestASecondHostGetsAnotherPortAndNoESP(t *testing.T) {
	tb := newTestbed(t)
	second := newHost(t, "inside2")
	secondAddr, natInside2 := netip.MustParseAddr("192.168.2.10"), netip.MustParseAddr("192.168.2.1")
	link(t, second, "eth0", secondAddr, tb.box, "eth2", natInside2)
	route(t, second, "default", natInside2)
	tb.start(t, natconf.Config{Outside: "eth1"})

	peer := udpSocket(t, tb.outside, ap(outsideAddr, 500))
	first := sendUDP(t, udpSocket(t, tb.inside, ap(insideAddr, 500)), peer, "first")
	other := sendUDP(t, udpSocket(t, second, ap(secondAddr, 500)), peer, "second")
	if first != ap(natOutside, 500) {
		t.Fatalf("the first host was seen as %s, want %s", first, ap(natOutside, 500))
	}
	if other.Addr() != natOutside || other.Port() == 500 {
		t.Fatalf("the second host was seen as %s; want the NAT's address with another port", other)
	}

	// ESP has no port to change: only the first host's ESP reaches the peer
	// (ESPPass's doc).
	espPeer := rawESP(t, tb.outside, outsideAddr)
	for i, h := range []struct {
		host host
		addr netip.Addr
	}{{tb.inside, insideAddr}, {second, secondAddr}} {
		payload := fmt.Sprint("esp from host ", i)
		if _, err := rawESP(t, h.host, h.addr).WriteToIP(espPacket(0x3000, 1, payload), &net.IPAddr{IP: outsideAddr.AsSlice()}); err != nil {
			t.Fatal(err)
		}
		_, ok := recvESP(t, espPeer, payload, 500*time.Millisecond)
		if ok != (i == 0) {
			t.Fatalf("ESP from host %d arrived=%v; want only the first host's to", i, ok)
		}
	}
}

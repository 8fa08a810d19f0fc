package topology

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

// refused parses src and returns the error that contains want, failing the
// test if there is none or if it is not on the line that contains atLine.
func refused(t *testing.T, src, want, atLine string) *Error {
	t.Helper()
	_, err := Parse("lab.yaml", []byte(src))
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("lab accepted (or not a topology.Errors: %v); want an error containing %q", err, want)
	}
	for _, e := range errs {
		if strings.Contains(e.Msg, want) {
			if line := lineOf(src, atLine); e.Pos.Line != line {
				t.Errorf("error at line %d, want %d (%q): %v", e.Pos.Line, line, atLine, e)
			}
			if !strings.HasPrefix(e.Error(), "lab.yaml:") {
				t.Errorf("error without file:line:col: %q", e.Error())
			}
			return e
		}
	}
	t.Fatalf("no error contains %q; got:\n%v", want, err)
	return nil
}

func TestIKEPeerNoRouteReachesIsRefusedWhereThePathStops(t *testing.T) {
	t.Run("the initiator has no way out", func(t *testing.T) {
		src := replace(t, "    gw1: {kind: gateway, gateway: 198.51.100.1}", "    gw1: {kind: gateway}")
		e := refused(t, src, "gw1 has no route to 203.0.113.2: no connected subnet, no route, no gateway", "    initiator: gw1")
		if !strings.Contains(e.Msg, "connection office: IKE from gw1 (10.1.0.1) cannot reach gw2 (203.0.113.2)") {
			t.Errorf("the message does not name the connection, the nodes and the addresses: %v", e)
		}
	})
	t.Run("a router on the way has no route", func(t *testing.T) {
		// gw1 reaches r, but r knows only its own two subnets and gw2 sits
		// behind a second router.
		src := replace(t, "    gw2: {kind: gateway, gateway: 203.0.113.1}", "    gw2: {kind: gateway, gateway: 192.0.2.1}\n    r2:  {kind: router, gateway: 203.0.113.1}")
		src = strings.Replace(src, "    - endpoints: [r:eth1, gw2:eth0]\n      addresses: [203.0.113.1/24, 203.0.113.2/24]",
			"    - endpoints: [r:eth1, r2:eth0]\n      addresses: [203.0.113.1/24, 203.0.113.2/24]\n    - endpoints: [r2:eth1, gw2:eth0]\n      addresses: [192.0.2.1/24, 192.0.2.2/24]", 1)
		e := refused(t, src, "r has no route to 192.0.2.2: no connected subnet, no route, no gateway", "    initiator: gw1")
		if !strings.Contains(e.Msg, "(path: gw1 → r)") {
			t.Errorf("the message does not show the path: %v", e)
		}
	})
	t.Run("the replies cannot come back", func(t *testing.T) {
		// gw2 has no gateway: its first address is still on the r link, so
		// gw1's packets arrive, but gw2 cannot answer 198.51.100.2.
		src := replace(t, "    gw2: {kind: gateway, gateway: 203.0.113.1}", "    gw2: {kind: gateway}")
		refused(t, src, "gw2's IKE replies to 198.51.100.2, where gw1's packets come from, cannot get back: gw2 has no route to 198.51.100.2", "    responder: {node: gw2")
	})
	t.Run("a host does not forward", func(t *testing.T) {
		src := replace(t, "    r:   {kind: router}", "    r:   {kind: host}")
		refused(t, src, "r is a host: it does not forward packets for 203.0.113.2", "    initiator: gw1")
	})
	t.Run("a routing loop", func(t *testing.T) {
		src := replace(t, "    r:   {kind: router}", "    r:   {kind: router, routes: [{to: 203.0.113.2/32, via: 198.51.100.2}]}")
		refused(t, src, "it loops and never arrives", "    initiator: gw1")
	})
	t.Run("an address the lab file gives", func(t *testing.T) {
		// 10.1.0.1 is gw1's, but nobody routes 10.1.0.0/24 back to it.
		src := replace(t, "    initiator: gw1", "    initiator: {node: gw1, address: 10.1.0.1}")
		e := refused(t, src, "cannot get back: r has no route to 10.1.0.1", "    responder: {node: gw2")
		if strings.Contains(e.Msg, "set address:") {
			t.Errorf("suggests changing an address the lab file chose: %v", e)
		}
	})
}

// A gateway without gateway: uses its first address for IKE. With its LAN link
// written first that is the LAN address, from which the peer's replies have no
// way back: validate says so at the side, and which address would work.
func TestIKEAddressFromTheWrongInterfaceIsRefusedWithTheFix(t *testing.T) {
	src := replace(t, "    gw1: {kind: gateway, gateway: 198.51.100.1}", "    gw1: {kind: gateway, routes: [{to: 203.0.113.0/24, via: 198.51.100.1}]}")
	e := refused(t, src, "cannot get back: r has no route to 10.1.0.1", "    initiator: gw1")
	for _, want := range []string{
		"gw2's IKE replies to 10.1.0.1, where gw1's packets come from",
		"IKE works from gw1's 198.51.100.2 (eth0): set address: 198.51.100.2 on the initiator, or give gw1 a gateway: on eth0",
	} {
		if !strings.Contains(e.Msg, want) {
			t.Errorf("message lacks %q:\n%s", want, e.Msg)
		}
	}
	// Following the advice makes the lab valid.
	fixed := replace(t, "    initiator: gw1", "    initiator: {node: gw1, address: 198.51.100.2}")
	fixed = strings.Replace(fixed, "    gw1: {kind: gateway, gateway: 198.51.100.1}", "    gw1: {kind: gateway, routes: [{to: 203.0.113.0/24, via: 198.51.100.1}]}", 1)
	if _, err := Parse("lab.yaml", []byte(fixed)); err != nil {
		t.Fatalf("the suggested fix is refused:\n%v", err)
	}
}

func TestIKEEndpointsSayWhichAddressEachSideUsesAndWhy(t *testing.T) {
	src := replace(t, "    responder: {node: gw2, id: \"fqdn:gw2.example\"}", "    responder: {node: gw2, id: \"fqdn:gw2.example\", address: 203.0.113.2}")
	lab, err := Parse("lab.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	got := lab.IKEEndpoints()
	want := []string{
		"office: gw1 (initiator) uses 198.51.100.2 (eth0) for IKE, the address on the interface of its gateway 198.51.100.1",
		"office: gw2 (responder) uses 203.0.113.2 (eth0) for IKE, as its address: says",
	}
	if len(got) != len(want) {
		t.Fatalf("IKEEndpoints: %v", got)
	}
	for i := range want {
		if got[i].String() != want[i] {
			t.Errorf("endpoint %d:\n got %s\nwant %s", i, got[i], want[i])
		}
	}

	// Without gateway: the first address, and the reason says how to choose.
	routed := replace(t, "    gw1: {kind: gateway, gateway: 198.51.100.1}", "    gw1: {kind: gateway, routes: [{to: 203.0.113.0/24, via: 198.51.100.1}, {to: 10.2.0.0/24, via: 198.51.100.1}]}")
	routed = strings.Replace(routed, "    r:   {kind: router}", "    r:   {kind: router, routes: [{to: 10.1.0.0/24, via: 198.51.100.2}]}", 1)
	lab, err = Parse("lab.yaml", []byte(routed))
	if err != nil {
		t.Fatal(err)
	}
	if e := lab.IKEEndpoints()[0]; e.Addr != netip.MustParseAddr("10.1.0.1") || e.Iface != "eth1" || !strings.Contains(e.Why, "its first address, as it has no gateway:") {
		t.Errorf("gw1 without gateway: %s", e)
	}
}

// natLab puts a responder behind a NAT that forwards IKE to it.
const natLab = `name: nat
topology:
  nodes:
    vpn:  {kind: gateway, gateway: 192.168.1.1}
    nat1: {kind: nat, gateway: 198.51.100.1, nat: {outside: eth1, forward: [{proto: udp, port: 500, to: 192.168.1.10}]}}
    peer: {kind: gateway, gateway: 198.51.100.2}
  links:
    - endpoints: [vpn:eth0, nat1:eth0]
      addresses: [192.168.1.10/24, 192.168.1.1/24]
    - endpoints: [nat1:eth1, peer:eth0]
      addresses: [198.51.100.2/24, 198.51.100.1/24]
`

func TestNATMasqueradesAndForwardsOnTheWay(t *testing.T) {
	lab, err := Parse("lab.yaml", []byte(natLab))
	if err != nil {
		t.Fatal(err)
	}
	nodes := lab.Topology.Nodes
	a := netip.MustParseAddr

	// From the inside: masqueraded to the outside address, and the reply is
	// translated back.
	tr := &tracer{lab: lab}
	out := tr.send(nodes["vpn"], flow{src: a("192.168.1.10"), dst: a("198.51.100.1"), sport: 500, dport: 500})
	if out.stop != "" || out.at != nodes["peer"] || out.f.src != a("198.51.100.2") {
		t.Fatalf("inside → outside: %+v", out)
	}
	back := tr.send(nodes["peer"], out.f.reply())
	if back.stop != "" || back.at != nodes["vpn"] || back.f.dst != a("192.168.1.10") || back.f.src != a("198.51.100.1") {
		t.Fatalf("reply: %+v", back)
	}

	// From the outside to the NAT's address: the forward takes it inside,
	// and the reply leaves from the NAT's address.
	tr = &tracer{lab: lab}
	in := tr.send(nodes["peer"], flow{src: a("198.51.100.1"), dst: a("198.51.100.2"), sport: 500, dport: 500})
	if in.stop != "" || in.at != nodes["vpn"] || in.f.dst != a("192.168.1.10") {
		t.Fatalf("forward: %+v", in)
	}
	back = tr.send(nodes["vpn"], in.f.reply())
	if back.stop != "" || back.at != nodes["peer"] || back.f.src != a("198.51.100.2") {
		t.Fatalf("reply to a forward: %+v", back)
	}

	// Another port has no forward: the packet is the NAT's own.
	tr = &tracer{lab: lab}
	if got := tr.send(nodes["peer"], flow{src: a("198.51.100.1"), dst: a("198.51.100.2"), sport: 4500, dport: 4500}); got.at != nodes["nat1"] {
		t.Fatalf("udp 4500 without a forward: %+v", got)
	}

	// Straight at the inside address, it is unsolicited: the NAT drops it.
	tr = &tracer{lab: lab}
	if got := tr.send(nodes["peer"], flow{src: a("198.51.100.1"), dst: a("192.168.1.10"), sport: 500, dport: 500}); !strings.Contains(got.stop, "nat1 drops it: from its outside interface eth1") {
		t.Fatalf("unsolicited packet from the outside: %+v", got)
	}
}

func TestConnectionsThroughANAT(t *testing.T) {
	conn := "ipsec:\n  c:\n    initiator: %s\n    responder: %s\n    auth: {secret: s}\n    child: {mode: transport}\n"
	// The initiator behind the NAT: masquerade carries it out and back.
	ok := natLab + strings.ReplaceAll(strings.Replace(conn, "%s", "vpn", 1), "%s", "peer")
	if _, err := Parse("lab.yaml", []byte(ok)); err != nil {
		t.Fatalf("initiator behind a NAT refused:\n%v", err)
	}
	// The initiator outside, aiming at the inside address: the NAT drops it.
	bad := natLab + strings.ReplaceAll(strings.Replace(conn, "%s", "peer", 1), "%s", "vpn")
	refused(t, bad, "connection c: IKE from peer (198.51.100.1) cannot reach vpn (192.168.1.10): nat1 drops it", "    initiator: peer")
}

func TestStrongSwanNodesRouteLikeGateways(t *testing.T) {
	src := replace(t, "    gw2: {kind: gateway, gateway: 203.0.113.1}", "    gw2: {kind: strongswan, gateway: 203.0.113.1}")
	if _, err := Parse("lab.yaml", []byte(src)); err != nil {
		t.Fatalf("strongswan responder refused:\n%v", err)
	}
	// A strongswan node forwards like a router.
	src = replace(t, "    r:   {kind: router}", "    r:   {kind: strongswan}")
	if _, err := Parse("lab.yaml", []byte(src)); err != nil {
		t.Fatalf("strongswan node on the path refused:\n%v", err)
	}
}

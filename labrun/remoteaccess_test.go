package labrun_test

import (
	"crypto/rand"
	"maps"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ipseclab/ipseclab/ipsec/ike"
	"github.com/ipseclab/ipseclab/ipsec/pki"
	"github.com/ipseclab/ipseclab/labrun"
)

// roadWarriors: a gateway serving three laptops, two behind one NAT, with
// XAUTH over a group key and addresses from a pool.
const roadWarriors = `name: road-warriors
topology:
  nodes:
    laptop1:  {kind: gateway, gateway: 192.168.1.1}
    laptop2:  {kind: gateway, gateway: 192.168.1.1}
    home-nat: {kind: nat, gateway: 198.51.100.1, nat: {outside: eth1}}
    laptop3:  {kind: gateway, gateway: 192.0.2.1}
    internet: {kind: router}
    gw:       {kind: gateway, gateway: 203.0.113.1}
    server:   {kind: host, gateway: 10.1.0.1}
  links:
    - endpoints: [home-nat:eth1, internet:eth0]
      addresses: [198.51.100.2/24, 198.51.100.1/24]
    - endpoints: [laptop3:eth0, internet:eth1]
      addresses: [192.0.2.10/24, 192.0.2.1/24]
    - endpoints: [internet:eth2, gw:eth0]
      addresses: [203.0.113.1/24, 203.0.113.2/24]
  lans:
    - name: home
      members: [home-nat:eth0, laptop1:eth0, laptop2:eth0]
      addresses: [192.168.1.1/24, 192.168.1.10/24, 192.168.1.11/24]
    - name: office
      members: [gw:eth1, server:eth0]
      addresses: [10.1.0.1/24, 10.1.0.10/24]
ipsec:
  rw:
    responder:
      node: gw
      id: "fqdn:gw.office.example"
      xauth: {users: {alice: secret, bob: other, carol: third}}
      pool: 10.9.0.0/24
      dns: [10.1.0.53]
      split-include: [10.1.0.0/24]
      modecfg: push
      banner: Authorised users only
      default-domain: office.example
    initiators:
      - {node: laptop1, xauth: {user: alice, password: secret}}
      - {node: laptop2, xauth: {user: bob, password: other}}
      - {node: laptop3, xauth: {user: carol, password: third}}
    auth: {method: xauth-psk, secret: group-secret}
    ike: {mode: aggressive}
    child: {esp: [aes128-sha256]}
`

// The gateway gets one connection for every client: no remote address or
// identity, the users, and what Mode Config lends; each client its
// credentials, an empty Mode Config, no selector of its own until it has an
// address, and the split-include network as the remote one.
func TestRemoteAccessConnections(t *testing.T) {
	lab := mustParse(t, roadWarriors)
	gws := lab.SidesOf("gw")
	if len(gws) != 1 {
		t.Fatalf("gw: %d sides", len(gws))
	}
	g := labrun.IKEConnection(gws[0], ike.StartNone)
	if g.Name != "rw" || g.Role != ike.Responder || g.Remote.IsValid() || g.RemoteID != "" || g.LocalID != "fqdn:gw.office.example" ||
		g.Local != netip.MustParseAddr("203.0.113.2") || g.Mode != ike.AggressiveMode {
		t.Errorf("gateway: name %q role %v remote %v %q local %v %q mode %v", g.Name, g.Role, g.Remote, g.RemoteID, g.Local, g.LocalID, g.Mode)
	}
	if g.Auth.Method != ike.AuthPSK || g.PSK != "group-secret" || g.Auth.Chain != nil {
		t.Errorf("gateway auth %v psk %q", g.Auth.Method, g.PSK)
	}
	users := map[string]string{"alice": "secret", "bob": "other", "carol": "third"}
	if g.XAuth == nil || !maps.Equal(g.XAuth.Users, users) || g.XAuth.User != "" || g.XAuth.Password != "" {
		t.Errorf("gateway XAuth %+v", g.XAuth)
	}
	office := netip.MustParsePrefix("10.1.0.0/24")
	want := &ike.ModeConfig{Pool: netip.MustParsePrefix("10.9.0.0/24"), DNS: []netip.Addr{netip.MustParseAddr("10.1.0.53")},
		SplitInclude: []netip.Prefix{office}, Push: true, Banner: "Authorised users only", DefaultDomain: "office.example"}
	if !reflect.DeepEqual(g.ModeConfig, want) {
		t.Errorf("gateway ModeConfig %+v, want %+v", g.ModeConfig, want)
	}
	if g.Child.LocalTS != office || g.Child.RemoteTS != want.Pool || g.Child.Start != ike.StartNone {
		t.Errorf("gateway child %v === %v, start %v", g.Child.LocalTS, g.Child.RemoteTS, g.Child.Start)
	}
	// The gateway's users are its own copy.
	g.XAuth.Users["mallory"] = "x"
	if _, ok := gws[0].XAuth.Users["mallory"]; ok {
		t.Error("the gateway's connection shares its users map with the lab")
	}

	for _, tc := range []struct{ node, user, pw, addr string }{
		{"laptop1", "alice", "secret", "192.168.1.10"}, {"laptop2", "bob", "other", "192.168.1.11"}, {"laptop3", "carol", "third", "192.0.2.10"},
	} {
		c := labrun.IKEConnection(lab.SidesOf(tc.node)[0], ike.StartNone)
		if c.Name != "rw" || c.Role != ike.Initiator || c.Remote != netip.MustParseAddr("203.0.113.2") || c.RemoteID != "fqdn:gw.office.example" ||
			c.Local != netip.MustParseAddr(tc.addr) {
			t.Errorf("%s: name %q role %v remote %v %q local %v", tc.node, c.Name, c.Role, c.Remote, c.RemoteID, c.Local)
		}
		if c.Auth.Method != ike.AuthPSK || c.PSK != "group-secret" {
			t.Errorf("%s auth %v psk %q", tc.node, c.Auth.Method, c.PSK)
		}
		if !reflect.DeepEqual(c.XAuth, &ike.XAuth{User: tc.user, Password: tc.pw}) {
			t.Errorf("%s XAuth %+v", tc.node, c.XAuth)
		}
		// The client knows only that the gateway pushes: it waits to be told.
		if !reflect.DeepEqual(c.ModeConfig, &ike.ModeConfig{Push: true}) {
			t.Errorf("%s ModeConfig %+v, want only push", tc.node, c.ModeConfig)
		}
		// With a pool, the connection comes up at deploy (the runtime
		// initiates it: start stands for that here).
		if c.Child.LocalTS.IsValid() || c.Child.RemoteTS != office || c.Child.Start != ike.StartNone {
			t.Errorf("%s child %v === %v, start %v", tc.node, c.Child.LocalTS, c.Child.RemoteTS, c.Child.Start)
		}
		if s := labrun.IKEConnection(lab.SidesOf(tc.node)[0], ike.StartStart); s.Child.Start != ike.StartStart {
			t.Errorf("%s: a pool's clients start at deploy, got %v", tc.node, s.Child.Start)
		}
	}
}

// Several split-include networks: one Quick Mode pair of selectors covers
// them, everything; without split-include everything too.
func TestModeConfigSelectorsOfSeveralNetworks(t *testing.T) {
	all := netip.MustParsePrefix("0.0.0.0/0")
	for _, split := range []string{"      split-include: [10.1.0.0/24, 10.2.0.0/24]\n", ""} {
		lab := mustParse(t, strings.Replace(roadWarriors, "      split-include: [10.1.0.0/24]\n", split, 1))
		g := labrun.IKEConnection(lab.SidesOf("gw")[0], ike.StartNone)
		c := labrun.IKEConnection(lab.SidesOf("laptop1")[0], ike.StartNone)
		if g.Child.LocalTS != all || c.Child.RemoteTS != all || c.Child.LocalTS.IsValid() {
			t.Errorf("split %q: gateway %v, client %v === %v", split, g.Child.LocalTS, c.Child.LocalTS, c.Child.RemoteTS)
		}
		if n := strings.Count(split, "/24"); len(g.ModeConfig.SplitInclude) != n {
			t.Errorf("split %q: the gateway hands out %v", split, g.ModeConfig.SplitInclude)
		}
	}
}

// Hybrid: the gateway signs with its certificate; a client has none, only
// the CAs to check the gateway's, and XAUTH.
func TestHybridConnections(t *testing.T) {
	src := strings.Replace(roadWarriors, "{method: xauth-psk, secret: group-secret}", "{method: hybrid}", 1)
	lab := mustParse(t, src)
	now := time.Now()
	ca, err := pki.NewCA("test CA", pki.ECDSAP256, now.Add(-time.Hour), now.Add(time.Hour), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	creds := map[string]*pki.Credential{}
	for _, lc := range lab.LabCerts() {
		req := lc.Request
		req.NotBefore, req.NotAfter = now.Add(-time.Hour), now.Add(time.Hour)
		if creds[lc.Name], err = ca.Issue(req, rand.Reader); err != nil {
			t.Fatal(err)
		}
	}
	if !slices.Equal(slices.Sorted(maps.Keys(creds)), []string{"gw"}) {
		t.Fatalf("the lab PKI issues %v, want gw's alone", slices.Sorted(maps.Keys(creds)))
	}
	if err := lab.UseLabPKI(ca.Cert, creds); err != nil {
		t.Fatal(err)
	}
	g := labrun.IKEConnection(lab.SidesOf("gw")[0], ike.StartNone)
	if g.Auth.Method != ike.AuthHybrid || len(g.Auth.Chain) == 0 || !g.Auth.Chain[0].Equal(creds["gw"].Chain[0]) || g.Auth.Key == nil || g.PSK != "" {
		t.Errorf("gateway auth %v chain %d psk %q", g.Auth.Method, len(g.Auth.Chain), g.PSK)
	}
	if g.XAuth == nil || len(g.XAuth.Users) != 3 {
		t.Errorf("gateway XAuth %+v", g.XAuth)
	}
	c := labrun.IKEConnection(lab.SidesOf("laptop2")[0], ike.StartNone)
	if c.Auth.Method != ike.AuthHybrid || c.Auth.Chain != nil || c.Auth.Key != nil || len(c.Auth.CAs) != 1 || !c.Auth.CAs[0].Equal(ca.Cert) ||
		c.Auth.PeerCert == nil || !c.Auth.PeerCert.Equal(creds["gw"].Chain[0]) {
		t.Errorf("client auth %v chain %d key %v CAs %d peer %v", c.Auth.Method, len(c.Auth.Chain), c.Auth.Key, len(c.Auth.CAs), c.Auth.PeerCert != nil)
	}
	if !reflect.DeepEqual(c.XAuth, &ike.XAuth{User: "bob", Password: "other"}) {
		t.Errorf("client XAuth %+v", c.XAuth)
	}
}

// Without remote access nothing changes: no XAuth, no ModeConfig.
func TestSiteToSiteHasNoRemoteAccess(t *testing.T) {
	lab := mustParse(t, strings.Replace(pubkeyLab("plain", "fqdn:gw1.lab", "rsa-2048"), "{method: pubkey}\n    key-type: rsa-2048", "{secret: s}", 1))
	for _, node := range []string{"gw1", "gw2"} {
		c := labrun.IKEConnection(lab.SidesOf(node)[0], ike.StartNone)
		if c.XAuth != nil || c.ModeConfig != nil || c.Auth.Method != ike.AuthPSK {
			t.Errorf("%s: %+v %+v %v", node, c.XAuth, c.ModeConfig, c.Auth.Method)
		}
	}
	if g := lab.SidesOf("gw2")[0]; g.AnyPeer || g.Remote.Node != "gw1" || labrun.IKEConnection(g, ike.StartNone).RemoteID != "fqdn:gw1.lab" {
		t.Errorf("a site-to-site responder knows its peer: %+v", g.Remote)
	}
}

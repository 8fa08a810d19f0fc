package topology

import (
	"crypto/x509/pkix"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ipseclab/ipseclab/ipsec/pki"
)

// roadWarriors is a gateway and three laptops, two of them behind one NAT,
// with XAUTH over a group key and addresses from a pool.
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
      xauth: {users: {alice: secret, bob: other, carol: third}}
      pool: 10.9.0.0/24
      dns: [10.1.0.53]
      nbns: [10.1.0.54]
      split-include: [10.1.0.0/24]
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

func TestRoadWarriorsParseIntoOneSidePerClientAndTheGateway(t *testing.T) {
	lab, err := Parse("lab.yaml", []byte(roadWarriors))
	if err != nil {
		t.Fatalf("the road-warriors lab is refused:\n%v", err)
	}
	c := lab.IPsec["rw"]
	if !c.AnyPeer() || !c.ModeConfig() || c.Responder.ModeCfg != ModeCfgPull || c.Child.Start != StartAtDeploy {
		t.Errorf("defaults: remote %q, modecfg %q, start %q; want any (implied), pull, start", c.Remote, c.Responder.ModeCfg, c.Child.Start)
	}
	if n := len(c.Clients()); n != 3 {
		t.Fatalf("%d clients", n)
	}
	pool := netip.MustParsePrefix("10.9.0.0/24")
	office := []netip.Prefix{netip.MustParsePrefix("10.1.0.0/24")}

	gws := lab.SidesOf("gw")
	if len(gws) != 1 {
		t.Fatalf("gw has %d sides, want one connection serving all clients", len(gws))
	}
	g := gws[0]
	var clients []string
	for _, p := range g.Clients {
		clients = append(clients, p.Node)
	}
	if g.Initiator || !g.AnyPeer || g.Remote.Node != "" || g.Remote.Address.IsValid() || g.Remote.ID != "" ||
		!slices.Equal(clients, []string{"laptop1", "laptop2", "laptop3"}) {
		t.Errorf("gateway side: initiator %v, any %v, remote %+v, clients %v", g.Initiator, g.AnyPeer, g.Remote, clients)
	}
	if g.Auth != AuthXAuthPSK || g.PSK != "group-secret" {
		t.Errorf("gateway auth %s psk %q", g.Auth, g.PSK)
	}
	if g.XAuth == nil || len(g.XAuth.Users) != 3 || g.XAuth.Users["bob"] != "other" || g.XAuth.User != "" {
		t.Errorf("gateway XAUTH %+v", g.XAuth)
	}
	want := &ModeConfig{Pool: pool, DNS: []netip.Addr{netip.MustParseAddr("10.1.0.53")}, NBNS: []netip.Addr{netip.MustParseAddr("10.1.0.54")},
		SplitInclude: office, Banner: "Authorised users only", DefaultDomain: "office.example"}
	if mc := g.ModeConfig; mc == nil || mc.Pool != want.Pool || !slices.Equal(mc.DNS, want.DNS) || !slices.Equal(mc.NBNS, want.NBNS) ||
		!slices.Equal(mc.SplitInclude, want.SplitInclude) || mc.Banner != want.Banner || mc.DefaultDomain != want.DefaultDomain || mc.Push {
		t.Errorf("gateway Mode Config %+v, want %+v", g.ModeConfig, want)
	}
	if !slices.Equal(g.LocalTS, office) || !slices.Equal(g.RemoteTS, []netip.Prefix{pool}) {
		t.Errorf("gateway selectors %v === %v, want the split-include === the pool", g.LocalTS, g.RemoteTS)
	}

	for _, tc := range []struct{ node, user, pw, addr string }{
		{"laptop1", "alice", "secret", "192.168.1.10"}, {"laptop2", "bob", "other", "192.168.1.11"}, {"laptop3", "carol", "third", "192.0.2.10"},
	} {
		sides := lab.SidesOf(tc.node)
		if len(sides) != 1 {
			t.Fatalf("%s has %d sides", tc.node, len(sides))
		}
		s := sides[0]
		if !s.Initiator || s.Local.Node != tc.node || s.Local.Address.String() != tc.addr || s.Remote.Node != "gw" || s.Remote.Address.String() != "203.0.113.2" || s.AnyPeer {
			t.Errorf("%s: initiator %v, local %s %s, remote %s %s", tc.node, s.Initiator, s.Local.Node, s.Local.Address, s.Remote.Node, s.Remote.Address)
		}
		if s.XAuth == nil || s.XAuth.User != tc.user || s.XAuth.Password != tc.pw || s.XAuth.Users != nil {
			t.Errorf("%s XAUTH %+v", tc.node, s.XAuth)
		}
		if s.ModeConfig == nil || s.ModeConfig.Pool.IsValid() || s.ModeConfig.DNS != nil || s.ModeConfig.Push {
			t.Errorf("%s Mode Config %+v, want an empty one (pull)", tc.node, s.ModeConfig)
		}
		if len(s.LocalTS) != 0 || !slices.Equal(s.RemoteTS, office) {
			t.Errorf("%s selectors %v === %v, want none (its Mode Config address) === the split-include", tc.node, s.LocalTS, s.RemoteTS)
		}
		if s.PSK != "group-secret" {
			t.Errorf("%s psk %q", tc.node, s.PSK)
		}
	}
	// validate lists each client's IKE address, and follows each one's IKE
	// to the gateway: through the NAT for two of them.
	var eps []string
	for _, e := range lab.IKEEndpoints() {
		eps = append(eps, e.Node+"/"+e.Role)
	}
	if !slices.Equal(eps, []string{"laptop1/initiator", "laptop2/initiator", "laptop3/initiator", "gw/responder"}) {
		t.Errorf("IKE endpoints %v", eps)
	}
	// The graph draws every client.
	if g, err := lab.Graph("ascii"); err != nil || !strings.Contains(g, "laptop1 (192.168.1.10), laptop2 (192.168.1.11), laptop3 (192.0.2.10) ⇄ gw") {
		t.Errorf("ascii graph: %v\n%s", err, g)
	}
}

// Without split-include everything goes into the tunnel; push is taken.
func TestModeConfigEverythingAndPush(t *testing.T) {
	src := strings.Replace(roadWarriors, "      split-include: [10.1.0.0/24]\n", "      modecfg: push\n", 1)
	lab, err := Parse("lab.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	all := []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")}
	g, c := lab.SidesOf("gw")[0], lab.SidesOf("laptop3")[0]
	if !slices.Equal(g.LocalTS, all) || !slices.Equal(c.RemoteTS, all) || g.ModeConfig.SplitInclude != nil {
		t.Errorf("without split-include: gateway %v, client %v, split %v", g.LocalTS, c.RemoteTS, g.ModeConfig.SplitInclude)
	}
	if !g.ModeConfig.Push || !c.ModeConfig.Push {
		t.Errorf("push: gateway %v, client %v", g.ModeConfig.Push, c.ModeConfig.Push)
	}
}

// One client with initiator: and XAUTH but no Mode Config keeps its
// selectors and its gateway knows it.
func TestOneXAuthClientWithoutModeConfig(t *testing.T) {
	lab, err := Parse("lab.yaml", []byte(certLab("{method: xauth-psk, secret: s}", ", xauth: {user: u, password: p}", ", xauth: {users: {u: p}}")))
	if err != nil {
		t.Fatal(err)
	}
	g, c := lab.SidesOf("gw2")[0], lab.SidesOf("gw1")[0]
	if g.AnyPeer || g.Remote.Node != "gw1" || g.ModeConfig != nil || c.ModeConfig != nil || g.XAuth.Users["u"] != "p" || c.XAuth.User != "u" {
		t.Errorf("gateway %+v\nclient %+v", g, c)
	}
	// remote: any written: the gateway forgets its one peer.
	src := strings.Replace(certLab("{method: xauth-psk, secret: s}", ", xauth: {user: u, password: p}", ", xauth: {users: {u: p}}"), "    child:", "    remote: any\n    child:", 1)
	lab, err = Parse("lab.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if g := lab.SidesOf("gw2")[0]; !g.AnyPeer || g.Remote.Node != "" || len(g.Clients) != 1 {
		t.Errorf("remote: any: %+v", g)
	}
}

// A users file: name:password lines, comments and blank lines skipped.
func TestUsersFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("users.txt", "# the office\nalice:secret\n\n  bob : other \ncarol:third:with:colons\r\n")
	src := strings.Replace(roadWarriors, "xauth: {users: {alice: secret, bob: other, carol: third}}", "xauth: {users-file: users.txt}", 1)
	src = strings.Replace(src, "password: third", "password: \"third:with:colons\"", 1)
	lab, err := Parse(filepath.Join(dir, "lab.yaml"), []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	u := lab.SidesOf("gw")[0].XAuth.Users
	if len(u) != 3 || u["alice"] != "secret" || u["bob"] != "other" || u["carol"] != "third:with:colons" {
		t.Errorf("users %v", u)
	}
}

// Hybrid: the gateway's certificate from the lab PKI, none for the clients,
// who trust the lab CA to check the gateway's.
func TestHybridGivesOnlyTheGatewayACertificate(t *testing.T) {
	src := strings.Replace(roadWarriors, "{method: xauth-psk, secret: group-secret}", "{method: hybrid}", 1)
	lab, err := Parse("lab.yaml", []byte(src))
	if err != nil {
		t.Fatalf("hybrid refused:\n%v", err)
	}
	certs := lab.LabCerts()
	if len(certs) != 1 || certs[0].Node != "gw" {
		t.Fatalf("the lab PKI would issue %+v, want gw's alone", certs)
	}
	f := newPKIFiles(t)
	gw := f.leaf(f.ca, "gw", pki.IssueRequest{Subject: pkix.Name{CommonName: "gw"}})
	if err := lab.UseLabPKI(f.ca.Cert, map[string]*pki.Credential{"gw": gw}); err != nil {
		t.Fatal(err)
	}
	g, c := lab.SidesOf("gw")[0], lab.SidesOf("laptop1")[0]
	if g.Auth != AuthHybrid || g.Cred != gw || len(g.CACerts) != 1 {
		t.Errorf("gateway: auth %s cred %v CAs %v", g.Auth, g.Cred, g.CACerts)
	}
	if c.Cred != nil || len(c.CACerts) != 1 || !c.CACerts[0].Equal(f.ca.Cert) || c.PeerCert == nil || !c.PeerCert.Equal(gw.Chain[0]) {
		t.Errorf("client: cred %v CAs %v peer %v", c.Cred, c.CACerts, c.PeerCert)
	}
	if c.Local.ID != "" || c.XAuth.User != "alice" {
		t.Errorf("client: id %q xauth %+v", c.Local.ID, c.XAuth)
	}
}

// Each bad input is an error at the line and column of the field at fault.
func TestRemoteAccessErrorsAtTheirField(t *testing.T) {
	f := newPKIFiles(t)
	f.leaf(f.ca, "laptop1", pki.IssueRequest{Subject: pkix.Name{CommonName: "laptop1"}})
	f.write("bad-users.txt", []byte("alice:secret\n# fine\nbob other\n"))
	f.write("dup-users.txt", []byte("alice:secret\nbob:x\nalice:again\n"))
	f.write("nopw-users.txt", []byte("alice:\n"))
	f.write("empty-users.txt", []byte("# nobody\n\n"))
	hybrid := func(s string) string {
		return strings.Replace(s, "{method: xauth-psk, secret: group-secret}", "{method: hybrid}", 1)
	}
	three := `      - {node: laptop3, xauth: {user: carol, password: third}}`
	for _, tc := range []struct {
		name          string
		edit          func(string) string
		marker, want  string
		old, new      string
		markerOnEdits bool
	}{
		{name: "pool too small", old: "pool: 10.9.0.0/24", new: "pool: 10.9.0.0/30",
			marker: "10.9.0.0/30", want: "pool 10.9.0.0/30 lends 2 addresses (the network and broadcast excluded), and 3 clients are declared: use a /29 or larger"},
		{name: "pool of a /31", old: "pool: 10.9.0.0/24", new: "pool: 10.9.0.0/31",
			marker: "10.9.0.0/31", want: "pool 10.9.0.0/31 lends no address"},
		{name: "pool overlapping the office", old: "pool: 10.9.0.0/24", new: "pool: 10.1.0.0/16",
			marker: "10.1.0.0/16", want: "pool 10.1.0.0/16 overlaps"},
		{name: "pool not IPv4", old: "pool: 10.9.0.0/24", new: "pool: 2001:db8::/64",
			marker: "2001:db8::/64", want: "pool 2001:db8::/64: Mode Config lends IPv4 addresses"},
		{name: "user unknown", old: "user: carol, password: third", new: "user: dave, password: third",
			marker: "dave", want: `user "dave" is not among the gateway's users (alice, bob, carol)`},
		{name: "client without password", old: "xauth: {user: carol, password: third}", new: "xauth: {user: carol}",
			marker: "{user: carol}", want: "client laptop3's xauth needs password"},
		{name: "client without user", old: "xauth: {user: carol, password: third}", new: "xauth: {password: third}",
			marker: "{password: third}", want: "client laptop3's xauth needs user"},
		{name: "client without xauth", old: three, new: "      - laptop3",
			marker: "- |laptop3", want: "client laptop3 has no xauth: {user, password}, which xauth-psk asks for"},
		{name: "users on a client", old: "xauth: {user: carol, password: third}", new: "xauth: {user: carol, password: third, users: {carol: third}}",
			marker: "users: |{carol: third}", want: "users lists who may log in on the gateway: it belongs on the responder"},
		{name: "user on the gateway", old: "xauth: {users: {alice: secret, bob: other, carol: third}}", new: "xauth: {user: gw, users: {alice: secret, bob: other, carol: third}}",
			marker: "user: |gw", want: "user is a client's: write it on the initiator"},
		{name: "pool on a client", old: three, new: "      - {node: laptop3, pool: 10.8.0.0/24, xauth: {user: carol, password: third}}",
			marker: "10.8.0.0/24", want: "pool is the gateway's to give (Mode Config): write it on the responder"},
		{name: "xauth under psk", old: "{method: xauth-psk, secret: group-secret}", new: "{method: psk, secret: group-secret}",
			marker: "{users: {alice", want: "xauth needs auth method xauth-psk, xauth-pubkey or hybrid; this connection uses psk (did you mean xauth-psk?)"},
		{name: "xauth-psk without users", old: "      xauth: {users: {alice: secret, bob: other, carol: third}}\n", new: "",
			marker: "xauth-psk, secret", want: "xauth-psk asks each client for a user name and password after phase 1: give the responder xauth: {users: {name: password}}"},
		{name: "gateway xauth without users", old: "xauth: {users: {alice: secret, bob: other, carol: third}}", new: "xauth: {}",
			marker: "xauth: |{}", want: "the gateway's xauth needs users: {name: password} or users-file: PATH"},
		{name: "user without a password", old: "carol: third}}", new: "carol: \"\"}}",
			marker: `carol: |""`, want: "user carol has no password"},
		{name: "users and users-file", old: "xauth: {users: {alice: secret, bob: other, carol: third}}", new: "xauth: {users: {alice: secret}, users-file: users.txt}",
			marker: "users.txt", want: "give users or users-file, not both"},
		{name: "users-file missing", old: "xauth: {users: {alice: secret, bob: other, carol: third}}", new: "xauth: {users-file: nobody.txt}",
			marker: "nobody.txt", want: "nobody.txt: no such file (paths are relative to the lab file)"},
		{name: "users-file malformed", old: "xauth: {users: {alice: secret, bob: other, carol: third}}", new: "xauth: {users-file: bad-users.txt}",
			marker: "bad-users.txt", want: "users-file bad-users.txt:3: is not name:password (no ':')"},
		{name: "users-file with a user twice", old: "xauth: {users: {alice: secret, bob: other, carol: third}}", new: "xauth: {users-file: dup-users.txt}",
			marker: "dup-users.txt", want: "users-file dup-users.txt:3: user alice again (first on line 1)"},
		{name: "users-file without a password", old: "xauth: {users: {alice: secret, bob: other, carol: third}}", new: "xauth: {users-file: nopw-users.txt}",
			marker: "nopw-users.txt", want: "users-file nopw-users.txt:1: user alice has no password after ':'"},
		{name: "users-file of nobody", old: "xauth: {users: {alice: secret, bob: other, carol: third}}", new: "xauth: {users-file: empty-users.txt}",
			marker: "empty-users.txt", want: "users-file empty-users.txt lists no users"},
		{name: "remote any without a responder", old: "    responder:\n      node: gw\n", new: "    remote: any\n    responder:\n",
			marker: "remote: |any", want: "remote: any makes the responder serve any peer; this connection has no responder"},
		{name: "remote misspelt", old: "    auth: {method", new: "    remote: anyone\n    auth: {method",
			marker: "anyone", want: `remote "anyone": the one word is any`},
		{name: "modecfg misspelt", old: "      banner:", new: "      modecfg: pul\n      banner:",
			marker: "pul", want: `modecfg "pul" is neither pull (the client asks) nor push (the gateway sets) (did you mean "pull"?`},
		{name: "split-include not a prefix", old: "split-include: [10.1.0.0/24]", new: "split-include: [10.1.0.0/24, office]",
			marker: "office]", want: `"office" is not a valid prefix`},
		{name: "split-include with host bits", old: "split-include: [10.1.0.0/24]", new: "split-include: [10.1.0.1/24]",
			marker: "[|10.1.0.1/24]", want: `"10.1.0.1/24" has host bits set`},
		{name: "dns without a pool", old: "      pool: 10.9.0.0/24\n", new: "",
			marker: "dns: |[10.1.0.53]", want: "dns is a Mode Config setting, and Mode Config starts with the address it lends each client: give the responder pool: too"},
		{name: "local-ts with a pool", old: "child: {esp: [aes128-sha256]}", new: "child: {local-ts: 192.168.1.10/32, esp: [aes128-sha256]}",
			marker: "192.168.1.10/32", want: "a client's local-ts is the address Mode Config gives it from the pool: leave local-ts out"},
		{name: "remote-ts with a pool", old: "child: {esp: [aes128-sha256]}", new: "child: {remote-ts: 10.1.0.0/24, esp: [aes128-sha256]}",
			marker: "remote-ts: |10.1.0.0/24", want: "with a pool, a client's remote-ts is the gateway's split-include networks"},
		{name: "trap with a pool", old: "child: {esp: [aes128-sha256]}", new: "child: {start: trap, esp: [aes128-sha256]}",
			marker: "start: |trap", want: "a client has no address until Mode Config gives it one, so nothing to trap"},
		{name: "transport with a pool", old: "child: {esp: [aes128-sha256]}", new: "child: {mode: transport, esp: [aes128-sha256]}",
			marker: "mode: |transport", want: "a pool lends each client an inner address, which only tunnel mode carries"},
		{name: "several clients without a pool", old: "      pool: 10.9.0.0/24\n      dns: [10.1.0.53]\n      nbns: [10.1.0.54]\n      split-include: [10.1.0.0/24]\n      banner: Authorised users only\n      default-domain: office.example\n", new: "",
			marker: "      |- {node: laptop1", want: "3 clients share one tunnel-mode child"},
		{name: "initiator and initiators", old: "    initiators:", new: "    initiator: laptop1\n    initiators:",
			marker: "      |- {node: laptop1", want: "give initiator: (one) or initiators: (a list), not both"},
		{name: "neither initiator nor initiators", old: "    initiators:\n      - {node: laptop1, xauth: {user: alice, password: secret}}\n      - {node: laptop2, xauth: {user: bob, password: other}}\n" + three + "\n", new: "",
			marker: "    |responder:", want: `connection rw needs "initiator" (or "initiators", a list of clients)`},
		{name: "a client twice", old: three, new: "      - {node: laptop1, xauth: {user: carol, password: third}}",
			marker: "{node: laptop1, xauth: {user: carol", want: "laptop1 is already a client of rw (initiators[0])"},
		{name: "the gateway as a client", old: three, new: "      - {node: gw, xauth: {user: carol, password: third}}",
			marker: "{node: gw,", want: "gw is the responder of rw; a client is another node"},
		{name: "encryption to any peer", old: "{method: xauth-psk, secret: group-secret}", new: "{method: rsa-encryption}",
			marker: "rsa-encryption", want: "rsa-encryption encrypts to the peer's certificate before the exchange, and a responder that serves any peer cannot know whose"},
		{name: "hybrid with a client certificate", edit: hybrid, old: "{node: laptop1, xauth:", new: "{node: laptop1, cert: laptop1.pem, key: laptop1.key, xauth:",
			marker: "laptop1.pem", want: "hybrid authenticates the client laptop1 by XAUTH alone, with no certificate of its own: remove cert"},
		{name: "hybrid without the gateway's certificate", edit: hybrid, old: "      node: gw\n", new: "      node: gw\n      key: laptop1.key\n",
			marker: "      |node: gw", want: "hybrid authenticates the gateway gw by its certificate: give its cert and key, or neither for the lab PKI's"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := roadWarriors
			if tc.edit != nil {
				src = tc.edit(src)
			}
			if !strings.Contains(src, tc.old) {
				t.Fatalf("test setup: %q not in the lab", tc.old)
			}
			src = strings.Replace(src, tc.old, tc.new, 1)
			_, file, err := f.parse(src)
			if err == nil {
				t.Fatal("accepted")
			}
			want := atValue(file, src, tc.marker) + tc.want
			if !strings.Contains(err.Error(), want) {
				t.Fatalf("errors lack %q:\n%v", want, err)
			}
		})
	}
}

func TestParseUsers(t *testing.T) {
	for _, tc := range []struct {
		in   string
		line int
	}{{"a:b\nc\n", 2}, {":x\n", 1}, {"a:b\n\n# c\nd: \n", 4}, {"a\x01b:c\n", 1}} {
		_, err := ParseUsers([]byte(tc.in))
		ue, ok := err.(*UsersError)
		if !ok || ue.Line != tc.line {
			t.Errorf("%q: %v, want an error on line %d", tc.in, err, tc.line)
		}
	}
}

func TestPoolSize(t *testing.T) {
	for p, want := range map[string]uint64{"10.0.0.0/24": 254, "10.0.0.0/30": 2, "10.0.0.0/31": 0, "10.0.0.0/32": 0, "10.0.0.0/8": 1<<24 - 2} {
		if got := PoolSize(netip.MustParsePrefix(p)); got != want {
			t.Errorf("%s: %d, want %d", p, got, want)
		}
	}
	for n, want := range map[int]int{1: 30, 2: 30, 3: 29, 6: 29, 7: 28, 50: 26, 200: 24, 254: 24, 255: 23} {
		if got := poolBitsFor(n); got != want || PoolSize(netip.PrefixFrom(netip.IPv4Unspecified(), got)) < uint64(n) {
			t.Errorf("poolBitsFor(%d) = %d, want %d", n, got, want)
		}
	}
}

// atValue is at's position of a marker "before|value": the line that holds
// both, the column where value starts.
func atValue(file, src, marker string) string {
	before, value, ok := strings.Cut(marker, "|")
	if !ok {
		return at(file, src, marker)
	}
	for i, line := range strings.Split(src, "\n") {
		if c := strings.Index(line, before+value); c >= 0 {
			return fmt.Sprintf("%s:%d:%d: ", file, i+1, c+len(before)+1)
		}
	}
	return "(not found) "
}

// The README's remote-access example is a valid ipsec: block (here on the
// road-warriors topology).
func TestReadmeRemoteAccessExample(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i := strings.Index(s, "### Remote access")
	if i < 0 {
		t.Fatal("README.md has no \"### Remote access\"")
	}
	s = s[i:]
	j := strings.Index(s, "```yaml\n")
	k := strings.Index(s[j+8:], "```")
	if j < 0 || k < 0 {
		t.Fatal("no YAML example under \"### Remote access\"")
	}
	example := s[j+8 : j+8+k]
	src := roadWarriors[:strings.Index(roadWarriors, "ipsec:\n")] + example
	lab, err := Parse("lab.yaml", []byte(src))
	if err != nil {
		t.Fatalf("the README's example is refused:\n%v\n%s", err, src)
	}
	if c := lab.IPsec["rw"]; len(c.Clients()) != 2 || !c.AnyPeer() || c.Responder.XAuth.Users["bob"] != "other" {
		t.Errorf("the README's example: %+v", c)
	}
}

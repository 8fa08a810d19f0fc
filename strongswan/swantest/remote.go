package swantest

import (
	"fmt"
	"net/netip"
	"os"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/ipseclab/ipseclab/internal/namespace"
	"github.com/ipseclab/ipseclab/internal/testenv"
	"github.com/ipseclab/ipseclab/internal/testenv/netenv"
	"github.com/ipseclab/ipseclab/strongswan"
)

// GatewayConfig describes a remote-access gateway: charon with XAUTH and
// Mode Config in front of a LAN (LANA) with one host, serving any client
// (remote_addrs %any) from one address pool.
type GatewayConfig struct {
	IKEProposal string // e.g. "aes128-sha256-modp2048"; several are allowed
	ESPProposal string // e.g. "aes128-sha256"
	Aggressive  bool
	PSK         string            // the group secret; default "ipseclab-group-psk"
	Users       map[string]string // XAUTH users; default {"alice": "alice-password"}
	Pool        string            // default "10.9.0.0/24"
	DNS         []string          // INTERNAL_IP4_DNS
	Banner      string            // UNITY_BANNER
	Push        bool              // Mode Config push (pull = no)
	KeyLog      bool

	// Cert, when set, makes the gateway prove itself with this RSA
	// credential and its clients with XAUTH alone: Hybrid authentication.
	// PSK must then be empty.
	Cert *Credential

	OnLog func(strongswan.LogLine)
}

// Names in a remote-access gateway's configuration, and its clients'.
const (
	RAConnName  = "rw"
	RAChildName = "rw-lan"
	RAPoolName  = "rw-pool"
)

// Defaults of GatewayConfig.
var (
	DefaultGroupPSK = "ipseclab-group-psk"
	DefaultUsers    = map[string]string{"alice": "alice-password"}
	DefaultPool     = netip.MustParsePrefix("10.9.0.0/24")
)

// RAGateway is a remote-access gateway and the host behind it. Clients
// attach to it on links of their own.
type RAGateway struct {
	Gateway
	Host  *Node // on LANA, behind the gateway; its default route is the gateway
	Cfg   GatewayConfig
	links int
}

// StartRAGateway builds the gateway's and the host's namespaces and starts
// charon as the gateway. Its LAN is LANA; clients are added with AddClient.
func StartRAGateway(tb testing.TB, cfg GatewayConfig) *RAGateway {
	tb.Helper()
	testenv.NeedRoot(tb)
	testenv.NeedCommand(tb, strongswan.DefaultCharon)
	testenv.NeedCommand(tb, strongswan.DefaultSwanctl)
	if cfg.Cert != nil && cfg.PSK != "" {
		tb.Fatal("swantest: a Hybrid gateway (Cert) has no group PSK")
	}
	if cfg.Cert == nil && cfg.PSK == "" {
		cfg.PSK = DefaultGroupPSK
	}
	if cfg.Users == nil {
		cfg.Users = DefaultUsers
	}
	if cfg.Pool == "" {
		cfg.Pool = DefaultPool.String()
	}
	g := &RAGateway{Gateway: *newGateway(tb, "rwgw", netip.Addr{}), Cfg: cfg}
	g.Host, g.Inner = behind(tb, "rwhost", &g.Node, LANA)
	conn := strongswan.Connection{
		Name:        RAConnName,
		RemoteAddrs: []string{"%any"},
		Aggressive:  cfg.Aggressive,
		Proposals:   []string{cfg.IKEProposal},
		PSK:         cfg.PSK,
		XAuthUsers:  cfg.Users,
		Pools:       []string{RAPoolName},
		Push:        cfg.Push,
		Children: []strongswan.Child{{
			Name:         RAChildName,
			LocalTS:      []string{LANA.String()},
			ESPProposals: []string{cfg.ESPProposal},
		}},
	}
	if c := cfg.Cert; c != nil {
		conn.LocalAuth, conn.RemoteAuth = "pubkey", "xauth"
		conn.LocalCerts, conn.PrivateKey = c.Chain, c.Key
	}
	g.Config = strongswan.Config{
		Connections: []strongswan.Connection{conn},
		Pools: []strongswan.Pool{{
			Name:   RAPoolName,
			Addrs:  cfg.Pool,
			DNS:    cfg.DNS,
			Banner: cfg.Banner,
		}},
	}
	g.Charon = StartCharon(tb, g.Name, g.Config, strongswan.Options{KeyLog: cfg.KeyLog, OnLog: cfg.OnLog})
	return g
}

// AddClient creates a namespace for a client and links it to the gateway on a
// /30 of its own out of 192.0.2.0/24: the gateway takes the first address
// (which it returns: where the client sends IKE), the client the second. The
// client's default route is the gateway.
func (g *RAGateway) AddClient(tb testing.TB, label string) (client *Node, gwAddr netip.Addr) {
	tb.Helper()
	g.links++
	if g.links > 63 {
		tb.Fatal("swantest: at most 63 clients per gateway")
	}
	base := netip.AddrFrom4([4]byte{192, 0, 2, byte(4 * g.links)})
	gwAddr, clientAddr := base.Next(), base.Next().Next()
	name, h := netenv.Netns(tb, label)
	client = &Node{Name: name, Netns: h, Addr: clientAddr}
	Link(tb, &g.Node, fmt.Sprintf("c%d", g.links), netip.PrefixFrom(gwAddr, 30), client, "eth0", netip.PrefixFrom(clientAddr, 30))
	DefaultRoute(tb, client, gwAddr)
	return client, gwAddr
}

// ClientConfig is the configuration of a charon road warrior of this
// gateway: XAUTH as user with password after the group PSK (or, with the
// gateway's certificate, Hybrid), a virtual address from Mode Config as its
// local selector, and LANA behind the gateway as its remote one.
func (g *RAGateway) ClientConfig(gwAddr netip.Addr, ca *Credential, user, password string) strongswan.Config {
	conn := strongswan.Connection{
		Name:          RAConnName,
		RemoteAddrs:   []string{gwAddr.String()},
		Aggressive:    g.Cfg.Aggressive,
		Proposals:     []string{g.Cfg.IKEProposal},
		PSK:           g.Cfg.PSK,
		XAuthID:       user,
		XAuthPassword: password,
		VIPs:          []string{"0.0.0.0"},
		Push:          g.Cfg.Push,
		Children: []strongswan.Child{{
			Name:         RAChildName,
			RemoteTS:     []string{LANA.String()},
			ESPProposals: []string{g.Cfg.ESPProposal},
		}},
	}
	if g.Cfg.Cert != nil {
		conn.LocalAuth, conn.RemoteAuth = "xauth", "pubkey"
		conn.CACerts = ca.Chain
	}
	return strongswan.Config{Connections: []strongswan.Connection{conn}}
}

// StartClient adds a client namespace and starts charon in it as a road
// warrior (ClientConfig). ca is the CA the client trusts in Hybrid mode.
func (g *RAGateway) StartClient(tb testing.TB, label string, ca *Credential, user, password string, opts strongswan.Options) *Gateway {
	tb.Helper()
	n, gwAddr := g.AddClient(tb, label)
	c := &Gateway{Node: *n, Config: g.ClientConfig(gwAddr, ca, user, password)}
	c.Charon = StartCharon(tb, c.Name, c.Config, opts)
	return c
}

// Link connects two namespaces with a veth pair created directly in them
// (the host's namespace never sees an interface), sets the addresses and
// brings both ends up.
func Link(tb testing.TB, a *Node, aIf string, aAddr netip.Prefix, b *Node, bIf string, bAddr netip.Prefix) {
	tb.Helper()
	link(tb, a, aIf, aAddr, b, bIf, bAddr)
}

// DefaultRoute routes everything in n through gw.
func DefaultRoute(tb testing.TB, n *Node, gw netip.Addr) {
	tb.Helper()
	withHandle(tb, n, func(nh *netlink.Handle) error {
		return nh.RouteAdd(&netlink.Route{Gw: gw.AsSlice()})
	})
}

// Forward turns IPv4 forwarding on in n.
func Forward(tb testing.TB, n *Node) {
	tb.Helper()
	if err := namespace.RunHandle(n.Netns, func() error {
		return os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1"), 0)
	}); err != nil {
		tb.Fatalf("enable forwarding in %s: %v", n.Name, err)
	}
}

// NewNode creates a throwaway namespace (removed when the test ends).
func NewNode(tb testing.TB, label string, addr netip.Addr) *Node {
	tb.Helper()
	name, h := netenv.Netns(tb, label)
	return &Node{Name: name, Netns: h, Addr: addr}
}

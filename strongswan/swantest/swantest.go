// Package swantest builds strongSwan baselines for tests and benchmarks: two
// charon gateways in throwaway network namespaces, optionally with a host
// behind each, and the traffic that measures them. Other packages' benchmarks
// use it to run charon ↔ charon in the same run as their own stack, so that the
// ratio compares like with like on the same machine at the same moment.
//
// Everything lives in namespaces created here and is removed when the test or
// benchmark ends, pass or fail. The helpers need root and charon: in CI a
// missing one fails the test, elsewhere it skips (internal/testenv).
package swantest

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/ipseclab/ipseclab/internal/namespace"
	"github.com/ipseclab/ipseclab/internal/testenv"
	"github.com/ipseclab/ipseclab/internal/testenv/netenv"
	"github.com/ipseclab/ipseclab/strongswan"
)

// PairConfig describes a charon gateway pair.
type PairConfig struct {
	IKEProposal string // e.g. "aes128-sha256-modp2048"
	ESPProposal string // e.g. "aes128gcm16-modp2048"; a DH group means PFS
	Aggressive  bool   // Aggressive Mode instead of Main Mode
	PSK         string // default "ipseclab-test-psk"
	KeyLog      bool   // log keys, for Charon.Keys

	// Certs, when set, makes the gateways authenticate with certificates
	// (auth pubkey, RSA or ECDSA signatures following the keys) instead of
	// the PSK. GenerateCerts makes a throwaway set.
	Certs *PairCerts

	// IDA and IDB are the identities of gateway A and B: each one's local.id
	// and the other's remote.id. Empty leaves charon's default (the address
	// with a PSK, the certificate's subject DN with certificates).
	IDA, IDB string

	// Hosts puts a host namespace behind each gateway (hostA—gwA—gwB—hostB)
	// and protects the two LANs. Without hosts, each gateway protects a /32 of
	// its own, on lo.
	Hosts bool

	// OnLogA and OnLogB, when set, receive the log lines of gateway A and B.
	OnLogA, OnLogB func(strongswan.LogLine)
}

// The pair's addresses: RFC 5737 documentation addresses between the
// gateways, RFC 1918 behind them.
var (
	OuterA = netip.MustParseAddr("192.0.2.1")
	OuterB = netip.MustParseAddr("192.0.2.2")
	LANA   = netip.MustParsePrefix("10.1.0.0/24")
	LANB   = netip.MustParsePrefix("10.2.0.0/24")
)

// Connection and child names in both gateways' configuration.
const (
	ConnName  = "lab"
	ChildName = "lab-child"
)

// Node is one namespace of the pair.
type Node struct {
	Name  string // namespace name
	Netns netns.NsHandle
	Addr  netip.Addr // gateways: the outer address; hosts: the LAN address
}

// Gateway is a node running charon.
type Gateway struct {
	Node
	Inner  netip.Addr // the gateway's address inside its protected network
	Config strongswan.Config
	Charon *strongswan.Charon
}

// Pair is two charon gateways with a link between them, and a host behind
// each when PairConfig.Hosts is set.
type Pair struct {
	A, B         *Gateway
	HostA, HostB *Node // nil without hosts
}

// StartPair builds the namespaces, links and addresses, and starts charon on
// both gateways with matching configurations. Nothing is initiated yet.
func StartPair(tb testing.TB, cfg PairConfig) *Pair {
	tb.Helper()
	testenv.NeedRoot(tb)
	testenv.NeedCommand(tb, strongswan.DefaultCharon)
	testenv.NeedCommand(tb, strongswan.DefaultSwanctl)
	if cfg.PSK == "" {
		cfg.PSK = "ipseclab-test-psk"
	}

	p := &Pair{A: newGateway(tb, "gwA", OuterA), B: newGateway(tb, "gwB", OuterB)}
	link(tb, &p.A.Node, "eth0", netip.PrefixFrom(OuterA, 24), &p.B.Node, "eth0", netip.PrefixFrom(OuterB, 24))

	localTS, remoteTS := "", ""
	if cfg.Hosts {
		p.HostA, p.A.Inner = behind(tb, "hostA", &p.A.Node, LANA)
		p.HostB, p.B.Inner = behind(tb, "hostB", &p.B.Node, LANB)
		localTS, remoteTS = LANA.String(), LANB.String()
	} else {
		// libipsec routes the remote selector via its TUN device with the
		// local selector's address as source, so that address must exist.
		p.A.Inner, p.B.Inner = LANA.Addr().Next(), LANB.Addr().Next()
		addAddr(tb, &p.A.Node, "lo", netip.PrefixFrom(p.A.Inner, 32))
		addAddr(tb, &p.B.Node, "lo", netip.PrefixFrom(p.B.Inner, 32))
		localTS, remoteTS = netip.PrefixFrom(p.A.Inner, 32).String(), netip.PrefixFrom(p.B.Inner, 32).String()
	}

	p.A.Config = gatewayConfig(cfg, OuterA, OuterB, localTS, remoteTS)
	p.B.Config = gatewayConfig(cfg, OuterB, OuterA, remoteTS, localTS)
	p.A.Config.Connections[0].LocalID, p.A.Config.Connections[0].RemoteID = cfg.IDA, cfg.IDB
	p.B.Config.Connections[0].LocalID, p.B.Config.Connections[0].RemoteID = cfg.IDB, cfg.IDA
	if c := cfg.Certs; c != nil {
		c.A.use(&p.A.Config.Connections[0], c.CA, c.B, c.Pin)
		c.B.use(&p.B.Config.Connections[0], c.CA, c.A, c.Pin)
	}
	p.A.start(tb, cfg.KeyLog, cfg.OnLogA)
	p.B.start(tb, cfg.KeyLog, cfg.OnLogB)
	return p
}

func gatewayConfig(cfg PairConfig, local, remote netip.Addr, localTS, remoteTS string) strongswan.Config {
	return strongswan.Config{Connections: []strongswan.Connection{{
		Name:        ConnName,
		LocalAddrs:  []string{local.String()},
		RemoteAddrs: []string{remote.String()},
		Aggressive:  cfg.Aggressive,
		Proposals:   []string{cfg.IKEProposal},
		PSK:         cfg.PSK,
		Children: []strongswan.Child{{
			Name:         ChildName,
			LocalTS:      []string{localTS},
			RemoteTS:     []string{remoteTS},
			ESPProposals: []string{cfg.ESPProposal},
		}},
	}}}
}

func newGateway(tb testing.TB, label string, outer netip.Addr) *Gateway {
	name, h := netenv.Netns(tb, label)
	return &Gateway{Node: Node{Name: name, Netns: h, Addr: outer}}
}

func (g *Gateway) start(tb testing.TB, keyLog bool, onLog func(strongswan.LogLine)) {
	tb.Helper()
	g.Charon = StartCharon(tb, g.Name, g.Config, strongswan.Options{KeyLog: keyLog, OnLog: onLog})
}

// StartCharon starts charon in the named namespace (one the test created, for
// instance with netenv.Netns) and stops it when the test ends. Options.Netns
// is set from the name; an empty Options.Dir becomes a directory of the test's.
// Call it after creating the namespace, so that charon stops before the
// namespace goes.
func StartCharon(tb testing.TB, netnsName string, cfg strongswan.Config, opts strongswan.Options) *strongswan.Charon {
	tb.Helper()
	testenv.NeedRoot(tb)
	testenv.NeedCommand(tb, strongswan.DefaultCharon)
	testenv.NeedCommand(tb, strongswan.DefaultSwanctl)
	opts.Netns = namespace.Path(netnsName)
	if opts.Dir == "" {
		opts.Dir = tb.TempDir()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := strongswan.Start(ctx, cfg, opts)
	if err != nil {
		tb.Fatalf("start charon in %s: %v", netnsName, err)
	}
	tb.Cleanup(func() {
		if err := c.Stop(); err != nil {
			tb.Errorf("stop charon in %s: %v", netnsName, err)
		}
	})
	return c
}

// behind creates a host namespace on a LAN behind gateway gw: the gateway
// takes the LAN's first address and forwards, the host takes .10 and routes
// everything through the gateway.
func behind(tb testing.TB, label string, gw *Node, lan netip.Prefix) (*Node, netip.Addr) {
	tb.Helper()
	name, h := netenv.Netns(tb, label)
	gwAddr := lan.Addr().Next()
	hostAddr := lan.Addr().As4()
	hostAddr[3] = 10
	host := &Node{Name: name, Netns: h, Addr: netip.AddrFrom4(hostAddr)}
	link(tb, gw, "eth1", netip.PrefixFrom(gwAddr, lan.Bits()), host, "eth0", netip.PrefixFrom(host.Addr, lan.Bits()))
	withHandle(tb, host, func(nh *netlink.Handle) error {
		return nh.RouteAdd(&netlink.Route{Gw: gwAddr.AsSlice()})
	})
	if err := namespace.RunHandle(gw.Netns, func() error {
		return os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1"), 0)
	}); err != nil {
		tb.Fatalf("enable forwarding in %s: %v", gw.Name, err)
	}
	return host, gwAddr
}

// link connects two namespaces with a veth pair created directly in them, so
// the host's namespace never sees an interface.
func link(tb testing.TB, a *Node, aIf string, aAddr netip.Prefix, b *Node, bIf string, bAddr netip.Prefix) {
	tb.Helper()
	withHandle(tb, a, func(nh *netlink.Handle) error {
		la := netlink.NewLinkAttrs()
		la.Name = aIf
		return nh.LinkAdd(&netlink.Veth{LinkAttrs: la, PeerName: bIf, PeerNamespace: netlink.NsFd(int(b.Netns))})
	})
	addAddr(tb, a, aIf, aAddr)
	addAddr(tb, b, bIf, bAddr)
}

func addAddr(tb testing.TB, n *Node, ifName string, p netip.Prefix) {
	tb.Helper()
	withHandle(tb, n, func(nh *netlink.Handle) error {
		l, err := nh.LinkByName(ifName)
		if err != nil {
			return err
		}
		addr, err := netlink.ParseAddr(p.String())
		if err != nil {
			return err
		}
		if err := nh.AddrAdd(l, addr); err != nil {
			return fmt.Errorf("add %s to %s: %w", p, ifName, err)
		}
		return nh.LinkSetUp(l)
	})
}

func withHandle(tb testing.TB, n *Node, fn func(*netlink.Handle) error) {
	tb.Helper()
	nh, err := netlink.NewHandleAt(n.Netns)
	if err != nil {
		tb.Fatalf("netlink in %s: %v", n.Name, err)
	}
	defer nh.Close()
	if err := fn(nh); err != nil {
		tb.Fatalf("%s: %v", n.Name, err)
	}
}

// Negotiate runs one Main (or Aggressive) Mode plus Quick Mode from A to B and
// deletes the result again: one unit of the negotiations-per-second baseline.
func (p *Pair) Negotiate(ctx context.Context) error {
	if err := p.A.Charon.Initiate(ctx, ConnName, ChildName); err != nil {
		return err
	}
	return p.A.Charon.Terminate(ctx, ConnName)
}

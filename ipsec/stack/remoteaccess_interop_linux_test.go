package stack_test

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/ipseclab/ipseclab/events"
	"github.com/ipseclab/ipseclab/internal/namespace"
	"github.com/ipseclab/ipseclab/internal/testenv"
	"github.com/ipseclab/ipseclab/ipsec/ike"
	"github.com/ipseclab/ipseclab/ipsec/pki"
	"github.com/ipseclab/ipseclab/ipsec/stack"
	"github.com/ipseclab/ipseclab/strongswan"
	"github.com/ipseclab/ipseclab/strongswan/swantest"
)

// Remote access against strongSwan, both ways: charon as the road warrior
// against our gateway, and our road warrior against charon as the gateway.
// XAUTH with a group PSK in Main and Aggressive Mode, Mode Config pull and
// push: the client gets an address from the pool, both sides agree on it,
// and a datagram from the client's own address crosses the tunnel.
func TestRemoteAccessInteropStrongSwan(t *testing.T) {
	for _, weGateway := range []bool{true, false} {
		role := map[bool]string{true: "gateway", false: "client"}[weGateway]
		for _, aggressive := range []bool{false, true} {
			for _, push := range []bool{false, true} {
				name := fmt.Sprintf("ours-%s/%s/%s", role, map[bool]string{true: "aggressive", false: "main"}[aggressive], map[bool]string{true: "push", false: "pull"}[push])
				t.Run(name, func(t *testing.T) { remoteAccessInterop(t, weGateway, aggressive, push, false) })
			}
		}
		// Hybrid: the gateway's RSA certificate, the client's password.
		t.Run("ours-"+role+"/main/hybrid", func(t *testing.T) { remoteAccessInterop(t, weGateway, false, false, true) })
	}
}

func remoteAccessInterop(t *testing.T, weGateway, aggressive, push, hybrid bool) {
	testenv.NeedRoot(t)
	testenv.NeedCommand(t, strongswan.DefaultCharon)
	testenv.NeedCommand(t, strongswan.DefaultSwanctl)
	ours, peer := nsPair(t)
	pool := netip.MustParsePrefix("10.9.0.0/24")
	users := map[string]string{"alice": "wonderland"}
	mode := ike.MainMode
	if aggressive {
		mode = ike.AggressiveMode
	}
	bus := events.NewBus("ra-interop")
	var log []string
	defer func() {
		if t.Failed() {
			for _, l := range log {
				t.Log(l)
			}
			for _, e := range bus.Since(0) {
				t.Log(e.String())
			}
		}
	}()

	// Our side.
	conn := ike.Connection{
		Name: "lab", Local: ours.outer, PSK: psk, Mode: mode, LocalID: "keyid:staff",
		Proposals: ikeProposals(t, "aes128-sha256-modp2048"),
		Child:     ike.Child{Proposals: espProposals(t, "aes128-sha256")},
	}
	if weGateway {
		conn.Role, conn.LocalID = ike.Responder, ""
		conn.XAuth = &ike.XAuth{Users: users}
		conn.ModeConfig = &ike.ModeConfig{Pool: pool, Push: push, SplitInclude: []netip.Prefix{netip.PrefixFrom(ours.inner, 32)}}
	} else {
		conn.Role, conn.Remote = ike.Initiator, peer.outer
		conn.XAuth = &ike.XAuth{User: "alice", Password: users["alice"]}
		conn.ModeConfig = &ike.ModeConfig{Push: push}
		conn.Child.RemoteTS = netip.PrefixFrom(peer.inner, 32)
	}
	var gwCred *pki.Credential
	var ca *pki.CA
	if hybrid {
		gwAddr := peer.outer
		if weGateway {
			gwAddr = ours.outer
		}
		now := time.Now()
		var err error
		if ca, err = pki.NewCA("hybrid CA", pki.RSA2048, now.Add(-time.Hour), now.Add(24*time.Hour), rand.Reader); err != nil {
			t.Fatal(err)
		}
		if gwCred, err = ca.Issue(pki.IssueRequest{Subject: pkix.Name{CommonName: "gw"}, IPs: []net.IP{gwAddr.AsSlice()},
			KeyType: pki.RSA2048, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour)}, rand.Reader); err != nil {
			t.Fatal(err)
		}
		conn.PSK = ""
		if weGateway {
			conn.Auth = ike.Auth{Method: ike.AuthHybrid, Chain: gwCred.Chain, Key: gwCred.Key}
		} else {
			conn.Auth = ike.Auth{Method: ike.AuthHybrid, CAs: []*x509.Certificate{ca.Cert}}
		}
	}
	s, err := stack.New(stack.Config{Node: "ours", Events: bus, Host: stack.Namespace{Handle: ours.h}, Connections: []ike.Connection{conn}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })

	// charon's side, in swanctl's words.
	sc := strongswan.Connection{
		Name: swantest.ConnName, LocalAddrs: []string{peer.outer.String()}, Aggressive: aggressive,
		Proposals: []string{"aes128-sha256-modp2048"}, PSK: psk, Push: push,
	}
	cfg := strongswan.Config{}
	child := strongswan.Child{Name: swantest.ChildName, ESPProposals: []string{"aes128-sha256"}}
	if weGateway {
		sc.RemoteAddrs = []string{ours.outer.String()}
		sc.LocalID = "keyid:staff"
		sc.XAuthID, sc.XAuthPassword = "alice", users["alice"]
		sc.VIPs = []string{"0.0.0.0"}
		child.RemoteTS = []string{netip.PrefixFrom(ours.inner, 32).String()}
	} else {
		sc.RemoteAddrs = []string{"%any"}
		sc.RemoteID = "keyid:staff"
		sc.XAuthUsers = users
		sc.Pools = []string{"rw"}
		cfg.Pools = []strongswan.Pool{{Name: "rw", Addrs: pool.String()}}
		child.LocalTS = []string{netip.PrefixFrom(peer.inner, 32).String()}
	}
	if hybrid {
		sc.PSK = ""
		if weGateway { // charon the client: XAUTH alone, the gateway's certificate checked
			sc.LocalAuth, sc.RemoteAuth, sc.CACerts = "xauth", "pubkey", []*x509.Certificate{ca.Cert}
			sc.RemoteID = ours.outer.String()
		} else { // charon the gateway: it signs
			sc.LocalAuth, sc.RemoteAuth = "pubkey", "xauth"
			sc.LocalCerts, sc.PrivateKey = gwCred.Chain, gwCred.Key
			sc.LocalID = peer.outer.String()
		}
	}
	sc.Children = []strongswan.Child{child}
	cfg.Connections = []strongswan.Connection{sc}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ch, err := strongswan.Start(ctx, cfg, strongswan.Options{Netns: namespace.Path(peer.name), Dir: t.TempDir(),
		OnLog: func(ll strongswan.LogLine) { log = append(log, fmt.Sprintf("%s[%s] %s", ll.Group, ll.IKESA, ll.Text)) }})
	if err != nil {
		t.Fatalf("start charon: %v", err)
	}
	t.Cleanup(func() { _ = ch.Stop() })

	// The client starts.
	if weGateway {
		if err := ch.Initiate(ctx, swantest.ConnName, swantest.ChildName); err != nil {
			t.Fatalf("charon initiates: %v", err)
		}
	} else if err := s.Initiate(ctx, "lab"); err != nil {
		t.Fatalf("we initiate: %v", err)
	}

	// Both agree on the client's address, from the pool.
	var vip netip.Addr
	eventually(t, "both sides' view of the lease", func() bool {
		sas, err := ch.ListSAs(ctx)
		if err != nil || len(sas) != 1 {
			return false
		}
		theirs := sas[0].RemoteVIPs // charon the gateway: what it lent
		if weGateway {
			theirs = sas[0].LocalVIPs // charon the client: what it got
		}
		st := s.SAs()
		if len(st.ISAKMP) != 1 || st.ISAKMP[0].VirtualIP == "" || len(st.IPsec) != 1 || len(theirs) != 1 {
			return false
		}
		if st.ISAKMP[0].VirtualIP != theirs[0] {
			t.Fatalf("the lease differs: ours %s, charon's %s", st.ISAKMP[0].VirtualIP, theirs[0])
		}
		vip = netip.MustParseAddr(theirs[0])
		return true
	})
	t.Logf("the client holds %s from the pool", vip)
	if !pool.Contains(vip) {
		t.Fatalf("the client got %s, outside the pool %s", vip, pool)
	}
	// A datagram from the client's own address (the route picks it) crosses.
	if weGateway {
		if err := swantest.UDPEcho(ctx, peer.h, vip, ours.h, ours.inner, []byte("charon on the road")); err != nil {
			t.Fatalf("echo from charon's virtual address: %v", err)
		}
	} else if err := swantest.UDPEcho(ctx, ours.h, netip.IPv4Unspecified(), peer.h, peer.inner, []byte("ours on the road")); err != nil {
		t.Fatalf("echo from our virtual address: %v", err)
	}
}

package strongswan_test

import (
	"context"
	"crypto/x509"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/ipseclab/ipseclab/events"
	"github.com/ipseclab/ipseclab/strongswan"
	"github.com/ipseclab/ipseclab/strongswan/swantest"
)

// TestXAuthModeConfig runs charon as a road warrior against charon as the
// gateway: the group PSK, then XAUTH, then Mode Config lends the client an
// address from the pool, which becomes its end of the tunnel.
func TestXAuthModeConfig(t *testing.T) {
	for _, tc := range []struct {
		name       string
		aggressive bool
		push       bool
		method     string // phase 1's auth method, as the gateway logs it
	}{
		{name: "MainModePull", method: "XAuthInitPSK"},
		{name: "MainModePush", push: true, method: "XAuthInitPSK"},
		{name: "AggressiveModePull", aggressive: true, method: "XAuthInitPSK"},
		{name: "AggressiveModePush", aggressive: true, push: true, method: "XAuthInitPSK"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bus := events.NewBus("ra")
			gw := swantest.StartRAGateway(t, swantest.GatewayConfig{
				IKEProposal: "aes128-sha256-modp2048",
				ESPProposal: "aes128-sha256",
				Aggressive:  tc.aggressive,
				Push:        tc.push,
				DNS:         []string{"10.1.0.53"},
				OnLog:       strongswan.PublishLog(events.Publisher{Bus: bus, Node: "gw"}, 2),
			})
			client := gw.StartClient(t, "rw1", nil, "alice", swantest.DefaultUsers["alice"],
				strongswan.Options{OnLog: strongswan.PublishLog(events.Publisher{Bus: bus, Node: "rw1"}, 2)})
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()

			if err := client.Charon.Initiate(ctx, swantest.RAConnName, swantest.RAChildName); err != nil {
				t.Fatal(err)
			}
			c := establishedSA(ctx, t, client.Charon)
			g := establishedSA(ctx, t, gw.Charon)
			if len(c.LocalVIPs) != 1 || len(g.RemoteVIPs) != 1 || c.LocalVIPs[0] != g.RemoteVIPs[0] {
				t.Fatalf("virtual addresses: the client has %v, the gateway lent %v", c.LocalVIPs, g.RemoteVIPs)
			}
			vip := netip.MustParseAddr(c.LocalVIPs[0])
			if !swantest.DefaultPool.Contains(vip) || vip == swantest.DefaultPool.Addr() {
				t.Errorf("the client got %s, not a host address of the pool %s", vip, swantest.DefaultPool)
			}
			if got, want := strings.Join(c.Children[0].LocalTS, ","), vip.String()+"/32"; got != want {
				t.Errorf("the client's local selector is %s, want its virtual address %s", got, want)
			}
			if got := strings.Join(c.Children[0].RemoteTS, ","); got != swantest.LANA.String() {
				t.Errorf("the client's remote selector is %s, want %s", got, swantest.LANA)
			}
			pools, err := gw.Charon.Pools(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(pools) != 1 || pools[0].Online != 1 || len(pools[0].Leases) != 1 ||
				pools[0].Leases[0].Addr != vip || pools[0].Leases[0].Identity != "alice" || !pools[0].Leases[0].Online {
				t.Errorf("the gateway's pools: %+v, want one online lease of %s to alice", pools, vip)
			}
			waitLogged(ctx, t, bus, "gw", swantest.RAConnName, "XAuth authentication of 'alice' successful")
			waitLogged(ctx, t, bus, "gw", swantest.RAConnName, "assigning virtual IP "+vip.String()+" to peer 'alice'")
			waitLogged(ctx, t, bus, "gw", "", "looking for "+tc.method+" peer configs")
			// Mode Config: the client asks (pull) or the gateway sets (push)
			// the address, the DNS server and, as Unity's split-include, the
			// gateway's local selector, to which the client narrows its tunnel.
			if tc.push {
				waitLogged(ctx, t, bus, "rw1", swantest.RAConnName, "HASH CPS(ADDR DNS U_SPLITINC) ]")
				waitLogged(ctx, t, bus, "rw1", swantest.RAConnName, "HASH CPA(ADDR) ]")
			} else {
				waitLogged(ctx, t, bus, "rw1", swantest.RAConnName, "HASH CPRQ(ADDR U_SPLITINC U_LOCALLAN) ]")
				waitLogged(ctx, t, bus, "rw1", swantest.RAConnName, "HASH CPRP(ADDR DNS U_SPLITINC) ]")
			}
			waitLogged(ctx, t, bus, "rw1", swantest.RAConnName, "narrowed CHILD_SA to UNITY_SPLIT_INCLUDE "+swantest.LANA.String())

			// Traffic from the virtual address to the host behind the gateway.
			if err := swantest.UDPEcho(ctx, client.Netns, vip, gw.Host.Netns, gw.Host.Addr, []byte("road warrior "+tc.name)); err != nil {
				t.Fatal(err)
			}

			if err := client.Charon.Terminate(ctx, swantest.RAConnName); err != nil {
				t.Fatal(err)
			}
			waitNoSAs(ctx, t, "client", client.Charon)
			waitNoSAs(ctx, t, "gateway", gw.Charon)
		})
	}
}

// TestXAuthWrongPassword: the gateway refuses a wrong password, tells the
// client so (XAUTH STATUS failed) and ends the ISAKMP SA; no address is lent.
func TestXAuthWrongPassword(t *testing.T) {
	bus := events.NewBus("ra")
	gw := swantest.StartRAGateway(t, swantest.GatewayConfig{
		IKEProposal: "aes128-sha256-modp2048",
		ESPProposal: "aes128-sha256",
		OnLog:       strongswan.PublishLog(events.Publisher{Bus: bus, Node: "gw"}, 1),
	})
	client := gw.StartClient(t, "rw1", nil, "alice", "not-alice-password",
		strongswan.Options{OnLog: strongswan.PublishLog(events.Publisher{Bus: bus, Node: "rw1"}, 1)})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := client.Charon.Initiate(ctx, swantest.RAConnName, swantest.RAChildName); err == nil {
		t.Fatal("initiate succeeded with a wrong password")
	}
	waitLogged(ctx, t, bus, "gw", swantest.RAConnName, "XAuth authentication of 'alice' failed")
	waitLogged(ctx, t, bus, "rw1", swantest.RAConnName, "XAuth authentication of 'alice' (myself) failed")
	waitNoSAs(ctx, t, "client", client.Charon)
	waitNoSAs(ctx, t, "gateway", gw.Charon)
	pools, err := gw.Charon.Pools(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(pools) != 1 || pools[0].Online != 0 || len(pools[0].Leases) != 0 {
		t.Errorf("the gateway lent an address to a client that failed XAUTH: %+v", pools)
	}
}

// TestXAuthTwoClients: two road warriors at once, each with its own user,
// get different addresses and their own tunnels.
func TestXAuthTwoClients(t *testing.T) {
	users := map[string]string{"alice": "alice-password", "bob": "bob-password"}
	gw := swantest.StartRAGateway(t, swantest.GatewayConfig{
		IKEProposal: "aes128-sha256-modp2048",
		ESPProposal: "aes128gcm16",
		Aggressive:  true,
		Users:       users,
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	vips := map[string]netip.Addr{}
	for _, user := range []string{"alice", "bob"} {
		c := gw.StartClient(t, user, nil, user, users[user], strongswan.Options{})
		if err := c.Charon.Initiate(ctx, swantest.RAConnName, swantest.RAChildName); err != nil {
			t.Fatalf("%s: %v", user, err)
		}
		sa := establishedSA(ctx, t, c.Charon)
		if len(sa.LocalVIPs) != 1 {
			t.Fatalf("%s has virtual addresses %v", user, sa.LocalVIPs)
		}
		vip := netip.MustParseAddr(sa.LocalVIPs[0])
		if err := swantest.UDPEcho(ctx, c.Netns, vip, gw.Host.Netns, gw.Host.Addr, []byte("hello from "+user)); err != nil {
			t.Fatalf("%s from %s: %v", user, vip, err)
		}
		vips[user] = vip
	}
	if vips["alice"] == vips["bob"] {
		t.Errorf("alice and bob both got %s", vips["alice"])
	}
	pools, err := gw.Charon.Pools(ctx)
	if err != nil {
		t.Fatal(err)
	}
	leases := map[string]netip.Addr{}
	for _, l := range pools[0].Leases {
		if l.Online {
			leases[l.Identity] = l.Addr
		}
	}
	if leases["alice"] != vips["alice"] || leases["bob"] != vips["bob"] || len(leases) != 2 {
		t.Errorf("the gateway's leases %v, the clients' addresses %v", leases, vips)
	}
}

// TestHybrid: the gateway proves itself with its RSA certificate, the client
// only with XAUTH (HybridInitRSA, draft-ietf-ipsec-isakmp-hybrid-auth-05):
// the client has no certificate and no PSK, only the CA.
func TestHybrid(t *testing.T) {
	for _, aggressive := range []bool{false, true} {
		t.Run(map[bool]string{false: "MainMode", true: "AggressiveMode"}[aggressive], func(t *testing.T) {
			certs := swantest.GenerateCerts(t, swantest.RSA2048)
			bus := events.NewBus("hybrid")
			gw := swantest.StartRAGateway(t, swantest.GatewayConfig{
				IKEProposal: "aes128-sha256-modp2048",
				ESPProposal: "aes128-sha256",
				Aggressive:  aggressive,
				Cert:        &certs.A,
				OnLog:       strongswan.PublishLog(events.Publisher{Bus: bus, Node: "gw"}, 1),
			})
			ca := swantest.Credential{Chain: []*x509.Certificate{certs.CA}}
			client := gw.StartClient(t, "rw1", &ca, "alice", swantest.DefaultUsers["alice"], strongswan.Options{})
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := client.Charon.Initiate(ctx, swantest.RAConnName, swantest.RAChildName); err != nil {
				t.Fatal(err)
			}
			waitLogged(ctx, t, bus, "gw", "", "looking for HybridInitRSA peer configs")
			c := establishedSA(ctx, t, client.Charon)
			if want := swantest.SubjectDN(certs.A.Chain[0]); c.RemoteID != want {
				t.Errorf("the client authenticated the gateway as %q, want %q", c.RemoteID, want)
			}
			if len(c.LocalVIPs) != 1 {
				t.Fatalf("virtual addresses %v", c.LocalVIPs)
			}
			vip := netip.MustParseAddr(c.LocalVIPs[0])
			if err := swantest.UDPEcho(ctx, client.Netns, vip, gw.Host.Netns, gw.Host.Addr, []byte("hybrid")); err != nil {
				t.Fatal(err)
			}
		})
	}
}

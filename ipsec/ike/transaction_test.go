package ike_test

import (
	"context"
	"crypto/x509"
	mrand "math/rand/v2"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/ipseclab/ipseclab/events"
	"github.com/ipseclab/ipseclab/ipsec/ike"
	"github.com/ipseclab/ipseclab/ipsec/isakmp"
	"github.com/ipseclab/ipseclab/ipsec/stack/sim"
)

// remoteAccessConns is a road warrior (the initiator, XAUTH user alice,
// asking Mode Config for an address) and its gateway (the responder, with
// the users and a pool); everything else as conns.
func remoteAccessConns(t *testing.T, mode ike.Mode, push bool, password string) (client, gateway ike.Connection) {
	client, gateway = conns(t, mode, "aes128-sha256-modp2048", "aes128gcm16")
	client.Child.LocalTS, client.Child.RemoteTS = netip.Prefix{}, netip.Prefix{}
	gateway.Child.LocalTS, gateway.Child.RemoteTS = netip.Prefix{}, netip.Prefix{}
	gateway.Remote = netip.Addr{}
	client.XAuth = &ike.XAuth{User: "alice", Password: password}
	client.ModeConfig = &ike.ModeConfig{Push: push}
	gateway.XAuth = &ike.XAuth{Users: map[string]string{"alice": "wonderland", "bob": "builder"}}
	gateway.ModeConfig = &ike.ModeConfig{
		Pool: netip.MustParsePrefix("10.9.0.0/29"), DNS: []netip.Addr{netip.MustParseAddr("10.2.0.53")},
		SplitInclude: []netip.Prefix{netip.MustParsePrefix("10.2.0.0/24")}, Push: push, Banner: "lab gateway",
	}
	return client, gateway
}

func TestXAuthAndModeConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		mode ike.Mode
		push bool
	}{
		{"main/pull", ike.MainMode, false},
		{"aggressive/pull", ike.AggressiveMode, false},
		{"main/push", ike.MainMode, true},
		{"aggressive/push", ike.AggressiveMode, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client, gateway := remoteAccessConns(t, tc.mode, tc.push, "wonderland")
			p, evs, err := negotiate(t, client, gateway, nil)
			if err != nil {
				t.Fatalf("initiate: %v\n%s", err, eventLines(evs))
			}
			// Phase 1 named XAUTH in its offer.
			first, _ := isakmp.Decode(p.wire.log[0].data)
			a, _ := isakmp.ParsePhase1Attributes(isakmp.First[*isakmp.SA](first).Proposals[0].Transforms[0].Attributes)
			if a.AuthMethod != isakmp.AuthMethodXAuthInitPSK {
				t.Errorf("offered auth method %v, want XAUTHInitPreShared", a.AuthMethod)
			}
			// Both sides agree on the lease: the pool's first address.
			for side, e := range map[string]*ike.Engine{"client": p.i, "gateway": p.r} {
				st := e.SAs()
				if len(st.ISAKMP) != 1 || st.ISAKMP[0].VirtualIP != "10.9.0.1" || st.ISAKMP[0].XAuthUser != "alice" {
					t.Errorf("%s: ISAKMP SAs %+v", side, st.ISAKMP)
				}
				if len(st.IPsec) != 1 {
					t.Fatalf("%s: IPsec SAs %+v", side, st.IPsec)
				}
			}
			// Quick Mode protects the lent address and the split network.
			c, g := p.i.SAs().IPsec[0], p.r.SAs().IPsec[0]
			if c.LocalTS != "10.9.0.1/32" || c.RemoteTS != "10.2.0.0/24" || g.LocalTS != "10.2.0.0/24" || g.RemoteTS != "10.9.0.1/32" {
				t.Errorf("selectors: client %s === %s, gateway %s === %s", c.LocalTS, c.RemoteTS, g.LocalTS, g.RemoteTS)
			}
			// The timeline has the four XAUTH messages and the two of Mode
			// Config, between phase 1 and Quick Mode, and never the password.
			var order []string
			for _, e := range findEvents(evs, events.IKEMessage) {
				if e.IKE.Dir == events.Sent {
					order = append(order, e.IKE.Exchange)
				}
				if strings.Contains(e.Message+e.Explain, "wonderland") {
					t.Errorf("the password shows in %q", e.Message+e.Explain)
				}
			}
			got := strings.Join(order, " ")
			if !strings.Contains(got, "xauth xauth xauth xauth modecfg modecfg quick") {
				t.Errorf("messages sent, in order: %s", got)
			}
			if x := findEvents(evs, events.XAuth); len(x) < 2 || x[0].Fields["user"] != "alice" || x[0].Fields["result"] != "accepted" {
				t.Errorf("xauth events %s", eventLines(x))
			}
			if m := findEvents(evs, events.ModeConfig); len(m) != 2 || !strings.Contains(m[0].Message, "10.9.0.1") {
				t.Errorf("modecfg events %s", eventLines(m))
			}
		})
	}
}

// A wrong password is asked for three times; then the gateway refuses it
// and deletes the ISAKMP SA, naming the user and never the password.
func TestXAuthWrongPassword(t *testing.T) {
	client, gateway := remoteAccessConns(t, ike.MainMode, false, "looking-glass")
	p, evs, err := negotiate(t, client, gateway, nil)
	if err == nil {
		t.Fatal("initiate succeeded with a wrong password")
	}
	var refused int
	for _, e := range findEvents(evs, events.XAuth) {
		if e.Fields["user"] != "alice" || strings.Contains(e.Message, "looking-glass") {
			t.Errorf("xauth event %q", e.Message)
		}
		if e.Node == "" || e.Fields["result"] == "refused" {
			refused++
		}
	}
	if refused < 3 {
		t.Errorf("%d refusals, want the three tries and the client's:\n%s", refused, eventLines(evs))
	}
	asked := 0
	for _, e := range findEvents(evs, events.IKEMessage) {
		if e.IKE.Exchange == "xauth" && e.IKE.MsgNum == 1 && e.IKE.Dir == events.Sent {
			asked++
		}
	}
	if asked != 3 {
		t.Errorf("the gateway asked %d times, want 3", asked)
	}
	for side, e := range map[string]*ike.Engine{"client": p.i, "gateway": p.r} {
		if st := e.SAs(); len(st.ISAKMP) != 0 || len(st.IPsec) != 0 {
			t.Errorf("%s keeps SAs: %+v", side, st)
		}
	}
}

// A Transaction message before phase 1 is done is dropped and counted.
func TestTransactionBeforePhase1IsDropped(t *testing.T) {
	client, gateway := remoteAccessConns(t, ike.MainMode, false, "wonderland")
	client.Child.Start = ike.StartStart
	p := newPair(t, 4, client, gateway)
	if err := p.i.Start(); err != nil {
		t.Fatal(err)
	}
	p.deliver() // MM1
	p.deliver() // MM2
	mm2, err := isakmp.Decode(p.wire.log[1].data)
	if err != nil {
		t.Fatal(err)
	}
	h := mm2.Header
	h.Exchange, h.MessageID = isakmp.ExchangeTransaction, 77
	b, err := (&isakmp.Message{Header: h, Payloads: []isakmp.Payload{&isakmp.ConfigAttributes{CfgType: isakmp.CfgSet,
		Attributes: []isakmp.Attribute{isakmp.Variable(isakmp.CfgInternalIP4Address, []byte{10, 9, 0, 99})}}}}).Encode()
	if err != nil {
		t.Fatal(err)
	}
	before := p.i.Stats().Malformed
	p.i.Receive(ike.Packet{Local: p.wire.log[1].to, Remote: p.wire.log[1].from, Data: b})
	if got := p.i.Stats().Malformed; got != before+1 {
		t.Errorf("malformed %d → %d, want one more", before, got)
	}
	for p.deliver() {
	}
	if st := p.i.SAs(); len(st.ISAKMP) != 1 || st.ISAKMP[0].VirtualIP != "10.9.0.1" {
		t.Errorf("the forged address was taken, or the exchange failed: %+v", st.ISAKMP)
	}
}

// Three road warriors on one gateway whose pool holds two addresses: the
// first two get one each and a tunnel of their own; the third is told
// there is none left, and the event says so.
func TestModeConfigPoolExhausted(t *testing.T) {
	_, gateway := remoteAccessConns(t, ike.MainMode, false, "")
	gateway.ModeConfig.Pool = netip.MustParsePrefix("10.9.0.0/30") // .1 and .2
	gateway.XAuth.Users["carol"] = "singer"
	bus := events.NewBus("pool", events.WithHistory(4096))
	w := &wire{}
	clock := sim.NewClock(pairEpoch)
	engines := map[netip.Addr]*ike.Engine{}
	newEngine := func(c ike.Connection, seed byte) *ike.Engine {
		e, err := ike.New(ike.Config{Node: c.Local.String(), Events: bus, Connections: []ike.Connection{c}, Transport: endpoint{w},
			DataPlane: newFakeDataPlane(uint32(seed) << 12), Clock: clock, Rand: mrand.NewChaCha8([32]byte{seed})})
		if err != nil {
			t.Fatal(err)
		}
		engines[c.Local] = e
		return e
	}
	newEngine(gateway, 1)
	var clients []*ike.Engine
	for i, u := range [][2]string{{"alice", "wonderland"}, {"bob", "builder"}, {"carol", "singer"}} {
		c, _ := remoteAccessConns(t, ike.MainMode, false, u[1])
		c.XAuth.User = u[0]
		c.Local = netip.AddrFrom4([4]byte{192, 0, 2, byte(10 + i)})
		clients = append(clients, newEngine(c, byte(2+i)))
	}
	deliverAll := func() {
		for {
			d, ok := w.next()
			if !ok {
				return
			}
			if e := engines[d.to.Addr()]; e != nil {
				e.Receive(ike.Packet{Local: d.to, Remote: d.from, Data: d.data})
			}
		}
	}
	errs := make([]error, len(clients))
	for i, c := range clients {
		done := make(chan error, 1)
		go func() { done <- c.Initiate(context.Background(), "lab") }()
		for waiting := true; waiting; {
			deliverAll()
			select {
			case errs[i] = <-done:
				waiting = false
			case <-time.After(time.Millisecond):
			}
		}
	}
	if errs[0] != nil || errs[1] != nil {
		t.Fatalf("the first two clients: %v, %v", errs[0], errs[1])
	}
	if errs[2] == nil {
		t.Fatal("the third client got a tunnel from a pool of two")
	}
	ips := map[string]bool{}
	for _, c := range clients[:2] {
		st := c.SAs()
		if len(st.ISAKMP) != 1 || len(st.IPsec) != 1 {
			t.Fatalf("client SAs %+v", st)
		}
		ips[st.ISAKMP[0].VirtualIP] = true
	}
	if !ips["10.9.0.1"] || !ips["10.9.0.2"] {
		t.Errorf("addresses %v, want 10.9.0.1 and 10.9.0.2", ips)
	}
	if g := engines[gateway.Local].SAs(); len(g.IPsec) != 2 {
		t.Errorf("the gateway holds %d IPsec SA pairs, want one per client", len(g.IPsec))
	}
	exhausted := false
	for _, e := range bus.Since(0) {
		if e.Kind == events.ModeConfig && e.Fields["exhausted"] == true {
			exhausted = true
		}
	}
	if !exhausted {
		t.Error("no event says the pool is exhausted")
	}
}

// Hybrid authentication: the gateway signs with its certificate, the client
// has none and logs in with XAUTH; then Mode Config and Quick Mode as
// always. A client that does not trust the gateway's CA gives up before it
// sends its password.
func TestHybridAuthentication(t *testing.T) {
	pk := newTestPKI(t, "rsa-2048", pairEpoch.AddDate(0, -1, 0), pairEpoch.AddDate(1, 0, 0))
	other := newTestPKI(t, "rsa-2048", pairEpoch.AddDate(0, -1, 0), pairEpoch.AddDate(1, 0, 0))
	for _, tc := range []struct {
		name    string
		mode    ike.Mode
		trusted bool
	}{
		{"main", ike.MainMode, true},
		{"aggressive", ike.AggressiveMode, true},
		{"main/untrusted gateway", ike.MainMode, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client, gateway := remoteAccessConns(t, tc.mode, false, "wonderland")
			client.PSK, gateway.PSK = "", ""
			ca := pk.ca.Cert
			if !tc.trusted {
				ca = other.ca.Cert
			}
			client.Auth = ike.Auth{Method: ike.AuthHybrid, CAs: []*x509.Certificate{ca}}
			gateway.Auth = ike.Auth{Method: ike.AuthHybrid, Chain: pk.r.Chain, Key: pk.r.Key}
			p, evs, err := negotiate(t, client, gateway, nil)
			if !tc.trusted {
				if err == nil {
					t.Fatal("the client accepted a gateway from another CA")
				}
				// The gateway, established once MM6 is out, may ask; the
				// client never answers with its password.
				for _, e := range findEvents(evs, events.IKEMessage) {
					if e.IKE.Exchange == "xauth" && e.IKE.MsgNum == 2 {
						t.Fatalf("the client gave its password to an untrusted gateway: %s", e.Message)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("initiate: %v\n%s", err, eventLines(evs))
			}
			first, _ := isakmp.Decode(p.wire.log[0].data)
			a, _ := isakmp.ParsePhase1Attributes(isakmp.First[*isakmp.SA](first).Proposals[0].Transforms[0].Attributes)
			if a.AuthMethod != isakmp.AuthMethodHybridInitRSA {
				t.Errorf("offered auth method %v, want HybridInitRSA", a.AuthMethod)
			}
			if st := p.i.SAs(); len(st.IPsec) != 1 || st.ISAKMP[0].VirtualIP != "10.9.0.1" {
				t.Errorf("client SAs %+v", st)
			}
			certs := findEvents(evs, events.PeerCertificate)
			if len(certs) != 1 || !strings.Contains(certs[0].Message, "CN=gw-r") {
				t.Errorf("peer-certificate events (only the client checks one): %s", eventLines(certs))
			}
		})
	}
}

// XAUTH after RSA signatures: XAUTHInitRSA in the offer, certificates both
// ways, then the password and the address.
func TestXAuthAfterSignatures(t *testing.T) {
	pk := newTestPKI(t, "rsa-2048", pairEpoch.AddDate(0, -1, 0), pairEpoch.AddDate(1, 0, 0))
	client, gateway := remoteAccessConns(t, ike.MainMode, false, "wonderland")
	client.PSK, gateway.PSK = "", ""
	client.Auth = ike.Auth{Method: ike.AuthPubkey, Chain: pk.i.Chain, Key: pk.i.Key, CAs: []*x509.Certificate{pk.ca.Cert}}
	gateway.Auth = ike.Auth{Method: ike.AuthPubkey, Chain: pk.r.Chain, Key: pk.r.Key, CAs: []*x509.Certificate{pk.ca.Cert}}
	p, evs, err := negotiate(t, client, gateway, nil)
	if err != nil {
		t.Fatalf("initiate: %v\n%s", err, eventLines(evs))
	}
	first, _ := isakmp.Decode(p.wire.log[0].data)
	a, _ := isakmp.ParsePhase1Attributes(isakmp.First[*isakmp.SA](first).Proposals[0].Transforms[0].Attributes)
	if a.AuthMethod != isakmp.AuthMethodXAuthInitRSA {
		t.Errorf("offered auth method %v, want XAUTHInitRSA", a.AuthMethod)
	}
	if st := p.i.SAs(); len(st.IPsec) != 1 || st.ISAKMP[0].VirtualIP != "10.9.0.1" || st.ISAKMP[0].XAuthUser != "alice" {
		t.Errorf("client SAs %+v", st)
	}
	if n := len(findEvents(evs, events.PeerCertificate)); n != 2 {
		t.Errorf("%d peer-certificate events, want one per side", n)
	}
}

// A road warrior that asks to tunnel everything (0.0.0.0/0, vpnc's default)
// is narrowed to the gateway's one network, as charon narrows it: both sides
// end with the lease === the split network.
func TestRoadWarriorNarrowedToTheSplitNetwork(t *testing.T) {
	client, gateway := remoteAccessConns(t, ike.MainMode, false, "wonderland")
	client.Child.RemoteTS = netip.MustParsePrefix("0.0.0.0/0")
	p, evs, err := negotiate(t, client, gateway, nil)
	if err != nil {
		t.Fatalf("initiate: %v\n%s", err, eventLines(evs))
	}
	c, g := p.i.SAs().IPsec, p.r.SAs().IPsec
	if len(c) != 1 || len(g) != 1 || c[0].RemoteTS != "10.2.0.0/24" || g[0].LocalTS != "10.2.0.0/24" || g[0].RemoteTS != "10.9.0.1/32" {
		t.Errorf("selectors: client %+v, gateway %+v", c, g)
	}
}

// With the keys published (`--keys`), the timeline shows the password the
// client sent too; without, never (TestXAuthAndModeConfig).
func TestXAuthPasswordShownWithKeys(t *testing.T) {
	client, gateway := remoteAccessConns(t, ike.MainMode, false, "wonderland")
	bus := events.NewBus("keys", events.WithHistory(4096))
	p := newPairKeys(t, 3, client, gateway, bus, true)
	if err := p.initiate(t); err != nil {
		t.Fatal(err)
	}
	shown := false
	for _, e := range findEvents(bus.Since(0), events.IKEMessage) {
		if e.IKE.Exchange == "xauth" && e.IKE.MsgNum == 2 && strings.Contains(e.Explain, `password "wonderland"`) {
			shown = true
		}
	}
	if !shown {
		t.Error("with keys published, XAUTH 2/4 does not show the password")
	}
}

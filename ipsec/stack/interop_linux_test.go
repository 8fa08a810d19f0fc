package stack_test

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipseclab/ipseclab/events"
	"github.com/ipseclab/ipseclab/internal/namespace"
	"github.com/ipseclab/ipseclab/internal/testenv"
	"github.com/ipseclab/ipseclab/ipsec/ike"
	"github.com/ipseclab/ipseclab/ipsec/stack"
	"github.com/ipseclab/ipseclab/strongswan"
	"github.com/ipseclab/ipseclab/strongswan/swantest"
)

// Interop with Debian's strongSwan 5.9.8 (charon with kernel-libipsec): our
// stack in one namespace, charon in the other, a veth between them. charon's
// libipsec forces UDP encapsulation by faking NAT-D, so every case also
// exercises the float to 4500 and the UDP-encapsulated tunnel mode.

type interopCase struct {
	name       string
	aggressive bool
	ike, esp   string // ours, strongSwan notation
	charonIKE  string // how swanctl --list-sas renders the suites
	charonESP  string
}

var interopSuites = []interopCase{
	{name: "modp", ike: "aes128-sha256-modp2048", esp: "aes128-sha256-modp2048",
		charonIKE: "AES_CBC-128/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_2048", charonESP: "AES_CBC-128/HMAC_SHA2_256_128/MODP_2048"},
	{name: "ecp", ike: "aes256-sha384-ecp384", esp: "aes128gcm16-ecp256",
		charonIKE: "AES_CBC-256/HMAC_SHA2_384_192/PRF_HMAC_SHA2_384/ECP_384", charonESP: "AES_GCM_16-128/ECP_256"},
}

// interopLab is our stack and charon, ready to negotiate.
type interopLab struct {
	ours, peer *nsNode
	stack      *stack.Stack
	charon     *strongswan.Charon
	bus        *events.Bus
	logMu      sync.Mutex
	log        []string
}

func startInterop(t *testing.T, tc interopCase, weInitiate bool) *interopLab {
	return startInteropWith(t, tc, weInitiate, nil)
}

// startInteropWith is startInterop with a change to our connection.
func startInteropWith(t *testing.T, tc interopCase, weInitiate bool, mutate func(*ike.Connection)) *interopLab {
	return startInteropSides(t, tc, weInitiate, mutate, nil)
}

// startInteropSides is startInteropWith with a change to charon's child too.
func startInteropSides(t *testing.T, tc interopCase, weInitiate bool, mutate func(*ike.Connection), mutateCharon func(*strongswan.Child)) *interopLab {
	testenv.NeedRoot(t)
	testenv.NeedCommand(t, strongswan.DefaultCharon)
	testenv.NeedCommand(t, strongswan.DefaultSwanctl)
	l := &interopLab{bus: events.NewBus("interop")}
	l.ours, l.peer = nsPair(t)

	mode := ike.MainMode
	if tc.aggressive {
		mode = ike.AggressiveMode
	}
	role := ike.Responder
	if weInitiate {
		role = ike.Initiator
	}
	conn := ike.Connection{
		Name: "lab", Role: role, Local: l.ours.outer, Remote: l.peer.outer, PSK: psk, Mode: mode,
		Proposals: ikeProposals(t, tc.ike),
		Child: ike.Child{
			LocalTS: netip.PrefixFrom(l.ours.inner, 32), RemoteTS: netip.PrefixFrom(l.peer.inner, 32),
			Proposals: espProposals(t, tc.esp),
		},
	}
	if mutate != nil {
		mutate(&conn)
	}
	s, err := stack.New(stack.Config{Node: "ours", Events: l.bus, Host: stack.Namespace{Handle: l.ours.h}, Connections: []ike.Connection{conn}, PublishKeys: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	l.stack = s
	t.Cleanup(func() { s.Close() })

	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	child := strongswan.Child{
		Name: swantest.ChildName, LocalTS: []string{netip.PrefixFrom(l.peer.inner, 32).String()},
		RemoteTS: []string{netip.PrefixFrom(l.ours.inner, 32).String()}, ESPProposals: []string{tc.esp},
	}
	if mutateCharon != nil {
		mutateCharon(&child)
	}
	ch, err := strongswan.Start(c, strongswan.Config{Connections: []strongswan.Connection{{
		Name: swantest.ConnName, LocalAddrs: []string{l.peer.outer.String()}, RemoteAddrs: []string{l.ours.outer.String()},
		Aggressive: tc.aggressive, Proposals: []string{tc.ike}, PSK: psk,
		Children: []strongswan.Child{child},
	}}}, strongswan.Options{Netns: namespace.Path(l.peer.name), Dir: t.TempDir(), OnLog: func(ll strongswan.LogLine) {
		l.logMu.Lock()
		l.log = append(l.log, fmt.Sprintf("%s[%s] %s", ll.Group, ll.IKESA, ll.Text))
		l.logMu.Unlock()
	}})
	if err != nil {
		t.Fatalf("start charon: %v", err)
	}
	l.charon = ch
	t.Cleanup(func() {
		if err := ch.Stop(); err != nil {
			t.Errorf("stop charon: %v", err)
		}
	})
	t.Cleanup(func() {
		if t.Failed() {
			l.dump(t)
		}
	})
	return l
}

// dump shows what both sides said, for a failed case.
func (l *interopLab) dump(t *testing.T) {
	for _, e := range l.bus.Since(0) {
		t.Logf("ours: %s", e)
	}
	l.logMu.Lock()
	defer l.logMu.Unlock()
	for _, s := range l.log {
		t.Logf("charon: %s", s)
	}
}

// charonSA waits until charon lists one established IKE SA with an installed
// CHILD SA.
func (l *interopLab) charonSA(ctx context.Context, t *testing.T) strongswan.IKESA {
	t.Helper()
	var last []strongswan.IKESA
	for {
		sas, err := l.charon.ListSAs(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(sas) == 1 && sas[0].State == "ESTABLISHED" && len(sas[0].Children) == 1 && sas[0].Children[0].State == "INSTALLED" {
			return sas[0]
		}
		last = sas
		select {
		case <-ctx.Done():
			t.Fatalf("charon lists no established IKE SA with an installed CHILD SA: %+v", last)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func TestInteropStrongSwan(t *testing.T) {
	for _, suite := range interopSuites {
		for _, aggressive := range []bool{false, true} {
			for _, weInitiate := range []bool{true, false} {
				tc := suite
				tc.aggressive = aggressive
				mode, dir := "main", "charon-to-ours"
				if aggressive {
					mode = "aggressive"
				}
				if weInitiate {
					dir = "ours-to-charon"
				}
				t.Run(fmt.Sprintf("%s/%s/%s", dir, mode, tc.name), func(t *testing.T) { interop(t, tc, weInitiate) })
			}
		}
	}
}

func interop(t *testing.T, tc interopCase, weInitiate bool) {
	l := startInterop(t, tc, weInitiate)
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	if weInitiate {
		if err := l.stack.Initiate(ctx, "lab"); err != nil {
			t.Fatal(err)
		}
	} else if err := l.charon.Initiate(ctx, swantest.ConnName, swantest.ChildName); err != nil {
		t.Fatal(err)
	}

	// Both sides: one ISAKMP SA with the same cookies and suite, one pair of
	// IPsec SAs with crossed SPIs, the same suite, UDP-encapsulated.
	theirs := l.charonSA(ctx, t)
	var ours stack.Status
	eventually(t, "our SAs", func() bool {
		ours = l.stack.SAs()
		return len(ours.ISAKMP) == 1 && ours.ISAKMP[0].State == "established" && len(ours.IPsec) == 1
	})
	p1, p2 := ours.ISAKMP[0], ours.IPsec[0]
	t.Logf("ours:   ISAKMP %s/%s %s %s → %s; %s SPIs in %s out %s %s", p1.ICookie, p1.RCookie, p1.Proposal, p1.Local, p1.Remote, p2.Protocol, p2.SPIIn, p2.SPIOut, p2.Proposal)
	t.Logf("charon: IKE %016x/%016x %s %v → %v; CHILD SPIs in %08x out %08x %s", theirs.ICookie, theirs.RCookie, theirs.Proposal(), theirs.Local, theirs.Remote,
		theirs.Children[0].SPIIn, theirs.Children[0].SPIOut, theirs.Children[0].Proposal())
	if p1.ICookie != fmt.Sprintf("%016x", theirs.ICookie) || p1.RCookie != fmt.Sprintf("%016x", theirs.RCookie) {
		t.Errorf("cookies: ours %s/%s, charon %016x/%016x", p1.ICookie, p1.RCookie, theirs.ICookie, theirs.RCookie)
	}
	if p1.Proposal != tc.ike || theirs.Proposal() != tc.charonIKE {
		t.Errorf("IKE suites: ours %s, charon %s (want %s)", p1.Proposal, theirs.Proposal(), tc.charonIKE)
	}
	if theirs.Initiator == weInitiate || (p1.Role == "initiator") != weInitiate {
		t.Errorf("roles: charon initiator=%v, ours %s", theirs.Initiator, p1.Role)
	}
	if !p1.NATT || !strings.HasSuffix(p1.Local, ":4500") || theirs.Local.Port() != 4500 {
		t.Errorf("IKE did not float to 4500: ours %s → %s, charon %v", p1.Local, p1.Remote, theirs.Local)
	}
	child := theirs.Children[0]
	if p2.SPIIn != fmt.Sprintf("%08x", child.SPIOut) || p2.SPIOut != fmt.Sprintf("%08x", child.SPIIn) {
		t.Errorf("SPIs do not cross: ours in %s out %s, charon in %08x out %08x", p2.SPIIn, p2.SPIOut, child.SPIIn, child.SPIOut)
	}
	if p2.Proposal != tc.esp || child.Proposal() != tc.charonESP {
		t.Errorf("ESP suites: ours %s, charon %s (want %s)", p2.Proposal, child.Proposal(), tc.charonESP)
	}
	if !p2.UDPEncap || !child.Encap || p2.Mode != "tunnel" || child.Mode != "TUNNEL" || p2.Protocol != "esp" || child.Protocol != "ESP" {
		t.Errorf("modes: ours %s %s encap=%v, charon %s %s encap=%v", p2.Protocol, p2.Mode, p2.UDPEncap, child.Protocol, child.Mode, child.Encap)
	}

	// Traffic both ways: our esp data plane and libipsec.
	if err := swantest.UDPEcho(ctx, l.ours.h, l.ours.inner, l.peer.h, l.peer.inner, []byte("ours to charon "+t.Name())); err != nil {
		t.Fatal(err)
	}
	if err := swantest.UDPEcho(ctx, l.peer.h, l.peer.inner, l.ours.h, l.ours.inner, []byte("charon to ours "+t.Name())); err != nil {
		t.Fatal(err)
	}
	ours = l.stack.SAs()
	if in, out := ours.IPsec[0].In.Packets, ours.IPsec[0].Out.Packets; in < 2 || out < 2 {
		t.Errorf("our counters: %d in, %d out; want both echoes in each direction", in, out)
	}

	// A Delete from one side removes the SAs on both: from the side that
	// did not initiate, so that both directions of Delete are covered.
	if weInitiate {
		if err := l.charon.Terminate(ctx, swantest.ConnName); err != nil {
			t.Fatal(err)
		}
	} else if err := l.stack.Terminate(ctx, "lab"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "our SAs to go", func() bool {
		st := l.stack.SAs()
		return len(st.ISAKMP) == 0 && len(st.IPsec) == 0
	})
	for {
		sas, err := l.charon.ListSAs(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(sas) == 0 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("charon still lists %+v after the Delete", sas)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

package strongswan_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ipseclab/ipseclab/events"
	"github.com/ipseclab/ipseclab/strongswan"
	"github.com/ipseclab/ipseclab/strongswan/swantest"
)

// waitLogged waits for a StrongSwanLog event of the node and connection that
// contains substr: the log tail delivers lines a moment after charon writes.
func waitLogged(ctx context.Context, t *testing.T, bus *events.Bus, node, conn, substr string) {
	t.Helper()
	for {
		for _, e := range bus.Since(0) {
			if e.Kind == events.StrongSwanLog && e.Node == node && e.Conn == conn && strings.Contains(e.Message, substr) {
				return
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no StrongSwanLog event from %s for %s says %q", node, conn, substr)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func TestCharonToCharon(t *testing.T) {
	for _, tc := range []struct {
		name        string
		cfg         swantest.PairConfig
		mode        string // what charon logs when it starts phase 1
		ike, esp    string // the proposals as ListSAs renders them
		deleteFromB bool   // the responder deletes, rather than the initiator
	}{
		{
			name: "MainModePSK_MODP2048",
			cfg:  swantest.PairConfig{IKEProposal: "aes128-sha256-modp2048", ESPProposal: "aes128gcm16-modp2048"},
			mode: "initiating Main Mode",
			ike:  "AES_CBC-128/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_2048",
			esp:  "AES_GCM_16-128/MODP_2048",
		},
		{
			name: "AggressiveModePSK_ECP256",
			// A PSK with quotes, a backslash and spaces checks swanctl.conf's quoting.
			cfg:         swantest.PairConfig{IKEProposal: "aes256-sha256-ecp256", ESPProposal: "aes128-sha1-ecp256", Aggressive: true, PSK: `a "quoted" \ secret`},
			mode:        "initiating Aggressive Mode",
			ike:         "AES_CBC-256/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/ECP_256",
			esp:         "AES_CBC-128/HMAC_SHA1_96/ECP_256",
			deleteFromB: true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bus := events.NewBus("interop")
			tc.cfg.OnLogA = strongswan.PublishLog(events.Publisher{Bus: bus, Node: "gwA"}, 1)
			p := swantest.StartPair(t, tc.cfg)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()

			if err := p.A.Charon.Initiate(ctx, swantest.ConnName, swantest.ChildName); err != nil {
				t.Fatal(err)
			}
			waitLogged(ctx, t, bus, "gwA", swantest.ConnName, tc.mode)
			a := establishedSA(ctx, t, p.A.Charon)
			b := establishedSA(ctx, t, p.B.Charon)

			// Phase 1: one ISAKMP SA, the same cookies on both sides.
			if a.Version != 1 || b.Version != 1 {
				t.Errorf("IKE versions %d/%d, want 1", a.Version, b.Version)
			}
			if !a.Initiator || b.Initiator {
				t.Errorf("initiator flags A=%v B=%v, want A only", a.Initiator, b.Initiator)
			}
			if a.ICookie != b.ICookie || a.RCookie != b.RCookie || a.ICookie == 0 || a.RCookie == 0 {
				t.Errorf("cookies differ: A %016x/%016x, B %016x/%016x", a.ICookie, a.RCookie, b.ICookie, b.RCookie)
			}
			if a.Proposal() != tc.ike || b.Proposal() != tc.ike {
				t.Errorf("IKE proposals A=%s B=%s, want %s", a.Proposal(), b.Proposal(), tc.ike)
			}
			if a.Local != b.Remote || a.Remote != b.Local {
				t.Errorf("endpoints do not mirror: A %v→%v, B %v→%v", a.Local, a.Remote, b.Local, b.Remote)
			}
			// kernel-libipsec forces UDP encapsulation by faking NAT-D: IKE
			// floats to port 4500 although there is no NAT.
			if a.Local.Port() != 4500 || !a.NATAny {
				t.Errorf("A's IKE SA on %v, NAT any=%v: want the float to 4500", a.Local, a.NATAny)
			}

			// Phase 2: one CHILD SA on each side, SPIs crossed.
			if len(a.Children) != 1 || len(b.Children) != 1 {
				t.Fatalf("CHILD SAs: A has %d, B has %d, want 1 each", len(a.Children), len(b.Children))
			}
			ca, cb := a.Children[0], b.Children[0]
			if ca.SPIIn != cb.SPIOut || ca.SPIOut != cb.SPIIn || ca.SPIIn == 0 || ca.SPIOut == 0 {
				t.Errorf("SPIs do not cross: A in %08x out %08x, B in %08x out %08x", ca.SPIIn, ca.SPIOut, cb.SPIIn, cb.SPIOut)
			}
			if ca.Proposal() != tc.esp || cb.Proposal() != tc.esp {
				t.Errorf("ESP proposals A=%s B=%s, want %s", ca.Proposal(), cb.Proposal(), tc.esp)
			}
			if ca.Mode != "TUNNEL" || ca.Protocol != "ESP" || !ca.Encap || ca.State != "INSTALLED" {
				t.Errorf("A's CHILD SA: mode %s protocol %s encap %v state %s", ca.Mode, ca.Protocol, ca.Encap, ca.State)
			}

			// Traffic through the libipsec tunnel, both ways.
			payload := []byte("through the tunnel " + tc.name)
			if err := swantest.UDPEcho(ctx, p.A.Netns, p.A.Inner, p.B.Netns, p.B.Inner, payload); err != nil {
				t.Fatal(err)
			}
			a = establishedSA(ctx, t, p.A.Charon)
			b = establishedSA(ctx, t, p.B.Charon)
			if ca, cb := a.Children[0], b.Children[0]; ca.PacketsOut == 0 || ca.PacketsIn == 0 || cb.PacketsIn != ca.PacketsOut || cb.PacketsOut != ca.PacketsIn {
				t.Errorf("counters: A in %d out %d, B in %d out %d", ca.PacketsIn, ca.PacketsOut, cb.PacketsIn, cb.PacketsOut)
			}

			// Termination from either side removes the SAs on both.
			deleter := p.A.Charon
			if tc.deleteFromB {
				deleter = p.B.Charon
			}
			if err := deleter.Terminate(ctx, swantest.ConnName); err != nil {
				t.Fatal(err)
			}
			waitNoSAs(ctx, t, "A", p.A.Charon)
			waitNoSAs(ctx, t, "B", p.B.Charon)
		})
	}
}

// establishedSA waits until charon lists exactly one ESTABLISHED IKE SA with
// an INSTALLED CHILD SA (the responder installs it on Quick Mode's third
// message, a moment after the initiator), and returns it.
func establishedSA(ctx context.Context, t *testing.T, c *strongswan.Charon) strongswan.IKESA {
	t.Helper()
	var last []strongswan.IKESA
	for {
		sas, err := c.ListSAs(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(sas) == 1 && sas[0].State == "ESTABLISHED" && len(sas[0].Children) == 1 && sas[0].Children[0].State == "INSTALLED" {
			return sas[0]
		}
		last = sas
		select {
		case <-ctx.Done():
			t.Fatalf("no established IKE SA with an installed CHILD SA; charon lists %+v", last)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func waitNoSAs(ctx context.Context, t *testing.T, side string, c *strongswan.Charon) {
	t.Helper()
	for {
		sas, err := c.ListSAs(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(sas) == 0 {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s still lists SAs after the Delete: %+v", side, sas)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// TestQuickModeOnExistingISAKMPSA initiates phase 1 alone, then phase 2 over
// it: the CHILD SA must reuse the ISAKMP SA rather than negotiate a new one.
func TestQuickModeOnExistingISAKMPSA(t *testing.T) {
	p := swantest.StartPair(t, swantest.PairConfig{IKEProposal: "aes128-sha256-curve25519", ESPProposal: "aes128gcm16-curve25519"})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.A.Charon.Initiate(ctx, swantest.ConnName, ""); err != nil {
		t.Fatal(err)
	}
	sas, err := p.A.Charon.ListSAs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(sas) != 1 || sas[0].State != "ESTABLISHED" || len(sas[0].Children) != 0 {
		t.Fatalf("after phase 1 alone A lists %+v, want one ESTABLISHED ISAKMP SA without CHILD SAs", sas)
	}
	phase1 := sas[0]
	if err := p.A.Charon.Initiate(ctx, swantest.ConnName, swantest.ChildName); err != nil {
		t.Fatal(err)
	}
	a := establishedSA(ctx, t, p.A.Charon)
	if a.UniqueID != phase1.UniqueID || a.ICookie != phase1.ICookie || a.RCookie != phase1.RCookie {
		t.Errorf("Quick Mode ran under a new ISAKMP SA: %016x/%016x #%d, was %016x/%016x #%d",
			a.ICookie, a.RCookie, a.UniqueID, phase1.ICookie, phase1.RCookie, phase1.UniqueID)
	}
	if got := a.Children[0].Proposal(); got != "AES_GCM_16-128/CURVE_25519" {
		t.Errorf("CHILD SA proposal %s, want PFS with Curve25519", got)
	}
	if err := swantest.UDPEcho(ctx, p.A.Netns, p.A.Inner, p.B.Netns, p.B.Inner, []byte("quick mode only")); err != nil {
		t.Fatal(err)
	}
}

package main

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ipseclab/ipseclab/events"
	"github.com/ipseclab/ipseclab/internal/testenv"
	"github.com/ipseclab/ipseclab/internal/testenv/netenv"
	"github.com/ipseclab/ipseclab/labrun"
)

// TestMismatchesAgainstStrongSwanInALab: a lab whose responder has settings
// of its own (a side's child:), with charon on one side and ipseclab's
// gateway on the other, in both directions. When charon refuses, our gateway
// reports charon's notify with its meaning; when we refuse, we name what
// charon offered against what we have.
func TestMismatchesAgainstStrongSwanInALab(t *testing.T) {
	testenv.NeedRoot(t)
	testenv.NeedCommand(t, "/usr/sbin/charon-systemd")
	netenv.SharedLabs(t)
	for _, tc := range []struct {
		name, side, notify, weSay string
	}{
		{"pfs", "{pfs: none}", "NO-PROPOSAL-CHOSEN", "PFS on the peer's side only: it asks for PFS with modp2048, this side has no PFS configured"},
		{"selectors", "{remote-ts: 10.9.0.0/24}", "INVALID-ID-INFORMATION", "is not within our remote-ts 10.9.0.0/24"},
	} {
		for _, dir := range [][2]string{{"gw", "sw"}, {"sw", "gw"}} {
			t.Run(fmt.Sprintf("%s/%s-to-%s", tc.name, dir[0], dir[1]), func(t *testing.T) {
				initTS, respTS := "10.1.0.0/24", "10.2.0.0/24"
				if dir[0] == "sw" {
					initTS, respTS = respTS, initTS
				}
				// The responder's own remote-ts is its view of the initiator's LAN.
				body := twoSites("gw", "gateway", "sw", "strongswan", fmt.Sprintf(`ipsec:
  mixed:
    initiator: %s
    responder: {node: %s, child: %s}
    auth: {secret: interop-secret}
    ike: {proposals: [aes128-sha256-modp2048]}
    child: {local-ts: %s, remote-ts: %s, esp: [aes128-sha256], pfs: modp2048, start: none}
script:
  - tunnel-up: mixed
  - expect: {event: phase2-failed, node: gw, connection: mixed, within: 10s}
`, dir[0], dir[1], tc.side, initTS, respTS))
				name := fmt.Sprintf("mm%d", os.Getpid()%100000)
				lab := writeLab(t, name, body)
				t.Cleanup(func() { _ = labrun.DestroyLab(name, 10*time.Second) })
				r := run(t, "run", lab, "--json")
				evs := parseJSONLines(t, r.stdout)
				if r.code != 0 {
					t.Fatalf("ipseclab run exited %d:\n%s\n%s", r.code, failedExpectations(evs), r.stderr)
				}
				var failed events.Event
				for _, e := range evs {
					if e.Kind == events.Phase2Failed && e.Node == "gw" {
						failed = e
					}
				}
				t.Logf("gw: %s\n  ↳ %s", failed.Message, failed.Explain)
				switch {
				case dir[0] == "gw" && !strings.Contains(failed.Message, "the responder answered with "+tc.notify):
					t.Errorf("our gateway does not report charon's %s: %s", tc.notify, failed.Message)
				case dir[0] == "gw" && failed.Explain == "":
					t.Errorf("our gateway does not explain charon's %s", tc.notify)
				case dir[0] == "sw" && !strings.Contains(failed.Message+" "+failed.Explain+" "+noProposalSent(evs), tc.weSay):
					t.Errorf("our refusal does not say %q:\n%s\n%s", tc.weSay, failed.Message, failed.Explain)
				}
			})
		}
	}
}

// noProposalSent is the message of our gateway's NO-PROPOSAL-CHOSEN, if it sent one.
func noProposalSent(evs []events.Event) string {
	for _, e := range evs {
		if e.Kind == events.NoProposal && e.Node == "gw" {
			return e.Message
		}
	}
	return ""
}

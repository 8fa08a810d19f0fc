package topology

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

const sidesLab = `name: sides
topology:
  nodes:
    gw-a: {kind: gateway}
    gw-b: {kind: gateway}
  links:
    - endpoints: [gw-a:eth0, gw-b:eth0]
      addresses: [192.0.2.1/24, 192.0.2.2/24]
ipsec:
  vpn:
    initiator: gw-a
    responder: %s
    auth: {secret: s}
    ike: {proposals: [aes128-sha256-modp2048], lifetime: 2h}
    child: {local-ts: 10.1.0.0/24, remote-ts: 10.2.0.0/24, esp: [aes128gcm16], pfs: modp2048, lifetime: 1h}
`

// A side's own settings replace the connection's on that side only, with
// its selectors from its own point of view and pfs: none taking PFS away.
func TestSideSettings(t *testing.T) {
	lab, err := Parse("lab.yaml", []byte(strings.Replace(sidesLab, "%s",
		`{node: gw-b, ike: {proposals: [aes256-sha384-ecp384], lifetime: 30m}, child: {local-ts: 10.2.0.0/25, remote-ts: 10.1.1.0/24, pfs: none, lifetime: 10m, life-bytes: 1mb}}`, 1)))
	if err != nil {
		t.Fatal(err)
	}
	a, b := lab.SidesOf("gw-a")[0], lab.SidesOf("gw-b")[0]
	if got := a.IKEProposals[0].String(); got != "aes128-sha256-modp2048" || a.IKELifetime != 2*time.Hour {
		t.Errorf("the initiator's phase 1 is %s for %v, want the connection's", got, a.IKELifetime)
	}
	if got := a.ChildProposals[0].String(); got != "aes128gcm16-modp2048" || a.ChildLifetime != time.Hour || a.LifeBytes != 0 {
		t.Errorf("the initiator's child is %s for %v/%d, want the connection's", got, a.ChildLifetime, a.LifeBytes)
	}
	if a.LocalTS[0] != netip.MustParsePrefix("10.1.0.0/24") || a.RemoteTS[0] != netip.MustParsePrefix("10.2.0.0/24") {
		t.Errorf("the initiator's selectors are %v === %v", a.LocalTS, a.RemoteTS)
	}
	if got := b.IKEProposals[0].String(); got != "aes256-sha384-ecp384" || b.IKELifetime != 30*time.Minute {
		t.Errorf("the responder's phase 1 is %s for %v, want its own", got, b.IKELifetime)
	}
	if got := b.ChildProposals[0].String(); got != "aes128gcm16" || b.ChildLifetime != 10*time.Minute || b.LifeBytes != 1e6 {
		t.Errorf("the responder's child is %s for %v/%d, want aes128gcm16 (pfs: none) for 10m/1000000", got, b.ChildLifetime, b.LifeBytes)
	}
	if b.LocalTS[0] != netip.MustParsePrefix("10.2.0.0/25") || b.RemoteTS[0] != netip.MustParsePrefix("10.1.1.0/24") {
		t.Errorf("the responder's selectors are %v === %v, want its own", b.LocalTS, b.RemoteTS)
	}
	// The responder expects its initiator where its packets come from.
	if b.RemoteFrom != netip.MustParseAddr("192.0.2.1") {
		t.Errorf("the responder expects its peer at %v, want 192.0.2.1", b.RemoteFrom)
	}

	// Another group for PFS, the connection's ESP list kept.
	lab, err = Parse("lab.yaml", []byte(strings.Replace(sidesLab, "%s", `{node: gw-b, child: {pfs: ecp256}}`, 1)))
	if err != nil {
		t.Fatal(err)
	}
	if got := lab.SidesOf("gw-b")[0].ChildProposals[0].String(); got != "aes128gcm16-ecp256" {
		t.Errorf("pfs: ecp256 on the responder gives %s", got)
	}
}

// Bad side settings are refused where they are written.
func TestSideSettingsErrors(t *testing.T) {
	for _, tc := range []struct{ responder, want string }{
		{`{node: gw-b, ike: {proposals: [aes128-nope-modp2048]}}`, `lab.yaml:12:47: IKE proposal "aes128-nope-modp2048"`},
		{`{node: gw-b, child: {pfs: modp1}}`, `unknown PFS group "modp1"`},
		{`{node: gw-b, child: {remote-ts: [10.1.0.0/24, 10.3.0.0/24]}}`, "one subnet per side"},
		{`{node: gw-b, child: {esp: [aes128gcm16], ah: [sha256]}}`, "give esp or ah, not both"},
		{`{node: gw-b, child: {lifetim: 1h}}`, `unknown field "lifetim"`},
	} {
		_, err := Parse("lab.yaml", []byte(strings.Replace(sidesLab, "%s", tc.responder, 1)))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("responder %s: got %v, want %q", tc.responder, err, tc.want)
		}
	}
}

// A responder expects its initiator where the initiator's IKE packets
// arrive from: behind a NAT, the NAT's outside address.
func TestRemoteFromThroughANAT(t *testing.T) {
	lab, err := Parse("lab.yaml", []byte(`name: behind-nat
topology:
  nodes:
    spoke: {kind: gateway, gateway: 192.168.1.1}
    nat:   {kind: nat, gateway: 198.51.100.1, nat: {outside: eth1}}
    isp:   {kind: router}
    hub:   {kind: gateway, gateway: 203.0.113.1}
  links:
    - endpoints: [spoke:eth0, nat:eth0]
      addresses: [192.168.1.10/24, 192.168.1.1/24]
    - endpoints: [nat:eth1, isp:eth0]
      addresses: [198.51.100.2/24, 198.51.100.1/24]
    - endpoints: [isp:eth1, hub:eth0]
      addresses: [203.0.113.1/24, 203.0.113.2/24]
ipsec:
  vpn:
    initiator: spoke
    responder: hub
    auth: {secret: s}
    child: {local-ts: 10.1.0.0/24, remote-ts: 10.0.0.0/24}
`))
	if err != nil {
		t.Fatal(err)
	}
	if got := lab.SidesOf("hub")[0].RemoteFrom; got != netip.MustParseAddr("198.51.100.2") {
		t.Errorf("the hub expects its spoke at %v, want the NAT's 198.51.100.2", got)
	}
	if got := lab.SidesOf("spoke")[0].RemoteFrom; got.IsValid() {
		t.Errorf("the initiator has an expected remote %v", got)
	}
}

// The daemon's responder expects each peer at the remote address it was
// given, and accepts it from anywhere.
func TestDaemonResponderExpectsItsPeer(t *testing.T) {
	c, err := ParseDaemon("node.yaml", []byte(`node: hub
connections:
  spoke1:
    role: responder
    local: {address: 192.0.2.1}
    remote: {address: 198.51.100.2}
    auth: {secret: one}
    child: {local-ts: 10.0.0.0/24, remote-ts: 10.1.0.0/24}
  spoke2:
    role: responder
    local: {address: 192.0.2.1}
    auth: {secret: two}
    child: {local-ts: 10.0.0.0/24, remote-ts: 10.2.0.0/24}
`))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Connections["spoke1"].Side.RemoteFrom; got != netip.MustParseAddr("198.51.100.2") {
		t.Errorf("spoke1's responder expects its peer at %v", got)
	}
	if got := c.Connections["spoke2"].Side.RemoteFrom; got.IsValid() {
		t.Errorf("spoke2's responder, given no remote address, expects its peer at %v", got)
	}
}

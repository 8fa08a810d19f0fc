package topology

import (
	"errors"
	"strings"
	"testing"
)

const vpncLab = `name: vpnc-client
topology:
  nodes:
    laptop: {kind: vpnc, gateway: 192.168.1.1}
    home:   {kind: nat, gateway: 203.0.113.2}
    gw:     {kind: strongswan}
    server: {kind: host, gateway: 10.1.0.1}
  links:
    - endpoints: [laptop:eth0, home:eth0]
      addresses: [192.168.1.10/24, 192.168.1.1/24]
    - endpoints: [home:eth1, gw:eth0]
      addresses: [203.0.113.1/24, 203.0.113.2/24]
    - endpoints: [gw:eth1, server:eth0]
      addresses: [10.1.0.1/24, 10.1.0.10/24]
ipsec:
  rw:
    initiator: laptop
    responder: gw
    auth: {method: psk, secret: group-secret}
    ike: {mode: aggressive, proposals: [aes128-sha1-modp2048]}
    child: {local-ts: 192.168.1.10/32, remote-ts: 10.1.0.0/24, esp: [aes128-sha1], start: start}
`

func TestVPNCNode(t *testing.T) {
	lab, err := Parse("lab.yaml", []byte(vpncLab))
	if err != nil {
		t.Fatalf("vpnc lab rejected:\n%v", err)
	}
	if k := lab.Topology.Nodes["laptop"].Kind; k != KindVPNC || k.Forwards() || !k.IPsec() {
		t.Errorf("laptop: kind %s, forwards %v, IPsec %v; want a vpnc node that runs IPsec and does not forward", k, k.Forwards(), k.IPsec())
	}

	for _, tc := range []struct {
		name       string
		old, new   string
		atLine     string
		wantSubstr string
	}{
		{"responder", "    initiator: laptop\n    responder: gw", "    initiator: gw\n    responder: laptop", "responder: laptop", "vpnc is a client: it only initiates"},
		{"main mode", "mode: aggressive, ", "", "ike: {proposals", "vpnc speaks Aggressive Mode only"},
		{"transport", "child: {local-ts: 192.168.1.10/32, remote-ts: 10.1.0.0/24, ", "child: {mode: transport, ", "child: {mode: transport", "vpnc tunnels only"},
		{"ah", "esp: [aes128-sha1]", "ah: [sha1]", "ah: [sha1]", "vpnc speaks ESP only"},
		{"ike sha256", "aes128-sha1-modp2048", "aes128-sha256-modp2048", "aes128-sha256-modp2048", "vpnc accepts AES-CBC with SHA-1 and a MODP group"},
		{"ike ecp", "aes128-sha1-modp2048", "aes128-sha1-ecp256", "aes128-sha1-ecp256", "vpnc accepts AES-CBC with SHA-1 and a MODP group"},
		{"esp gcm", "esp: [aes128-sha1]", "esp: [aes128gcm16]", "esp: [aes128gcm16]", "vpnc accepts AES-CBC with SHA-1 (PFS with a MODP group) for ESP"},
		{"pubkey", "auth: {method: psk, secret: group-secret}", "auth: {method: pubkey}", "auth: {method: pubkey}", "group's pre-shared key"},
		// rw's initiator line is the second "initiator: laptop".
		{"two connections", "ipsec:\n", "ipsec:\n  another:\n    initiator: laptop\n    responder: gw\n    auth: {secret: x}\n    ike: {mode: aggressive}\n    child: {local-ts: 192.168.1.10/32, remote-ts: 10.1.0.0/24}\n",
			"", "already initiates another: one vpnc connection per node"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(vpncLab, tc.old) {
				t.Fatalf("the lab has no %q", tc.old)
			}
			src := strings.Replace(vpncLab, tc.old, tc.new, 1)
			_, err := Parse("lab.yaml", []byte(src))
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("want topology.Errors, got %v", err)
			}
			var hit *Error
			for _, e := range errs {
				if strings.Contains(e.Msg, tc.wantSubstr) {
					hit = e
				}
			}
			if hit == nil {
				t.Fatalf("no error contains %q; got:\n%v", tc.wantSubstr, err)
			}
			want := lineOf(src, tc.atLine)
			if tc.atLine == "" {
				want = lineOf(src, "  rw:") + 1
			}
			if hit.Pos.Line != want {
				t.Errorf("error at line %d, want %d (%q): %v", hit.Pos.Line, want, tc.atLine, hit)
			}
			if !strings.HasPrefix(hit.Error(), "lab.yaml:") {
				t.Errorf("error is not in file:line:col form: %q", hit.Error())
			}
		})
	}
}

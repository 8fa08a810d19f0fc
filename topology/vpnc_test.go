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
    gw:     {kind: gateway}
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
    initiator: {node: laptop, id: "keyid:staff", xauth: {user: alice, password: wonderland}}
    responder: {node: gw, xauth: {users: {alice: wonderland}}, pool: 10.9.0.0/24, split-include: [10.1.0.0/24]}
    auth: {method: xauth-psk, secret: group-secret}
    ike: {mode: aggressive, proposals: [aes128-sha1-modp2048]}
    child: {esp: [aes128-sha1]}
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
		{"responder", "    initiator: {node: laptop, id: \"keyid:staff\", xauth: {user: alice, password: wonderland}}\n    responder: {node: gw,",
			"    initiator: {node: gw, xauth: {user: alice, password: wonderland}}\n    responder: {node: laptop,", "responder: {node: laptop", "vpnc is a client: it only initiates"},
		{"main mode", "mode: aggressive, ", "", "ike: {proposals", "vpnc speaks Aggressive Mode only"},
		{"ah", "esp: [aes128-sha1]", "ah: [sha1]", "ah: [sha1]", "vpnc speaks ESP only"},
		{"ike sha256", "aes128-sha1-modp2048", "aes128-sha256-modp2048", "aes128-sha256-modp2048", "vpnc accepts AES-CBC with SHA-1 and a MODP group"},
		{"ike ecp", "aes128-sha1-modp2048", "aes128-sha1-ecp256", "aes128-sha1-ecp256", "vpnc accepts AES-CBC with SHA-1 and a MODP group"},
		{"esp gcm", "esp: [aes128-sha1]", "esp: [aes128gcm16]", "esp: [aes128gcm16]", "vpnc accepts AES-CBC with SHA-1 (PFS with a MODP group) for ESP"},
		{"xauth-pubkey", "auth: {method: xauth-psk, secret: group-secret}", "auth: {method: xauth-pubkey}", "auth: {method: xauth-pubkey}", "xauth-psk"},
		{"no pool", ", pool: 10.9.0.0/24, split-include: [10.1.0.0/24]}", "}", "responder: {node: gw", "vpnc takes its inner address from Mode Config"},
		{"push", "split-include: [10.1.0.0/24]}", "split-include: [10.1.0.0/24], modecfg: push}", "modecfg: push", "vpnc always asks for its address (pull)"},
		{"hybrid ecdsa", "auth: {method: xauth-psk, secret: group-secret}", "auth: {method: hybrid}\n    key-type: ecdsa-p256", "key-type: ecdsa-p256", "hybrid(rsa)"},
		// rw's client line is the second "node: laptop".
		{"two connections", "ipsec:\n", "ipsec:\n  another:\n    initiator: {node: laptop, xauth: {user: alice, password: wonderland}}\n    responder: {node: gw, xauth: {users: {alice: wonderland}}, pool: 10.8.0.0/24}\n    auth: {method: xauth-psk, secret: x}\n    ike: {mode: aggressive, proposals: [aes128-sha1-modp2048]}\n    child: {esp: [aes128-sha1]}\n",
			"", "already a client of another: one vpnc connection per node"},
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

package strongswan

import (
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/ipseclab/ipseclab/node/strongswan/vici"
)

// listSAEvent is modelled on the list-sa event charon 5.9.8 sent for the
// exchange recorded in testdata (swanctl --list-sas --raw showed the tree),
// with traffic counters added.
func listSAEvent() *vici.Message {
	child := vici.NewMessage().
		Set("name", "c1").Set("uniqueid", "1").Set("reqid", "1").Set("state", "INSTALLED").
		Set("mode", "TUNNEL").Set("protocol", "ESP").Set("encap", "yes").
		Set("spi-in", "1330b617").Set("spi-out", "fed07717").
		Set("encr-alg", "AES_CBC").Set("encr-keysize", "128").Set("integ-alg", "HMAC_SHA1_96").
		Set("dh-group", "MODP_2048").
		Set("bytes-in", "84").Set("packets-in", "1").Set("bytes-out", "168").Set("packets-out", "2").
		Set("rekey-time", "3321").Set("life-time", "3959").Set("install-time", "1").
		SetList("local-ts", "10.1.0.1/32").SetList("remote-ts", "10.2.0.1/32")
	ike := vici.NewMessage().
		Set("uniqueid", "1").Set("version", "1").Set("state", "ESTABLISHED").
		Set("local-host", "192.0.2.1").Set("local-port", "4500").Set("local-id", "192.0.2.1").
		Set("remote-host", "192.0.2.2").Set("remote-port", "4500").Set("remote-id", "192.0.2.2").
		Set("initiator", "yes").Set("initiator-spi", "d1aab65ce0ed86e2").Set("responder-spi", "bb225724f11329f8").
		Set("nat-remote", "yes").Set("nat-any", "yes").
		Set("encr-alg", "AES_CBC").Set("encr-keysize", "128").Set("integ-alg", "HMAC_SHA2_256_128").
		Set("prf-alg", "PRF_HMAC_SHA2_256").Set("dh-group", "MODP_2048").
		Set("established", "1").Set("rekey-time", "13875").
		SetSection("child-sas", vici.NewMessage().SetSection("c1-1", child))
	return vici.NewMessage().SetSection("t1", ike)
}

func TestParseIKESA(t *testing.T) {
	ev := listSAEvent()
	e := ev.Sections()[0]
	got, err := parseIKESA(e.Name, e.Section)
	if err != nil {
		t.Fatal(err)
	}
	want := IKESA{
		Name: "t1", UniqueID: 1, Version: 1, State: "ESTABLISHED",
		Local:   netip.MustParseAddrPort("192.0.2.1:4500"),
		Remote:  netip.MustParseAddrPort("192.0.2.2:4500"),
		LocalID: "192.0.2.1", RemoteID: "192.0.2.2",
		Initiator: true, ICookie: 0xd1aab65ce0ed86e2, RCookie: 0xbb225724f11329f8,
		NATRemote: true, NATAny: true,
		EncrAlg: "AES_CBC", EncrKey: 128, IntegAlg: "HMAC_SHA2_256_128", PRFAlg: "PRF_HMAC_SHA2_256", DHGroup: "MODP_2048",
		Established: time.Second, RekeyIn: 13875 * time.Second,
		Children: []ChildSA{{
			Name: "c1", UniqueID: 1, ReqID: 1, State: "INSTALLED", Mode: "TUNNEL", Protocol: "ESP", Encap: true,
			SPIIn: 0x1330b617, SPIOut: 0xfed07717,
			EncrAlg: "AES_CBC", EncrKey: 128, IntegAlg: "HMAC_SHA1_96", DHGroup: "MODP_2048",
			BytesIn: 84, PacketsIn: 1, BytesOut: 168, PacketsOut: 2,
			RekeyIn: 3321 * time.Second, ExpiresIn: 3959 * time.Second, Installed: time.Second,
			LocalTS: []string{"10.1.0.1/32"}, RemoteTS: []string{"10.2.0.1/32"},
		}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("parsed\n%+v\nwant\n%+v", got, want)
	}
	if p := got.Proposal(); p != "AES_CBC-128/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_2048" {
		t.Errorf("IKE proposal %s", p)
	}
	if p := got.Children[0].Proposal(); p != "AES_CBC-128/HMAC_SHA1_96/MODP_2048" {
		t.Errorf("ESP proposal %s", p)
	}
}

func TestParseIKESARejectsMalformedValues(t *testing.T) {
	for key, bad := range map[string]string{
		"uniqueid":      "one",
		"local-host":    "not-an-address",
		"initiator-spi": "xyz",
		"rekey-time":    "-1",
	} {
		m := listSAEvent().Sections()[0].Section
		for i := range m.Elements {
			if m.Elements[i].Name == key {
				m.Elements[i].Value = bad
			}
		}
		if _, err := parseIKESA("t1", m); err == nil {
			t.Errorf("%s=%q parsed without error", key, bad)
		}
	}
}

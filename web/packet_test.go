package web

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ipseclab/ipseclab/events"
)

// The recordings in testdata are real runs of shipped labs, recorded with
// `ipseclab run LAB --json --keys`.

func readTestRecording(t testing.TB, name string) []Record {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := ReadRecording(f, name)
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

func getJSON(t *testing.T, url string, v any) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode
}

// find returns the first event of the recording that matches.
func find(t *testing.T, recs []Record, what string, match func(*events.Event) bool) *events.Event {
	t.Helper()
	for i := range recs {
		if match(&recs[i].Event) {
			return &recs[i].Event
		}
	}
	t.Fatalf("no %s in the recording", what)
	return nil
}

func ikeMsg(node, exchange string, num int, dir events.Direction) func(*events.Event) bool {
	return func(e *events.Event) bool {
		return e.Kind == events.IKEMessage && e.Node == node && e.IKE != nil && e.IKE.Exchange == exchange && e.IKE.MsgNum == num && e.IKE.Dir == dir
	}
}

// layer finds a layer by the start of its name, depth first.
func layer(ls []*Layer, name string) *Layer {
	for _, l := range ls {
		if strings.HasPrefix(l.Name, name) {
			return l
		}
		if c := layer(l.Children, name); c != nil {
			return c
		}
	}
	return nil
}

func field(l *Layer, name string) string {
	if l == nil {
		return ""
	}
	for _, f := range l.Fields {
		if f[0] == name {
			return f[1]
		}
	}
	return ""
}

// TestPacketMainMode5Decrypted: the inspector's Main Mode 5/6 of a real
// negotiation shows the ID and HASH payloads that travelled encrypted,
// decrypted, both as sent and as received; with ?keys=1 the ISAKMP SA's
// keys come too.
func TestPacketMainMode5Decrypted(t *testing.T) {
	recs := readTestRecording(t, "site-to-site.jsonl")
	s, ts := newTestServer(t, Config{Mode: Replay})
	s.Load(recs)
	for _, m := range []func(*events.Event) bool{ikeMsg("gw-a", "main", 5, events.Sent), ikeMsg("gw-b", "main", 5, events.Received)} {
		e := find(t, recs, "Main Mode 5/6", m)
		var p Packet
		if code := getJSON(t, ts.URL+"/api/packet/"+itoa(e.Seq)+"?keys=1", &p); code != 200 {
			t.Fatalf("status %d", code)
		}
		if p.Kind != "ike" || p.Title != "Main Mode 5/6" || p.Seq != e.Seq || p.Explain == "" {
			t.Fatalf("packet %d: %+v", e.Seq, p)
		}
		hdr := layer(p.Layers, "ISAKMP header")
		if !strings.Contains(field(hdr, "Flags"), "Encryption") || !strings.Contains(field(hdr, "Exchange type"), "Main Mode") {
			t.Errorf("header %v", hdr.Fields)
		}
		if id := layer(p.Layers, "Identification"); field(id, "Identification") != "198.51.100.2" || !strings.HasPrefix(field(id, "ID type"), "IPV4_ADDR") {
			t.Errorf("ID payload %+v", id)
		}
		if h := layer(p.Layers, "Hash"); len(field(h, "Hash data")) != 2+64 || field(h, "Length") != "32 bytes" {
			t.Errorf("HASH payload %+v", h)
		}
		if p.Keys["SKEYID_e"] == "" || p.Keys["Ka"] == "" {
			t.Errorf("keys %v", p.Keys)
		}
		// Without ?keys=1, no keys.
		var q Packet
		getJSON(t, ts.URL+"/api/packet/"+itoa(e.Seq), &q)
		if q.Keys != nil {
			t.Errorf("keys without ?keys=1: %v", q.Keys)
		}
	}
}

// TestPacketMainMode1Proposals: the SA payload of Main Mode 1/6 down to the
// attributes of each transform, named; vendor IDs named.
func TestPacketMainMode1Proposals(t *testing.T) {
	recs := readTestRecording(t, "site-to-site.jsonl")
	e := find(t, recs, "Main Mode 1/6", ikeMsg("gw-a", "main", 1, events.Sent))
	p, err := DecodePacket(e)
	if err != nil {
		t.Fatal(err)
	}
	tr := layer(p.Layers, "Transform #1")
	if tr == nil || !strings.Contains(tr.Name, "KEY_IKE") {
		t.Fatalf("no transform in %s", dump(p))
	}
	for _, a := range []string{"Encryption-Algorithm", "Hash-Algorithm", "Authentication-Method", "Group-Description", "Life-Type"} {
		if field(tr, a) == "" {
			t.Errorf("transform has no %s: %v", a, tr.Fields)
		}
	}
	if field(tr, "Authentication-Method") != "PSK" {
		t.Errorf("auth method %q", field(tr, "Authentication-Method"))
	}
	if layer(p.Layers, "Vendor ID: Dead Peer Detection") == nil {
		t.Errorf("DPD vendor ID not named: %s", dump(p))
	}
}

// TestPacketQuickMode: Quick Mode 1/3's SA with the ESP proposal, its
// nonce and the two IDs (the traffic selectors).
func TestPacketQuickMode(t *testing.T) {
	recs := readTestRecording(t, "site-to-site.jsonl")
	e := find(t, recs, "Quick Mode 1/3", ikeMsg("gw-b", "quick", 1, events.Received))
	p, err := DecodePacket(e)
	if err != nil {
		t.Fatal(err)
	}
	if p.Title != "Quick Mode 1/3" {
		t.Errorf("title %q", p.Title)
	}
	if pr := layer(p.Layers, "Proposal #1"); pr == nil || !strings.Contains(pr.Name, "ESP") || field(pr, "SPI") == "" {
		t.Errorf("proposal %+v", pr)
	}
	if tr := layer(p.Layers, "Transform #1"); field(tr, "Encapsulation-Mode") != "Tunnel" {
		t.Errorf("transform %+v", tr)
	}
	var ids []string
	for _, l := range layer(p.Layers, "ISAKMP header").Children {
		if strings.HasPrefix(l.Name, "Identification") {
			ids = append(ids, field(l, "Identification"))
		}
	}
	if strings.Join(ids, " ") != "10.1.0.0/24 10.2.0.0/24" {
		t.Errorf("IDs %q", ids)
	}
	if layer(p.Layers, "Nonce") == nil || layer(p.Layers, "Hash") == nil {
		t.Errorf("no nonce or hash: %s", dump(p))
	}
}

// TestPacketESP: an ESP packet from outer IP to the decrypted inner ICMP,
// with the ICV of an inbound one and the SA's keys on request.
func TestPacketESP(t *testing.T) {
	recs := readTestRecording(t, "site-to-site.jsonl")
	s, ts := newTestServer(t, Config{Mode: Replay})
	s.Load(recs)
	e := find(t, recs, "inbound ESP packet", func(e *events.Event) bool {
		return e.Kind == events.ESPPacket && e.SA != nil && e.SA.SPIIn != ""
	})
	var p Packet
	getJSON(t, ts.URL+"/api/packet/"+itoa(e.Seq)+"?keys=1", &p)
	if p.Kind != "esp" || !strings.HasPrefix(p.Title, "ESP SPI "+e.Packet.SPI) {
		t.Fatalf("%+v", p)
	}
	var names []string
	for _, l := range p.Layers {
		names = append(names, l.Name)
	}
	if got := strings.Join(names, " | "); got != "IPv4 (outer) | ESP (RFC 4303) | IPv4 (inner, decrypted) | ICMP" {
		t.Fatalf("layers %s", got)
	}
	esp := layer(p.Layers, "ESP")
	if field(esp, "SPI") != "0x"+e.Packet.SPI || len(field(esp, "IV")) != 2+32 || len(field(esp, "ICV")) != 2+32 {
		t.Errorf("ESP %v", esp.Fields)
	}
	if field(layer(p.Layers, "IPv4 (outer)"), "Protocol") != "ESP (50)" {
		t.Errorf("outer %v", p.Layers[0].Fields)
	}
	if in := layer(p.Layers, "IPv4 (inner"); field(in, "Source") != "10.1.0.10" && field(in, "Source") != "10.2.0.10" {
		t.Errorf("inner %v", in.Fields)
	}
	if p.Keys["encryption key"] == "" || p.Keys["integrity key"] == "" {
		t.Errorf("keys %v", p.Keys)
	}
}

// TestPacketOfAnEventWithout: 404 with a JSON error for an event without a
// packet, or no such event.
func TestPacketOfAnEventWithout(t *testing.T) {
	recs := readTestRecording(t, "site-to-site.jsonl")
	s, ts := newTestServer(t, Config{Mode: Replay})
	s.Load(recs)
	for _, seq := range []string{"1", "99999"} {
		var e struct{ Error string }
		if code := getJSON(t, ts.URL+"/api/packet/"+seq, &e); code != 404 || e.Error == "" {
			t.Errorf("packet %s: %d %q", seq, code, e.Error)
		}
	}
}

// TestPacketOfAForeignMessage: bytes the decoder refuses still give the
// header and the reason, not an error page or a panic.
func TestPacketOfAForeignMessage(t *testing.T) {
	e := &events.Event{Seq: 3, Kind: events.IKEMessage, IKE: &events.IKEInfo{Exchange: "main", MsgNum: 1, MsgTotal: 6, Plain: make([]byte, 40)}}
	e.IKE.Plain[17] = 0x10 // version 1.0, but a length that does not match
	p, err := DecodePacket(e)
	if err != nil {
		t.Fatal(err)
	}
	if field(layer(p.Layers, "ISAKMP header"), "Error") == "" {
		t.Errorf("no error shown: %s", dump(p))
	}
}

func dump(p *Packet) string {
	b, _ := json.MarshalIndent(p, "", " ")
	return string(b)
}

func itoa(n uint64) string { b, _ := json.Marshal(n); return string(b) }

// TestPacketRemoteAccess: XAUTH's user name and password, and Mode
// Config's address, in the Attribute payloads of the Transaction exchange.
func TestPacketRemoteAccess(t *testing.T) {
	recs := readTestRecording(t, "road-warriors.jsonl")
	e := find(t, recs, "XAUTH 2/4", func(e *events.Event) bool {
		return e.Kind == events.IKEMessage && e.IKE.Exchange == "xauth" && e.IKE.MsgNum == 2 && e.IKE.Dir == events.Sent
	})
	p, err := DecodePacket(e)
	if err != nil {
		t.Fatal(err)
	}
	attrs := layer(p.Layers, "Attributes: ISAKMP_CFG_REPLY")
	if attrs == nil || !strings.HasPrefix(field(attrs, "XAUTH_USER_NAME"), `"`) || field(attrs, "XAUTH_USER_PASSWORD") == "" {
		t.Fatalf("XAUTH reply: %s", dump(p))
	}
	e = find(t, recs, "Mode Config 2/2", func(e *events.Event) bool {
		return e.Kind == events.IKEMessage && e.IKE.Exchange == "modecfg" && e.IKE.MsgNum == 2 && e.IKE.Dir == events.Sent
	})
	if p, err = DecodePacket(e); err != nil {
		t.Fatal(err)
	}
	if a := field(layer(p.Layers, "Attributes"), "INTERNAL_IP4_ADDRESS"); !strings.Contains(a, ".") {
		t.Fatalf("Mode Config reply: %s", dump(p))
	}
}

// TestPacketNATTraversal: NAT-D payloads in Main Mode 3/6, IKE on 4500
// with its non-ESP marker after the float, and ESP in UDP.
func TestPacketNATTraversal(t *testing.T) {
	recs := readTestRecording(t, "nat-traversal.jsonl")
	e := find(t, recs, "Main Mode 3/6", ikeMsg("laptop", "main", 3, events.Sent))
	p, err := DecodePacket(e)
	if err != nil {
		t.Fatal(err)
	}
	if n := layer(p.Layers, "NAT-D"); n == nil || len(field(n, "Hash of address and port")) < 10 {
		t.Fatalf("NAT-D: %s", dump(p))
	}
	e = find(t, recs, "Main Mode 5/6", ikeMsg("laptop", "main", 5, events.Sent))
	if p, _ = DecodePacket(e); field(layer(p.Layers, "UDP"), "Non-ESP marker") == "" {
		t.Errorf("Main Mode 5/6 after the float: %s", dump(p))
	}
	e = find(t, recs, "ESP in UDP", func(e *events.Event) bool { return e.Kind == events.ESPPacket && e.SA != nil && e.SA.Encap })
	if p, err = DecodePacket(e); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range p.Layers {
		names = append(names, l.Name)
	}
	if got := strings.Join(names, " | "); !strings.HasPrefix(got, "IPv4 (outer) | UDP (encapsulation, RFC 3948) | ESP (RFC 4303) | IPv4 (inner, decrypted)") {
		t.Fatalf("layers %s", got)
	}
	if u := layer(p.Layers, "UDP (encapsulation"); field(u, "Source port") != "4500" {
		t.Errorf("UDP %v", u.Fields)
	}
}

// TestPacketOfARetransmission: a retransmission shows the message it
// repeats.
func TestPacketOfARetransmission(t *testing.T) {
	recs := readTestRecording(t, "site-to-site.jsonl")
	s, ts := newTestServer(t, Config{Mode: Live})
	for i := range recs {
		s.AddLine(recs[i].Event.Seq, recs[i].Line)
	}
	mm1 := find(t, recs, "Main Mode 1/6", ikeMsg("gw-a", "main", 1, events.Sent))
	re := &events.Event{Seq: recs[len(recs)-1].Event.Seq + 1, Node: "gw-a", Kind: events.IKERetransmit, Step: events.StepPhase1,
		IKE: &events.IKEInfo{Exchange: "main", MsgNum: 1, MsgTotal: 6, Dir: events.Sent, ICookie: mm1.IKE.ICookie, Size: mm1.IKE.Size}}
	if err := s.Add(re); err != nil {
		t.Fatal(err)
	}
	var p Packet
	if code := getJSON(t, ts.URL+"/api/packet/"+itoa(re.Seq), &p); code != 200 {
		t.Fatalf("status %d", code)
	}
	if p.Title != "Main Mode 1/6 (retransmitted)" || layer(p.Layers, "Transform #1") == nil {
		t.Fatalf("%s", dump(&p))
	}
}

// TestPacketOutboundESPICV: an outbound packet's ICV is computed after its
// event, which carries the ICV's length instead; the inspector shows that
// length and counts it out of the encrypted payload.
func TestPacketOutboundESPICV(t *testing.T) {
	recs := readTestRecording(t, "site-to-site.jsonl")
	e := *find(t, recs, "outbound ESP packet", func(e *events.Event) bool {
		return e.Kind == events.ESPPacket && e.SA != nil && e.SA.SPIOut != "" && e.SA.SPIIn == "" && len(e.Packet.ICV) == 0
	})
	pk := *e.Packet
	pk.ICVLen = 16
	e.Packet = &pk
	p, err := DecodePacket(&e)
	if err != nil {
		t.Fatal(err)
	}
	esp := layer(p.Layers, "ESP")
	if got := field(esp, "ICV"); got != "16 bytes (computed as the packet left)" {
		t.Errorf("ICV %q", got)
	}
	want := fmt.Sprintf("%d bytes, with padding, pad length and next header", pk.Len-len(pk.Wire)-16)
	if got := field(esp, "Encrypted payload"); got != want {
		t.Errorf("encrypted payload %q, want %q", got, want)
	}
}

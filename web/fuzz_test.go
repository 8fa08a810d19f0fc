package web

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/ipseclab/ipseclab/events"
)

// FuzzDecodePacket: the packet tree builder reads bytes from events, which
// a recording can hold anything in: it never panics, and always gives a
// tree that marshals.
func FuzzDecodePacket(f *testing.F) {
	if b, err := os.ReadFile(filepath.Join("testdata", "site-to-site.jsonl")); err == nil {
		for _, line := range bytes.Split(b, []byte("\n")) {
			var e events.Event
			if json.Unmarshal(line, &e) != nil {
				continue
			}
			switch {
			case e.IKE != nil && len(e.IKE.Plain) > 0:
				f.Add(uint8(0), e.IKE.Plain, []byte(nil), []byte(nil), false)
			case e.Packet != nil:
				f.Add(uint8(1), e.Packet.Wire, e.Packet.Plain, e.Packet.ICV, e.SA != nil && e.SA.Encap)
			}
		}
	}
	f.Add(uint8(2), []byte{0x45, 0, 0, 20}, []byte{0x45}, []byte{}, true)
	f.Fuzz(func(t *testing.T, which uint8, a, b, c []byte, encap bool) {
		e := &events.Event{Seq: 1, Kind: events.IKEMessage}
		switch which % 3 {
		case 0:
			e.IKE = &events.IKEInfo{Exchange: "main", MsgNum: 5, MsgTotal: 6, Plain: a, Encrypted: encap, Local: "1.2.3.4:4500", Remote: "5.6.7.8:4500"}
		case 1:
			e.Kind = events.ESPPacket
			e.SA = &events.SAInfo{Type: "esp", Encap: encap, Proposal: "aes128-sha256", SPIIn: "01020304"}
			e.Packet = &events.PacketInfo{Wire: a, Plain: b, ICV: c, Len: len(a) + len(b), Outer: "UDP 4500/4500 ESP"}
		default:
			e.Kind = events.ESPPacket
			e.SA = &events.SAInfo{Type: "ah", Mode: "transport"}
			e.Packet = &events.PacketInfo{Wire: a, Plain: b, Outer: "AH x → y"}
		}
		p, err := DecodePacket(e)
		if err != nil {
			return
		}
		if _, err := json.Marshal(p); err != nil {
			t.Fatal(err)
		}
	})
}

// FuzzReadRecording: the JSON lines reader of `replay` never panics; what
// it accepts is in increasing sequence order, and each line it keeps
// decodes as an event.
func FuzzReadRecording(f *testing.F) {
	if b, err := os.ReadFile(filepath.Join("testdata", "site-to-site.jsonl")); err == nil {
		ls := bytes.SplitAfter(b, []byte("\n"))
		f.Add(bytes.Join(ls[:min(5, len(ls))], nil))
	}
	f.Add([]byte(`{"seq":1,"time":"2026-01-01T00:00:00Z","kind":"x","step":0,"message":""}` + "\n"))
	f.Add([]byte("{\"seq\":2}\n[]\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		recs, err := ReadRecording(bytes.NewReader(in), "f.jsonl")
		if err != nil {
			return
		}
		var last uint64
		for _, r := range recs {
			if r.Event.Seq <= last {
				t.Fatalf("seq %d after %d accepted", r.Event.Seq, last)
			}
			last = r.Event.Seq
			var e events.Event
			if err := json.Unmarshal(r.Line, &e); err != nil {
				t.Fatalf("kept a line that does not decode: %v", err)
			}
		}
		s := NewServer(Config{Mode: Replay})
		s.Load(recs)
		_ = s.LabView()
	})
}

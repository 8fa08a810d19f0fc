package vici

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

// readmeExample is the encoding example of strongSwan's vici README:
//
//	key1 = value1
//	section1 = {
//		sub-section = {
//			key2 = value2
//		}
//		list1 = [ item1, item2 ]
//	}
var readmeExample = []byte{
	3, 4, 'k', 'e', 'y', '1', 0, 6, 'v', 'a', 'l', 'u', 'e', '1',
	1, 8, 's', 'e', 'c', 't', 'i', 'o', 'n', '1',
	1, 11, 's', 'u', 'b', '-', 's', 'e', 'c', 't', 'i', 'o', 'n',
	3, 4, 'k', 'e', 'y', '2', 0, 6, 'v', 'a', 'l', 'u', 'e', '2',
	2,
	4, 5, 'l', 'i', 's', 't', '1',
	5, 0, 5, 'i', 't', 'e', 'm', '1',
	5, 0, 5, 'i', 't', 'e', 'm', '2',
	6,
	2,
}

func readmeMessage() *Message {
	return NewMessage().
		Set("key1", "value1").
		SetSection("section1", NewMessage().
			SetSection("sub-section", NewMessage().Set("key2", "value2")).
			SetList("list1", "item1", "item2"))
}

func TestEncodeREADMEExample(t *testing.T) {
	got, err := readmeMessage().MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, readmeExample) {
		t.Fatalf("encoding differs from the README example:\n got %v\nwant %v", got, readmeExample)
	}
}

func TestParseREADMEExample(t *testing.T) {
	m, err := ParseMessage(readmeExample)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(m, readmeMessage()) {
		t.Fatalf("parsed %s, want %s", m, readmeMessage())
	}
	if got := m.Section("section1").Section("sub-section").Value("key2"); got != "value2" {
		t.Errorf("key2 = %q", got)
	}
	if got := m.Section("section1").List("list1"); !reflect.DeepEqual(got, []string{"item1", "item2"}) {
		t.Errorf("list1 = %q", got)
	}
	if m.Section("missing").Value("x") != "" || m.List("key1") != nil {
		t.Error("lookups of absent or differently-typed elements must come back empty")
	}
}

func TestParseRejectsMalformed(t *testing.T) {
	for name, b := range map[string][]byte{
		"unbalanced section":    {1, 1, 's'},
		"stray section end":     {2},
		"list not closed":       {4, 1, 'l', 5, 0, 0},
		"item outside list":     {5, 0, 0},
		"key inside list":       {4, 1, 'l', 3, 1, 'k', 0, 0, 6},
		"stray list end":        {6},
		"truncated value":       {3, 1, 'k', 0, 5, 'a'},
		"truncated name":        {3, 9, 'k'},
		"unknown element":       {9},
		"missing value length":  {3, 1, 'k', 0},
		"sections nested deep":  bytes.Repeat([]byte{1, 1, 's'}, maxDepth+2),
		"nested list in a list": {4, 1, 'l', 4, 1, 'm', 6, 6},
	} {
		if _, err := ParseMessage(b); err == nil {
			t.Errorf("%s: parsed without error", name)
		}
	}
}

func TestPacketRoundTrip(t *testing.T) {
	for _, p := range []*Packet{
		{Type: pktCmdRequest, Name: "list-sas", Message: NewMessage().Set("noblock", "yes")},
		{Type: pktCmdResponse, Message: readmeMessage()},
		{Type: pktEventRegister, Name: "list-sa"},
		{Type: pktEventConfirm},
		{Type: pktEvent, Name: "log", Message: NewMessage().Set("msg", "hello")},
	} {
		b, err := p.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		q, err := ParsePacket(b)
		if err != nil {
			t.Fatalf("%+v: %v", p, err)
		}
		if q.Type != p.Type || q.Name != p.Name || (p.Message != nil && !reflect.DeepEqual(q.Message, p.Message)) {
			t.Errorf("round trip of %+v gave %+v", p, q)
		}
	}
	for name, b := range map[string][]byte{
		"empty":              {},
		"unknown type":       {8},
		"name truncated":     {pktCmdRequest, 5, 'a'},
		"confirm with bytes": {pktEventConfirm, 1},
	} {
		if _, err := ParsePacket(b); err == nil {
			t.Errorf("%s: parsed without error", name)
		}
	}
}

// fakeCharon answers one streamed command the way charon's vici plugin does:
// it confirms the registration, streams events, then responds.
func fakeCharon(t *testing.T, ln net.Listener) {
	conn, err := ln.Accept()
	if err != nil {
		return
	}
	defer conn.Close()
	read := func() *Packet {
		var hdr [4]byte
		if _, err := io.ReadFull(conn, hdr[:]); err != nil {
			return nil
		}
		seg := make([]byte, binary.BigEndian.Uint32(hdr[:]))
		if _, err := io.ReadFull(conn, seg); err != nil {
			return nil
		}
		p, err := ParsePacket(seg)
		if err != nil {
			t.Errorf("fake charon: %v", err)
			return nil
		}
		return p
	}
	write := func(p *Packet) {
		b, _ := p.MarshalBinary()
		conn.Write(binary.BigEndian.AppendUint32(nil, uint32(len(b))))
		conn.Write(b)
	}
	for {
		p := read()
		if p == nil {
			return
		}
		switch p.Type {
		case pktEventRegister, pktEventUnregister:
			if p.Name != "list-sa" {
				write(&Packet{Type: pktEventUnknown})
				continue
			}
			write(&Packet{Type: pktEventConfirm})
		case pktCmdRequest:
			if p.Name != "list-sas" {
				write(&Packet{Type: pktCmdUnknown})
				continue
			}
			// An unrelated event first, as charon may interleave them.
			write(&Packet{Type: pktEvent, Name: "log", Message: NewMessage().Set("msg", "x")})
			for _, n := range []string{"a", "b"} {
				write(&Packet{Type: pktEvent, Name: "list-sa", Message: NewMessage().SetSection(n, NewMessage().Set("state", "ESTABLISHED"))})
			}
			write(&Packet{Type: pktCmdResponse, Message: NewMessage()})
		}
	}
}

func TestStreamedCall(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "v.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go fakeCharon(t, ln)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := Dial(ctx, sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var names []string
	if _, err := c.StreamedCall(ctx, "list-sas", "list-sa", nil, func(m *Message) {
		for _, s := range m.Sections() {
			names = append(names, s.Name+":"+s.Section.Value("state"))
		}
	}); err != nil {
		t.Fatal(err)
	}
	if want := []string{"a:ESTABLISHED", "b:ESTABLISHED"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("streamed %q, want %q", names, want)
	}
	if _, err := c.Call(ctx, "no-such-command", nil); err == nil {
		t.Fatal("an unknown command must be an error")
	}
	if _, err := c.Call(ctx, "list-sas", nil); err == nil {
		t.Fatal("a connection must refuse calls after a failed one")
	}
}

func FuzzParsePacket(f *testing.F) {
	f.Add(append([]byte{pktCmdResponse}, readmeExample...))
	f.Add([]byte{pktEvent, 7, 'l', 'i', 's', 't', '-', 's', 'a', 1, 1, 'x', 3, 1, 'k', 0, 1, 'v', 2})
	f.Add([]byte{pktEventConfirm})
	f.Add([]byte{pktCmdRequest, 4, 'l', 'i', 's', 't', 4, 1, 'l', 5, 0, 1, 'a', 6})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParsePacket(b)
		if err != nil {
			return
		}
		// What parses must re-encode to the same bytes: the format has no
		// redundancy, so any difference would be a decoding bug.
		out, err := p.MarshalBinary()
		if err != nil {
			// Names of length 0 are legal on the wire but not encodable.
			return
		}
		if !bytes.Equal(out, b) {
			t.Fatalf("re-encoding differs:\n in %x\nout %x", b, out)
		}
	})
}

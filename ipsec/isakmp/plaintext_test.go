package isakmp

import (
	"bytes"
	"crypto/aes"
	"strings"
	"testing"
)

// TestPlaintext: a message reads the same decrypted on both sides: the
// sender's Plaintext (what it encoded before encrypting) equals the
// receiver's (what it decrypted, without the padding), decodes again with
// the E flag cleared, and an encrypted message not decrypted has none.
func TestPlaintext(t *testing.T) {
	block, _ := aes.NewCipher(bytes.Repeat([]byte{7}, 16))
	iv := bytes.Repeat([]byte{3}, 16)
	sa := samplePayloads()[1]
	m := &Message{
		Header:   Header{InitiatorCookie: Cookie{1}, ResponderCookie: Cookie{2}, Exchange: ExchangeQuickMode, MessageID: 0xdeadbeef},
		Payloads: []Payload{&Hash{Data: bytes.Repeat([]byte{1}, 20)}, sa, &Nonce{Data: []byte("0123456789abcdef0123")}},
	}
	wire, err := m.EncodeEncrypted(block, iv)
	if err != nil {
		t.Fatal(err)
	}
	sent := m.Plaintext()
	got, err := Decode(wire)
	if err != nil {
		t.Fatal(err)
	}
	if got.Plaintext() != nil {
		t.Fatal("an encrypted message has a plaintext before it is decrypted")
	}
	if err := got.Decrypt(block, iv); err != nil {
		t.Fatal(err)
	}
	received := got.Plaintext()
	if !bytes.Equal(sent, received) {
		t.Fatalf("sender's plaintext\n%x\nreceiver's\n%x", sent, received)
	}
	again, err := Decode(received)
	if err != nil {
		t.Fatal(err)
	}
	if again.Header.Flags&FlagEncryption != 0 || again.Header.MessageID != 0xdeadbeef || strings.Join(again.PayloadNames(), ",") != "HASH,SA,NONCE" {
		t.Fatalf("decoded plaintext: %+v %v", again.Header, again.PayloadNames())
	}

	// A plain message's plaintext is its wire form.
	p := &Message{Header: Header{InitiatorCookie: Cookie{5}, Exchange: ExchangeMainMode}, Payloads: []Payload{sa}}
	b, err := p.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(p.Plaintext(), b) {
		t.Fatal("a plain message's plaintext is not its encoding")
	}
	// A message built and never encoded is encoded for it.
	q := &Message{Header: p.Header, Payloads: []Payload{sa}}
	if !bytes.Equal(q.Plaintext(), b) {
		t.Fatal("a message never encoded")
	}
}

package isakmp

import (
	"crypto/aes"
	"testing"
)

func BenchmarkDecodeAggressiveMode2(b *testing.B) {
	raw := unhex(b, captureAggrM2)
	for b.Loop() {
		if _, err := Decode(raw); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncryptedQuickMode encodes and encrypts a Quick Mode message, then
// decodes and decrypts it, as the two peers of a negotiation do.
func BenchmarkEncryptedQuickMode(b *testing.B) {
	block, _ := aes.NewCipher(make([]byte, 32))
	iv := make([]byte, 16)
	p := samplePayloads()
	m := &Message{Header: Header{Exchange: ExchangeQuickMode, MessageID: 1}, Payloads: []Payload{&Hash{Data: make([]byte, 32)}, p[1], p[18], p[2], p[8], p[9]}}
	for b.Loop() {
		wire, err := m.EncodeEncrypted(block, iv)
		if err != nil {
			b.Fatal(err)
		}
		got, err := Decode(wire)
		if err != nil {
			b.Fatal(err)
		}
		if err := got.Decrypt(block, iv); err != nil {
			b.Fatal(err)
		}
	}
}

package isakmp

import (
	"crypto/cipher"
)

// EncryptCBC encrypts plaintext with block in CBC mode from iv, after padding
// it with zero bytes to a multiple of the block size (none when it already is
// one). RFC 2409 describes a trailing pad-length byte, but interoperating
// implementations, strongSwan among them, neither send nor read one: the
// receiver follows the payload chain and ignores whatever comes after it. The
// last ciphertext block is the IV of the exchange's next message (RFC 2409
// Appendix B).
func EncryptCBC(block cipher.Block, iv, plaintext []byte) ([]byte, error) {
	bs := block.BlockSize()
	if len(iv) != bs {
		return nil, encodeError("IV of %d bytes for a %d-byte block cipher", len(iv), bs)
	}
	n := len(plaintext) + (bs-len(plaintext)%bs)%bs
	out := make([]byte, n)
	copy(out, plaintext)
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(out, out)
	return out, nil
}

// DecryptCBC decrypts ciphertext with block in CBC mode from iv. It fails with
// PAYLOAD-MALFORMED when the ciphertext is empty or not a multiple of the
// block size.
func DecryptCBC(block cipher.Block, iv, ciphertext []byte) ([]byte, error) {
	bs := block.BlockSize()
	if len(iv) != bs {
		return nil, encodeError("IV of %d bytes for a %d-byte block cipher", len(iv), bs)
	}
	if len(ciphertext) == 0 || len(ciphertext)%bs != 0 {
		return nil, malformed(PayloadNone, HeaderLen, "encrypted body of %d bytes is not a positive multiple of the %d-byte block", len(ciphertext), bs)
	}
	out := make([]byte, len(ciphertext))
	cipher.NewCBCDecrypter(block, iv).CryptBlocks(out, ciphertext)
	return out, nil
}

// Decrypt decrypts a received message whose E flag is set and decodes the
// payload chain it holds, ignoring the padding after the last payload. The
// caller verifies the message's HASH before it advances the exchange's IV to
// the last block of Ciphertext (RFC 2409 Appendix B).
//
// A wrong key or IV shows up here as a decoding error, usually
// PAYLOAD-MALFORMED or INVALID-PAYLOAD-TYPE.
func (m *Message) Decrypt(block cipher.Block, iv []byte) error {
	if m.Header.Flags&FlagEncryption == 0 || m.Ciphertext == nil {
		return encodeError("message is not encrypted")
	}
	plain, err := DecryptCBC(block, iv, m.Ciphertext)
	if err != nil {
		return err
	}
	return m.decodePayloads(plain, true, false)
}

// EncodeEncrypted returns the message in wire form with the E flag set and
// the payload chain encrypted with block in CBC mode from iv. It sets
// Header.Flags, Header.NextPayload and Header.Length. The encrypted body ends
// the returned datagram, so its last BlockSize bytes are the next IV.
func (m *Message) EncodeEncrypted(block cipher.Block, iv []byte) ([]byte, error) {
	body, err := appendChain(nil, m.Payloads)
	if err != nil {
		return nil, err
	}
	ct, err := EncryptCBC(block, iv, body)
	if err != nil {
		return nil, err
	}
	m.built = body
	m.Header.Flags |= FlagEncryption
	return m.frame(ct)
}

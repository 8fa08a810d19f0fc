package keymat

import (
	"crypto/cipher"
	"errors"

	"github.com/ipseclab/ipseclab/ipsec/isakmp"
)

// The revised method of public-key encryption (RFC 2409 §5.3) encrypts only
// the nonce to the peer's public key; the payloads after it (KE, ID and an
// optional certificate) travel under the negotiated cipher, keyed from that
// nonce:
//
//	Ne_i = prf(Ni_b, CKY-I)        Ne_r = prf(Nr_b, CKY-R)
//
// "The keys Ke_i and Ke_r are then taken from Ne_i and Ne_r respectively in
// the manner described in Appendix B": the first bytes of Ne when it is long
// enough, else of K1 | K2 | ... with K1 = prf(Ne, 0), Kn = prf(Ne, K(n-1)),
// which is how EncryptionKey cuts or expands SKEYID_e into Ka. "If CBC mode
// is used ... The IV for encrypting the first payload following the nonce
// is set to 0 (zero). The IV for subsequent payloads encrypted with the
// ephemeral symmetric cipher key, Ke_i, is the last ciphertext block of the
// previous payload. Encrypted payloads are padded up to the nearest block
// size. All padding bytes, except for the last one, contain 0x00. The last
// byte of the padding contains the number of the padding bytes used,
// excluding the last one. Note that this means there will always be
// padding." This padding, unlike that of whole encrypted messages, does
// carry its length: a payload body has no chain to end it.

// NonceKey is Ne_i = prf(Ni_b, CKY-I), or Ne_r = prf(Nr_b, CKY-R) with the
// responder's nonce and cookie (RFC 2409 §5.3).
func NonceKey(prf PRF, nonce []byte, cky isakmp.Cookie) []byte {
	return prf.Compute(nonce, cky[:])
}

// NonceCipher encrypts or decrypts, in order, the payload bodies that follow
// the nonce in one message of the revised method: Ke_i's (or Ke_r's) CBC
// chain, which starts from a zero IV in each message. Use one NonceCipher
// per message and direction.
type NonceCipher struct {
	block cipher.Block
	iv    []byte
	Key   []byte // Ke_i or Ke_r
}

// NewNonceCipher keys c with Ke = the key EncryptionKey takes from ne (Ne_i
// or Ne_r, from NonceKey).
func NewNonceCipher(c Cipher, prf PRF, ne []byte) (*NonceCipher, error) {
	key := EncryptionKey(prf, ne, c.KeySize())
	block, err := c.NewBlock(key)
	if err != nil {
		return nil, err
	}
	return &NonceCipher{block: block, iv: make([]byte, c.BlockSize()), Key: key}, nil
}

// Seal pads body as §5.3 says and encrypts it; the last ciphertext block is
// the IV of the next body.
func (nc *NonceCipher) Seal(body []byte) []byte {
	bs := nc.block.BlockSize()
	pad := bs - len(body)%bs // 1 to bs bytes, the last one counting the others
	out := make([]byte, len(body)+pad)
	copy(out, body)
	out[len(out)-1] = byte(pad - 1)
	cipher.NewCBCEncrypter(nc.block, nc.iv).CryptBlocks(out, out)
	copy(nc.iv, out[len(out)-bs:])
	return out
}

// ErrNonceCipher is a body that does not decrypt under Ke: not whole
// blocks, or padding that is not §5.3's. One error for every fault, so that
// no caller can tell them apart to a peer.
var ErrNonceCipher = errors.New("keymat: payload does not decrypt with the nonce's key")

// Open decrypts one body and removes its padding. The chain moves on past
// ct whether or not it decrypts, as the sender's did.
func (nc *NonceCipher) Open(ct []byte) ([]byte, error) {
	bs := nc.block.BlockSize()
	if len(ct) == 0 || len(ct)%bs != 0 {
		return nil, ErrNonceCipher
	}
	out := make([]byte, len(ct))
	cipher.NewCBCDecrypter(nc.block, nc.iv).CryptBlocks(out, ct)
	copy(nc.iv, ct[len(ct)-bs:])
	n := int(out[len(out)-1]) // padding bytes before the last one
	if n >= bs {
		return nil, ErrNonceCipher
	}
	var zeros byte
	for _, b := range out[len(out)-1-n : len(out)-1] {
		zeros |= b
	}
	if zeros != 0 {
		return nil, ErrNonceCipher
	}
	return out[:len(out)-1-n], nil
}

package keymat

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/des"
	"fmt"

	"github.com/ipseclab/ipseclab/ipsec/isakmp"
)

// Cipher is a phase 1 encryption algorithm with its key size (RFC 2409 App. A;
// RFC 3602 and RFC 2451 for AES-CBC and 3DES). ISAKMP encrypts message bodies
// with it in CBC mode: isakmp.Message.EncodeEncrypted and Decrypt take the
// cipher.Block that NewBlock returns, and IVs keeps the chaining state.
type Cipher struct {
	alg       isakmp.EncryptionAlgorithm
	keySize   int
	blockSize int
}

// NewCipher returns the cipher of a phase 1 Encryption Algorithm and Key Length
// attribute (in bits; 0 when the transform has none). DES (1) and 3DES (5)
// have fixed keys; AES-CBC (7) needs a key length of 128, 192 or 256.
func NewCipher(alg isakmp.EncryptionAlgorithm, keyBits uint16) (Cipher, error) {
	c := Cipher{alg: alg}
	switch alg {
	case isakmp.EncDES:
		c.keySize, c.blockSize = 8, des.BlockSize
	case isakmp.Enc3DES:
		c.keySize, c.blockSize = 24, des.BlockSize
	case isakmp.EncAESCBC:
		if keyBits != 128 && keyBits != 192 && keyBits != 256 {
			return Cipher{}, fmt.Errorf("%w: AES-CBC with a %d-bit key", ErrUnsupported, keyBits)
		}
		c.keySize, c.blockSize = int(keyBits)/8, aes.BlockSize
		return c, nil
	default:
		return Cipher{}, fmt.Errorf("%w: cipher %s", ErrUnsupported, alg)
	}
	if keyBits != 0 && int(keyBits) != 8*c.keySize {
		return Cipher{}, fmt.Errorf("%w: %s with a %d-bit key", ErrUnsupported, alg, keyBits)
	}
	return c, nil
}

// Algorithm returns the encryption algorithm.
func (c Cipher) Algorithm() isakmp.EncryptionAlgorithm { return c.alg }

// KeySize is the key length in bytes: how much of Ka (RFC 2409 App. B) is used.
func (c Cipher) KeySize() int { return c.keySize }

// BlockSize is the cipher's block size in bytes, the length of every IV.
func (c Cipher) BlockSize() int { return c.blockSize }

// NewBlock returns the block cipher keyed with key, which must be KeySize bytes.
func (c Cipher) NewBlock(key []byte) (cipher.Block, error) {
	if len(key) != c.keySize {
		return nil, fmt.Errorf("keymat: %s needs a %d-byte key, got %d", c.alg, c.keySize, len(key))
	}
	switch c.alg {
	case isakmp.EncDES:
		return des.NewCipher(key)
	case isakmp.Enc3DES:
		return des.NewTripleDESCipher(key)
	case isakmp.EncAESCBC:
		return aes.NewCipher(key)
	}
	return nil, fmt.Errorf("%w: cipher %s", ErrUnsupported, c.alg)
}

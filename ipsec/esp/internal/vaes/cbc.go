package vaes

import (
	"crypto/aes"
	"crypto/cipher"
)

// NewCBC returns AES-CBC encryption and decryption for key (RFC 3602 uses
// it with a fresh IV per packet, which SetIV sets). Where the CPU lacks VAES
// it returns crypto/cipher's.
func NewCBC(key []byte) (enc, dec IVBlockMode, err error) {
	if !supported {
		b, err := aes.NewCipher(key)
		if err != nil {
			return nil, nil, err
		}
		zero := make([]byte, aes.BlockSize)
		return cipher.NewCBCEncrypter(b, zero).(IVBlockMode), cipher.NewCBCDecrypter(b, zero).(IVBlockMode), nil
	}
	k := &cbcKeys{}
	if err := k.enc.expand(key); err != nil {
		return nil, nil, err
	}
	k.dec = k.enc.inverse()
	return &cbcEncrypter{k: k}, &cbcDecrypter{k: k}, nil
}

// IVBlockMode is a CBC mode whose IV can be reset, as crypto/cipher's are.
type IVBlockMode interface {
	cipher.BlockMode
	SetIV([]byte)
}

type cbcKeys struct{ enc, dec keySchedule }

type cbcEncrypter struct {
	k  *cbcKeys
	iv [16]byte
}

type cbcDecrypter struct {
	k  *cbcKeys
	iv [16]byte
}

func (x *cbcEncrypter) BlockSize() int { return blockSize }
func (x *cbcDecrypter) BlockSize() int { return blockSize }

func (x *cbcEncrypter) SetIV(iv []byte) { setIV(&x.iv, iv) }
func (x *cbcDecrypter) SetIV(iv []byte) { setIV(&x.iv, iv) }

func setIV(dst *[16]byte, iv []byte) {
	if len(iv) != blockSize {
		panic("vaes: incorrect length IV")
	}
	copy(dst[:], iv)
}

func (x *cbcEncrypter) CryptBlocks(dst, src []byte) {
	checkBlocks(dst, src)
	if len(src) > 0 {
		cbcEncrypt(&x.k.enc.enc, x.k.enc.rounds, &x.iv, &dst[0], &src[0], len(src))
	}
}

func (x *cbcDecrypter) CryptBlocks(dst, src []byte) {
	checkBlocks(dst, src)
	if len(src) > 0 {
		cbcDecrypt(&x.k.dec.enc, x.k.dec.rounds, &x.iv, &dst[0], &src[0], len(src))
	}
}

func checkBlocks(dst, src []byte) {
	if len(src)%blockSize != 0 {
		panic("vaes: input not full blocks")
	}
	if len(dst) < len(src) {
		panic("vaes: output smaller than input")
	}
	if inexactOverlap(dst[:len(src)], src) {
		panic("vaes: invalid buffer overlap")
	}
}

// EncryptCBC4 encrypts four messages of the same length (whole blocks) in
// place, each from its own IV, with their CBC chains interleaved: CBC
// encryption waits on the previous block, and four chains keep the AES unit
// busy while each waits. It reports false, and does nothing, unless enc came
// from NewCBC on a CPU this package runs on.
func EncryptCBC4(enc IVBlockMode, ivs, msgs *[4][]byte) bool {
	x, ok := enc.(*cbcEncrypter)
	if !ok {
		return false
	}
	n := len(msgs[0])
	if n%blockSize != 0 {
		panic("vaes: input not full blocks")
	}
	var ivp, mp [4]*byte
	for i := range 4 {
		if len(msgs[i]) != n || len(ivs[i]) != blockSize {
			panic("vaes: EncryptCBC4 needs four messages of one length and four IVs")
		}
		if n == 0 {
			return true
		}
		ivp[i], mp[i] = &ivs[i][0], &msgs[i][0]
	}
	cbcEncrypt4(&x.k.enc.enc, x.k.enc.rounds, &ivp, &mp, n)
	return true
}

package esp

import "fmt"

// Protocol is the IPsec protocol of an SA, by its IP protocol number.
type Protocol uint8

const (
	ProtoESP Protocol = 50 // RFC 4303
	ProtoAH  Protocol = 51 // RFC 4302
)

func (p Protocol) String() string {
	switch p {
	case ProtoESP:
		return "esp"
	case ProtoAH:
		return "ah"
	}
	return fmt.Sprintf("proto-%d", uint8(p))
}

// Mode is tunnel or transport mode (RFC 4301 §4.1).
type Mode uint8

const (
	Tunnel    Mode = 1
	Transport Mode = 2
)

func (m Mode) String() string {
	switch m {
	case Tunnel:
		return "tunnel"
	case Transport:
		return "transport"
	}
	return fmt.Sprintf("mode-%d", uint8(m))
}

// EncAlg is an ESP encryption transform. Each key size is its own value so that
// an algorithm fixes the KEYMAT length IKE must derive (EncAlg.KeySize).
type EncAlg uint8

const (
	EncNull         EncAlg = iota + 1 // RFC 2410: no confidentiality, the payload stays readable
	EncDES                            // RFC 2405: 56-bit DES-CBC, broken, kept for teaching
	Enc3DES                           // RFC 2451: 3DES-CBC (EDE, three keys)
	EncAESCBC128                      // RFC 3602
	EncAESCBC192                      // RFC 3602
	EncAESCBC256                      // RFC 3602
	EncAESGCM16_128                   // RFC 4106 with a 16-byte ICV
	EncAESGCM16_192                   // RFC 4106
	EncAESGCM16_256                   // RFC 4106
)

var encNames = map[EncAlg]string{
	EncNull: "null", EncDES: "des", Enc3DES: "3des",
	EncAESCBC128: "aes128", EncAESCBC192: "aes192", EncAESCBC256: "aes256",
	EncAESGCM16_128: "aes128gcm16", EncAESGCM16_192: "aes192gcm16", EncAESGCM16_256: "aes256gcm16",
}

// String is strongSwan's name for the algorithm ("aes128", "aes128gcm16", ...).
func (a EncAlg) String() string {
	if s, ok := encNames[a]; ok {
		return s
	}
	return fmt.Sprintf("enc-%d", uint8(a))
}

// KeySize is the length in bytes of the cipher key, without the GCM salt.
func (a EncAlg) KeySize() int {
	switch a {
	case EncNull:
		return 0
	case EncDES:
		return 8
	case Enc3DES, EncAESCBC192, EncAESGCM16_192:
		return 24
	case EncAESCBC128, EncAESGCM16_128:
		return 16
	case EncAESCBC256, EncAESGCM16_256:
		return 32
	}
	return -1
}

// SaltSize is the number of KEYMAT bytes that follow the key and form the
// implicit part of the nonce: 4 for GCM (RFC 4106 §8.1), 0 otherwise.
func (a EncAlg) SaltSize() int {
	if a.IsAEAD() {
		return 4
	}
	return 0
}

// IsAEAD reports whether the algorithm is a combined mode that carries its own
// ICV, so that the SA takes no separate integrity algorithm.
func (a EncAlg) IsAEAD() bool {
	return a == EncAESGCM16_128 || a == EncAESGCM16_192 || a == EncAESGCM16_256
}

// ivSize is the length of the IV carried in every ESP packet.
func (a EncAlg) ivSize() int {
	switch a {
	case EncDES, Enc3DES:
		return 8
	case EncAESCBC128, EncAESCBC192, EncAESCBC256:
		return 16
	case EncAESGCM16_128, EncAESGCM16_192, EncAESGCM16_256:
		return 8 // RFC 4106 §3.1: the explicit part of the nonce
	}
	return 0
}

// align is what the ciphertext length must be a multiple of: the cipher's block
// size for CBC, and 4 otherwise, because RFC 4303 §2.4 aligns the trailer so that
// the ICV starts on a 4-byte boundary.
func (a EncAlg) align() int {
	switch a {
	case EncDES, Enc3DES:
		return 8
	case EncAESCBC128, EncAESCBC192, EncAESCBC256:
		return 16
	}
	return 4
}

// IntegAlg is an integrity transform, for ESP without AEAD and for AH.
type IntegAlg uint8

const (
	IntegNone           IntegAlg = iota // only with an AEAD cipher
	IntegHMACMD5_96                     // RFC 2403
	IntegHMACSHA1_96                    // RFC 2404
	IntegHMACSHA256_128                 // RFC 4868
	IntegHMACSHA384_192                 // RFC 4868
	IntegHMACSHA512_256                 // RFC 4868
)

var integNames = map[IntegAlg]string{
	IntegNone: "none", IntegHMACMD5_96: "md5", IntegHMACSHA1_96: "sha1",
	IntegHMACSHA256_128: "sha256", IntegHMACSHA384_192: "sha384", IntegHMACSHA512_256: "sha512",
}

// String is strongSwan's name for the algorithm ("sha1", "sha256", ...).
func (a IntegAlg) String() string {
	if s, ok := integNames[a]; ok {
		return s
	}
	return fmt.Sprintf("integ-%d", uint8(a))
}

// KeySize is the HMAC key length in bytes: the hash's output size (RFC 2403,
// 2404, 4868 §2.1.1).
func (a IntegAlg) KeySize() int {
	switch a {
	case IntegNone:
		return 0
	case IntegHMACMD5_96:
		return 16
	case IntegHMACSHA1_96:
		return 20
	case IntegHMACSHA256_128:
		return 32
	case IntegHMACSHA384_192:
		return 48
	case IntegHMACSHA512_256:
		return 64
	}
	return -1
}

// ICVSize is the length of the truncated ICV on the wire.
func (a IntegAlg) ICVSize() int {
	switch a {
	case IntegHMACMD5_96, IntegHMACSHA1_96:
		return 12
	case IntegHMACSHA256_128:
		return 16
	case IntegHMACSHA384_192:
		return 24
	case IntegHMACSHA512_256:
		return 32
	}
	return 0
}

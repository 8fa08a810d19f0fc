package esp

import (
	"crypto/cipher"
	"crypto/des"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"

	"github.com/ipseclab/ipseclab/ipsec/esp/internal/hmac2"
	"github.com/ipseclab/ipseclab/ipsec/esp/internal/vaes"
)

// ESP packet layout (RFC 4303 §2):
//
//	SPI(4) | Sequence Number(4) | IV | Payload | Padding | Pad Length(1) | Next Header(1) | ICV
//	\_______ integrity (separate ICV), or AAD (GCM) _____/ \______ encrypted ____________/
const espHeaderLen = 8

// unprotectedForCeiling lets the package's throughput benchmark install ESP
// with neither encryption nor integrity, which RFC 4303 §3.2 forbids, to
// measure the ceiling of the tunnel's own work: every cost but cryptography.
// Only export_linux_test.go sets it.
var unprotectedForCeiling bool

var (
	errESPLength  = errors.New("ESP packet length does not fit the SA's algorithms")
	errIntegrity  = errors.New("ICV verification failed")
	errESPPadding = errors.New("bad ESP padding")
)

// ivBlockMode is a CBC mode whose IV is set per packet.
type ivBlockMode = vaes.IVBlockMode

// espCipher is one SA's ESP transform: its keys and the scratch state that
// protecting or checking a packet needs. It is not safe for concurrent use.
type espCipher struct {
	enc    EncAlg
	ivLen  int
	align  int
	icvLen int // the ICV on the wire: the AEAD tag or the truncated HMAC
	esn    bool

	cbcEnc, cbcDec ivBlockMode // CBC modes, their IV set per packet
	aead           cipher.AEAD
	salt           [4]byte
	mac            *icv // the separate ICV; nil with an AEAD or for encryption-only ESP

	// makeIV fills the explicit IV of an outbound packet. RFC 3602 §2.1 wants
	// an unpredictable IV for CBC; RFC 4106 §3.1 only a unique one for GCM, for
	// which the 64-bit sequence number serves. Tests replace it to replay
	// published vectors.
	makeIV func(iv []byte, seq uint64)

	nonce [12]byte
	aad   [12]byte
	seqHi [4]byte

	// random holds CBC IVs drawn from crypto/rand 4 KiB at a time: one read
	// per packet cost 1.5% of the CPU of a bulk transfer. It comes with the
	// first CBC packet: a GCM SA has no use for it, and in a script of
	// negotiations it was a tenth of the lab process's allocations.
	random    *[4096]byte
	randomPos int
}

// randomIV fills iv from the SA's buffer of random bytes.
func (c *espCipher) randomIV(iv []byte, _ uint64) {
	if c.random == nil {
		c.random = new([4096]byte)
	}
	if c.randomPos == 0 || c.randomPos+len(iv) > len(c.random) {
		rand.Read(c.random[:])
		c.randomPos = 0
	}
	c.randomPos += copy(iv, c.random[c.randomPos:])
}

func newESPCipher(enc EncAlg, key, salt []byte, integ IntegAlg, integKey []byte, esn bool) (*espCipher, error) {
	if len(key) != enc.KeySize() {
		return nil, fmt.Errorf("%s: key is %d bytes, want %d", enc, len(key), enc.KeySize())
	}
	if len(salt) != enc.SaltSize() {
		return nil, fmt.Errorf("%s: salt is %d bytes, want %d", enc, len(salt), enc.SaltSize())
	}
	c := &espCipher{enc: enc, ivLen: enc.ivSize(), align: enc.align(), esn: esn}
	switch enc {
	case EncNull:
	case EncAESCBC128, EncAESCBC192, EncAESCBC256:
		var err error
		if c.cbcEnc, c.cbcDec, err = vaes.NewCBC(key); err != nil {
			return nil, err
		}
		c.makeIV = c.randomIV
	case EncDES, Enc3DES:
		var b cipher.Block
		var err error
		if enc == EncDES {
			b, err = des.NewCipher(key)
		} else {
			b, err = des.NewTripleDESCipher(key)
		}
		if err != nil {
			return nil, err
		}
		zero := make([]byte, b.BlockSize())
		var ok1, ok2 bool
		c.cbcEnc, ok1 = cipher.NewCBCEncrypter(b, zero).(ivBlockMode)
		c.cbcDec, ok2 = cipher.NewCBCDecrypter(b, zero).(ivBlockMode)
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("%s: CBC mode cannot reset its IV", enc)
		}
		c.makeIV = c.randomIV
	case EncAESGCM16_128, EncAESGCM16_192, EncAESGCM16_256:
		var err error
		if c.aead, err = vaes.NewGCM(key); err != nil {
			return nil, err
		}
		copy(c.salt[:], salt)
		c.icvLen = c.aead.Overhead()
		c.makeIV = func(iv []byte, seq uint64) { be.PutUint64(iv, seq) }
	default:
		return nil, fmt.Errorf("unknown encryption algorithm %d", enc)
	}
	switch {
	case enc.IsAEAD() && integ != IntegNone:
		return nil, fmt.Errorf("%s is a combined mode: it takes no integrity algorithm (got %s)", enc, integ)
	case !enc.IsAEAD() && integ == IntegNone && enc == EncNull && !unprotectedForCeiling:
		return nil, errors.New("ESP with NULL encryption needs an integrity algorithm (RFC 4303 §3.2)")
	case !enc.IsAEAD() && integ == IntegNone:
		// Confidentiality only: allowed by RFC 4303 but open to cut-and-paste
		// attacks. Kept, as RFC 3602's own test cases use it.
	case !enc.IsAEAD():
		m, err := newICV(integ, integKey)
		if err != nil {
			return nil, err
		}
		c.mac = m
		c.icvLen = integ.ICVSize()
	}
	return c, nil
}

// overhead is the most an ESP encapsulation adds to a payload: header, IV,
// worst-case padding, pad length and next header, ICV.
func (c *espCipher) overhead() int {
	return espHeaderLen + c.ivLen + c.align - 1 + 2 + c.icvLen
}

// headroom is what seal needs in front of the payload.
func (c *espCipher) headroom() int { return espHeaderLen + c.ivLen }

// aadFor is the GCM additional data: SPI and the 32-bit sequence number, or SPI,
// high and low halves with ESN (RFC 4106 §5).
func (c *espCipher) aadFor(spi uint32, seq uint64) []byte {
	be.PutUint32(c.aad[0:], spi)
	if c.esn {
		be.PutUint64(c.aad[4:], seq)
		return c.aad[:12]
	}
	be.PutUint32(c.aad[4:], uint32(seq))
	return c.aad[:8]
}

// seqHigh is what ESN appends to the data covered by a separate ICV: the high
// 32 bits of the sequence number, never sent (RFC 4303 §2.2.1).
func (c *espCipher) seqHigh(seq uint64) []byte {
	if !c.esn {
		return nil
	}
	be.PutUint32(c.seqHi[:], uint32(seq>>32))
	return c.seqHi[:]
}

// seal turns buf[p0:p1] into an ESP packet in place and returns its bounds. It
// needs c.headroom() bytes before p0 and c.overhead()-c.headroom() after p1.
func (c *espCipher) seal(buf []byte, p0, p1 int, nextHeader byte, spi uint32, seq uint64) (start, end int) {
	return c.sealLater(nil, nil, buf, p0, p1, nextHeader, spi, seq)
}

// sealLater is seal, except that with jobs set an AES-CBC packet is only
// framed (header, IV, padding, trailer): its encryption and ICV wait in jobs
// until the batch is complete, so that four packets of one SA can be
// encrypted at once (see sealJobs). mu guards the cipher's ICV state then.
func (c *espCipher) sealLater(jobs *sealJobs, mu *sync.Mutex, buf []byte, p0, p1 int, nextHeader byte, spi uint32, seq uint64) (start, end int) {
	// Padding (RFC 4303 §2.4): the default pad bytes 1, 2, 3, ... so that
	// payload, padding and the two trailer bytes fill whole cipher blocks.
	padLen := (c.align - (p1-p0+2)%c.align) % c.align
	t := p1
	for i := 1; i <= padLen; i++ {
		buf[t] = byte(i)
		t++
	}
	buf[t], buf[t+1] = byte(padLen), nextHeader
	t += 2

	start = p0 - c.ivLen - espHeaderLen
	be.PutUint32(buf[start:], spi)
	be.PutUint32(buf[start+4:], uint32(seq))
	iv := buf[start+espHeaderLen : p0]
	plain := buf[p0:t]
	if c.ivLen > 0 {
		c.makeIV(iv, seq)
	}
	switch {
	case c.aead != nil:
		copy(c.nonce[:4], c.salt[:])
		copy(c.nonce[4:], iv)
		c.aead.Seal(plain[:0], c.nonce[:], plain, c.aadFor(spi, seq))
		return start, t + c.icvLen
	case c.cbcEnc != nil && jobs != nil:
		jobs.list = append(jobs.list, sealJob{c: c, mu: mu, buf: buf, start: start, p0: p0, t: t, seq: seq})
		return start, t + c.icvLen
	case c.cbcEnc != nil:
		c.cbcEnc.SetIV(iv)
		c.cbcEnc.CryptBlocks(plain, plain)
	}
	c.sign(buf, start, t, seq)
	return start, t + c.icvLen
}

// sign writes the separate ICV, if the SA has one, behind buf[start:t].
func (c *espCipher) sign(buf []byte, start, t int, seq uint64) {
	if c.mac != nil {
		c.mac.compute(buf[t:t+c.icvLen], buf[start:t], c.seqHigh(seq))
	}
}

// sealJob is the encryption and ICV of one framed AES-CBC packet.
type sealJob struct {
	c         *espCipher
	mu        *sync.Mutex
	buf       []byte
	start, p0 int // the ESP header, the payload
	t         int // the end of the trailer, where the ICV goes
	seq       uint64
}

// sealJobs are the AES-CBC packets of an outbound batch still to encrypt and
// sign. CBC encryption is serial within a packet: each block waits for the
// one before it, at the AES instruction's latency. A batch from one TSO
// super-packet holds dozens of same-sized packets of one SA, and four of
// them are encrypted side by side in the time of about one (vaes.EncryptCBC4).
type sealJobs struct{ list []sealJob }

// run encrypts and signs every job, then forgets them.
func (js *sealJobs) run() {
	jobs := js.list
	for i := 0; i < len(jobs); {
		j := i + 1
		for j < len(jobs) && j-i < 4 && jobs[j].c == jobs[i].c && jobs[j].t-jobs[j].p0 == jobs[i].t-jobs[i].p0 {
			j++
		}
		if j-i != 4 || !jobs[i].encrypt4(jobs[i:j]) {
			for k := i; k < j; k++ {
				jobs[k].encrypt()
			}
		}
		i = j
	}
	for k := 0; k < len(jobs); k++ {
		jb := &jobs[k]
		if k+1 < len(jobs) && jb.c.mac.pairs() && jobs[k+1].c.mac.pairs() {
			signPair(jb, &jobs[k+1])
			k++
			continue
		}
		jb.mu.Lock()
		jb.c.sign(jb.buf, jb.start, jb.t, jb.seq)
		jb.mu.Unlock()
	}
	clear(jobs)
	js.list = jobs[:0]
}

// signPair writes the ICVs of two jobs whose SAs' HMACs pair (icv.pairs),
// computed side by side.
func signPair(a, b *sealJob) {
	var sa, sb [hmac2.MaxSize]byte
	sum2(a.icvInput(&sa), b.icvInput(&sb))
	copy(a.buf[a.t:a.t+a.c.icvLen], sa[:])
	copy(b.buf[b.t:b.t+b.c.icvLen], sb[:])
}

func (jb *sealJob) icvInput(out *[hmac2.MaxSize]byte) icvInput {
	return icvInput{m: jb.c.mac, data: jb.buf[jb.start:jb.t], esn: jb.c.esn, seq: jb.seq, out: out}
}

func (jb *sealJob) iv() []byte { return jb.buf[jb.start+espHeaderLen : jb.p0] }

// encrypt4 encrypts four jobs of one SA and one length at once; the key
// schedule is read-only, so it needs no lock.
func (jb *sealJob) encrypt4(four []sealJob) bool {
	var ivs, msgs [4][]byte
	for i := range four {
		ivs[i], msgs[i] = four[i].iv(), four[i].buf[four[i].p0:four[i].t]
	}
	return vaes.EncryptCBC4(jb.c.cbcEnc, &ivs, &msgs)
}

func (jb *sealJob) encrypt() {
	jb.mu.Lock()
	defer jb.mu.Unlock()
	jb.c.cbcEnc.SetIV(jb.iv())
	jb.c.cbcEnc.CryptBlocks(jb.buf[jb.p0:jb.t], jb.buf[jb.p0:jb.t])
}

// checkLength rejects an ESP packet whose length cannot have come from this SA.
func (c *espCipher) checkLength(pkt []byte) error {
	ct := len(pkt) - espHeaderLen - c.ivLen - c.icvLen
	if ct < 2 || ct%c.align != 0 {
		return errESPLength
	}
	return nil
}

// authenticate verifies a separate ICV (HMAC). With an AEAD the tag is checked
// by open instead, as RFC 4303 §3.4.4.2 describes for combined modes.
func (c *espCipher) authenticate(pkt []byte, seq uint64) error {
	if c.mac == nil {
		return nil
	}
	n := len(pkt) - c.icvLen
	if !c.mac.verify(pkt[n:], pkt[:n], c.seqHigh(seq)) {
		return errIntegrity
	}
	return nil
}

// open decrypts pkt (an ESP packet that passed checkLength and authenticate)
// into dst, which must be at least as long as pkt and must not overlap it, and
// returns the length of the payload at the start of dst and its next header.
// Decrypting into another buffer costs no more than in place, and spares the
// receive path a copy: pkt may be one segment of a coalesced datagram.
func (c *espCipher) open(dst, pkt []byte, seq uint64) (n int, nextHeader byte, err error) {
	p0 := espHeaderLen + c.ivLen
	iv := pkt[espHeaderLen:p0]
	ct := pkt[p0:]
	var plain []byte
	switch {
	case c.aead != nil:
		copy(c.nonce[:4], c.salt[:])
		copy(c.nonce[4:], iv)
		if plain, err = c.aead.Open(dst[:0], c.nonce[:], ct, c.aadFor(be.Uint32(pkt), seq)); err != nil {
			return 0, 0, errIntegrity
		}
	case c.cbcDec != nil:
		ct = ct[:len(ct)-c.icvLen]
		plain = dst[:len(ct)]
		c.cbcDec.SetIV(iv)
		c.cbcDec.CryptBlocks(plain, ct)
	default:
		ct = ct[:len(ct)-c.icvLen]
		plain = dst[:copy(dst, ct)]
	}
	end := len(plain)
	padLen := int(plain[end-2])
	nextHeader = plain[end-1]
	n = end - 2 - padLen
	if n < 0 {
		return 0, 0, errESPPadding
	}
	// RFC 4303 §2.4 lets the receiver check the default padding bytes; a
	// mismatch means a broken peer or the wrong key.
	for i := 0; i < padLen; i++ {
		if plain[n+i] != byte(i+1) {
			return 0, 0, errESPPadding
		}
	}
	return n, nextHeader, nil
}

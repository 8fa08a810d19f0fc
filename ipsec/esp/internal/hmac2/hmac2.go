// Package hmac2 computes two HMACs (RFC 2104) at once, over SHA-1 or
// SHA-256 (FIPS 180-4).
//
// With the SHA extensions a block of either hash is bound by the latency of
// its round instruction (SHA1RNDS4, SHA256RNDS2): each round waits for the
// one before. A second message's rounds fit into those waits, so two HMACs
// take the time of one. An ESP sender or receiver has batches of packets of
// one SA to hand (the segments of one TSO super-packet or one GRO
// datagram), and pairs them.
//
// A Key holds the two states HMAC starts from (the key XOR ipad and XOR
// opad, each compressed once), and is read-only after NewKey, so one Key
// serves any number of goroutines.
package hmac2

import "encoding/binary"

// Hash is the hash function under the HMAC.
type Hash uint8

const (
	SHA1 Hash = iota
	SHA256
)

// MaxSize is the length of the longest untruncated HMAC value.
const MaxSize = 32

const blockSize = 64

// function is what a Hash needs from its implementation. Both hashes take
// 64-byte blocks and the same padding; their states fit in [8]uint32.
type function struct {
	hash    Hash
	size    int // digest bytes
	initial [8]uint32
}

var functions = [...]function{
	SHA1:   {SHA1, 20, [8]uint32{0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0}},
	SHA256: {SHA256, 32, [8]uint32{0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19}},
}

// blocks2 compresses n bytes (whole blocks) of pa into ha and of pb into hb.
// The calls are direct, so that nothing escapes to the heap.
func (fn *function) blocks2(ha, hb *[8]uint32, pa, pb *byte, n int) {
	if fn.hash == SHA256 {
		sha256Blocks2(ha, hb, pa, pb, n)
	} else {
		sha1Blocks2(ha, hb, pa, pb, n)
	}
}

// Supported reports whether this CPU has the SHA extensions that make two
// lanes of h worth it. Without them the caller should keep crypto/hmac, whose
// AVX2 code is faster than this package's portable block functions.
func Supported(h Hash) bool { return supported[h] }

// Key is an HMAC key, prepared.
type Key struct {
	fn           *function
	inner, outer [8]uint32 // states after the key XOR ipad, and XOR opad
}

// NewKey prepares key for HMAC over h. A key longer than a block is hashed
// first (RFC 2104 §2).
func NewKey(h Hash, key []byte) *Key {
	fn := &functions[h]
	var k [blockSize]byte
	if len(key) > blockSize {
		var l lane
		l.h = fn.initial
		body := l.load(key, nil, 0)
		run(fn, &l, body, &lane{}, nil)
		var d [MaxSize]byte
		l.digest(fn, &d)
		copy(k[:], d[:fn.size])
	} else {
		copy(k[:], key)
	}
	var ipad, opad [blockSize]byte
	for i := range k {
		ipad[i] = k[i] ^ 0x36
		opad[i] = k[i] ^ 0x5c
	}
	ks := &Key{fn: fn, inner: fn.initial, outer: fn.initial}
	fn.blocks2(&ks.inner, &ks.outer, &ipad[0], &opad[0], blockSize)
	return ks
}

// Size is the length of the key's untruncated HMAC values.
func (k *Key) Size() int { return k.fn.size }

// Message is one HMAC to compute: the MAC of Data followed by Ext under Key,
// written to Sum[:Key.Size()]. Ext is short (at most 56 bytes): RFC 4303's
// high-order sequence number bits, appended to the ICV's input but not sent.
type Message struct {
	Key  *Key
	Data []byte
	Ext  []byte
	Sum  *[MaxSize]byte
}

// Sum computes one HMAC. It takes as long as Sum2.
func Sum(m Message) {
	Sum2(m, Message{})
}

// Sum2 computes two HMACs side by side. b may be the zero Message, for none.
// The messages may differ in length (the longer one finishes alone) and in
// key; under different hashes they are computed one after the other.
func Sum2(a, b Message) {
	if b.Key != nil && b.Key.fn != a.Key.fn {
		Sum(a)
		Sum(b)
		return
	}
	fn := a.Key.fn
	var la, lb lane
	bodyA := la.start(a)
	var bodyB []byte
	if b.Key != nil {
		bodyB = lb.start(b)
	}
	run(fn, &la, bodyA, &lb, bodyB)

	// The outer hash: H(K XOR opad || inner digest), one block each.
	la.finish(a)
	if b.Key != nil {
		lb.finish(b)
	}
	run(fn, &la, nil, &lb, nil)
	la.digest(fn, a.Sum)
	if b.Key != nil {
		lb.digest(fn, b.Sum)
	}
}

// lane is one message in progress: its state, and its padded last blocks in
// buf. The whole blocks of the message itself are compressed where they lie;
// run takes them as an argument, because a slice stored in a lane would make
// every message escape to the heap.
type lane struct {
	h         [8]uint32
	tail, end int // the padded rest is buf[tail:end]
	buf       [2 * blockSize]byte
}

// start sets l up for the inner hash of m and returns the whole blocks of
// m.Data to compress before buf. The key XOR ipad block is already
// compressed into m.Key.inner, so the length counted is one block more.
func (l *lane) start(m Message) []byte {
	l.h = m.Key.inner
	return l.load(m.Data, m.Ext, blockSize)
}

// load pads the tail of data||ext into buf, behind prefix bytes already
// compressed, and returns the whole blocks of data that come first.
func (l *lane) load(data, ext []byte, prefix int) []byte {
	whole := len(data) &^ (blockSize - 1)
	l.tail, l.end = 0, pad(&l.buf, data[whole:], ext, uint64(prefix+len(data)+len(ext)))
	return data[:whole]
}

// finish sets l up for the outer hash over its inner digest.
func (l *lane) finish(m Message) {
	var d [MaxSize]byte
	l.digest(m.Key.fn, &d)
	l.h = m.Key.outer
	l.tail, l.end = 0, pad(&l.buf, d[:m.Key.fn.size], nil, uint64(blockSize+m.Key.fn.size))
}

func (l *lane) digest(fn *function, d *[MaxSize]byte) {
	for i := 0; i < fn.size/4; i++ {
		binary.BigEndian.PutUint32(d[4*i:], l.h[i])
	}
}

// run compresses what both lanes have left, two blocks at a time: first the
// bodies, then the padded tails. A lane that has finished rides along on a
// scratch state over the other lane's bytes: it costs nothing, as the other
// lane's latency sets the pace.
func run(fn *function, a *lane, bodyA []byte, b *lane, bodyB []byte) {
	next := func(l *lane, body []byte) []byte {
		if len(body) > 0 {
			return body
		}
		return l.buf[l.tail:l.end]
	}
	for {
		pa, pb := next(a, bodyA), next(b, bodyB)
		if len(pa) == 0 && len(pb) == 0 {
			return
		}
		var scratch [8]uint32
		ha, hb := &a.h, &b.h
		if len(pa) == 0 {
			pa, ha = pb, &scratch
		}
		if len(pb) == 0 {
			pb, hb = pa, &scratch
		}
		n := min(len(pa), len(pb))
		fn.blocks2(ha, hb, &pa[0], &pb[0], n)
		if ha != &scratch {
			if len(bodyA) > 0 {
				bodyA = bodyA[n:]
			} else {
				a.tail += n
			}
		}
		if hb != &scratch {
			if len(bodyB) > 0 {
				bodyB = bodyB[n:]
			} else {
				b.tail += n
			}
		}
	}
}

// pad writes data, ext, the 0x80 byte, zeros and the message's length in bits
// (FIPS 180-4 §5.1.1) into buf, and returns the length of the whole blocks.
// len(data)+len(ext) must be under 2*blockSize-8.
func pad(buf *[2 * blockSize]byte, data, ext []byte, total uint64) int {
	n := copy(buf[:], data)
	n += copy(buf[n:], ext)
	buf[n] = 0x80
	n++
	end := blockSize
	if n > blockSize-8 {
		end = 2 * blockSize
	}
	clear(buf[n : end-8])
	binary.BigEndian.PutUint64(buf[end-8:], total*8)
	return end
}

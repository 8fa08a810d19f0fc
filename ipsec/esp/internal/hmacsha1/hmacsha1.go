// Package hmacsha1 computes HMAC-SHA1 (RFC 2104 over FIPS 180-4 SHA-1) for
// two messages at once.
//
// With the SHA extensions a SHA-1 block is bound by the latency of
// SHA1RNDS4: each of its twenty waits for the one before. A second message's
// rounds fit into those waits, so two HMACs take the time of one. An ESP
// sender or receiver has batches of packets of one SA to hand (the segments
// of one TSO super-packet or one GRO datagram), and pairs them.
//
// A Key holds the two states HMAC starts from (the key XOR ipad and XOR
// opad, each compressed once), and is read-only after NewKey, so one Key
// serves any number of goroutines.
package hmacsha1

import "encoding/binary"

// Size is the length of an untruncated HMAC-SHA1 value.
const Size = 20

const blockSize = 64

// initial is SHA-1's H(0) (FIPS 180-4 §5.3.1).
var initial = [5]uint32{0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0}

// Supported reports whether this CPU has the SHA extensions that make two
// lanes worth it. Without them the caller should keep crypto/hmac, whose
// AVX2 code is faster than this package's portable block function.
func Supported() bool { return supported }

// Key is an HMAC-SHA1 key, prepared.
type Key struct {
	inner, outer [5]uint32 // SHA-1 states after the key XOR ipad, and XOR opad
}

// NewKey prepares key. A key longer than a block is hashed first (RFC 2104 §2).
func NewKey(key []byte) *Key {
	var k [blockSize]byte
	if len(key) > blockSize {
		var l lane
		l.h = initial
		l.load(key, nil, 0)
		run(&l, &lane{})
		var d [Size]byte
		l.digest(&d)
		copy(k[:], d[:])
	} else {
		copy(k[:], key)
	}
	var ipad, opad [blockSize]byte
	for i := range k {
		ipad[i] = k[i] ^ 0x36
		opad[i] = k[i] ^ 0x5c
	}
	ks := &Key{inner: initial, outer: initial}
	blocks2(&ks.inner, &ks.outer, &ipad[0], &opad[0], blockSize)
	return ks
}

// Message is one HMAC to compute: the MAC of Data followed by Ext under Key,
// written to Sum. Ext is short (at most 56 bytes): RFC 4303's high-order
// sequence number bits, appended to the ICV's input but not sent.
type Message struct {
	Key  *Key
	Data []byte
	Ext  []byte
	Sum  *[Size]byte
}

// Sum computes one HMAC. It takes as long as Sum2.
func Sum(m Message) {
	Sum2(m, Message{})
}

// Sum2 computes two HMACs side by side. b may be the zero Message, for none.
// The messages may differ in length; the longer one finishes alone.
func Sum2(a, b Message) {
	var la, lb lane
	la.start(a)
	if b.Key != nil {
		lb.start(b)
	}
	run(&la, &lb)

	// The outer hash: H(K XOR opad || inner digest), one block each.
	la.finish(a)
	if b.Key != nil {
		lb.finish(b)
	}
	run(&la, &lb)
	la.digest(a.Sum)
	if b.Key != nil {
		lb.digest(b.Sum)
	}
}

// lane is one message in progress: its state, and the whole blocks still to
// compress, first straight from the message, then from tail.
type lane struct {
	h         [5]uint32
	body      []byte // whole blocks of the message itself
	tail, end int    // the rest, padded, is buf[tail:end]
	buf       [2 * blockSize]byte
}

// start sets l up for the inner hash of m: the key XOR ipad block is already
// compressed into m.Key.inner, so the length counted is one block more.
func (l *lane) start(m Message) {
	l.h = m.Key.inner
	l.load(m.Data, m.Ext, blockSize)
}

// load queues data||ext, padded, behind prefix bytes already compressed.
func (l *lane) load(data, ext []byte, prefix int) {
	whole := len(data) &^ (blockSize - 1)
	l.body = data[:whole]
	l.tail, l.end = 0, pad(&l.buf, data[whole:], ext, uint64(prefix+len(data)+len(ext)))
}

// finish sets l up for the outer hash over its inner digest.
func (l *lane) finish(m Message) {
	var d [Size]byte
	l.digest(&d)
	l.h = m.Key.outer
	l.body = nil
	l.tail, l.end = 0, pad(&l.buf, d[:], nil, blockSize+Size)
}

func (l *lane) digest(d *[Size]byte) {
	for i, v := range l.h {
		binary.BigEndian.PutUint32(d[4*i:], v)
	}
}

// next returns the blocks l can compress in one run, from one buffer.
func (l *lane) next() []byte {
	if len(l.body) > 0 {
		return l.body
	}
	return l.buf[l.tail:l.end]
}

func (l *lane) advance(n int) {
	if len(l.body) > 0 {
		l.body = l.body[n:]
	} else {
		l.tail += n
	}
}

// run compresses what both lanes have left, two at a time. A lane that has
// finished rides along on a scratch state over the other lane's bytes: it
// costs nothing, as the other lane's latency sets the pace.
func run(a, b *lane) {
	for {
		pa, pb := a.next(), b.next()
		if len(pa) == 0 && len(pb) == 0 {
			return
		}
		var scratch [5]uint32
		ha, hb := &a.h, &b.h
		if len(pa) == 0 {
			pa, ha = pb, &scratch
		}
		if len(pb) == 0 {
			pb, hb = pa, &scratch
		}
		n := min(len(pa), len(pb))
		blocks2(ha, hb, &pa[0], &pb[0], n)
		if ha != &scratch {
			a.advance(n)
		}
		if hb != &scratch {
			b.advance(n)
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

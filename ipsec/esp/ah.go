package esp

import (
	"errors"
	"fmt"
)

// AH header (RFC 4302 §2):
//
//	Next Header(1) | Payload Len(1) | Reserved(2) | SPI(4) | Sequence Number(4) | ICV
//
// Payload Len is the header's length in 32-bit words minus 2. The ICV covers
// the IP header with its mutable fields zeroed, the AH header with the ICV
// zeroed, and everything after it (RFC 4302 §3.3.3).
const ahFixedLen = 12

var (
	errAHLength  = errors.New("AH length does not match the SA's ICV")
	errIPOptions = errors.New("malformed IPv4 options")
)

// ahCipher is one SA's AH transform. Not safe for concurrent use.
type ahCipher struct {
	mac    *icv
	icvLen int
	esn    bool

	hdr    [60]byte // the IP header with mutable fields zeroed
	saved  [64]byte // the received ICV while the field is zeroed
	seqHi  [4]byte
	icvOut [64]byte
}

func newAHCipher(integ IntegAlg, key []byte, esn bool) (*ahCipher, error) {
	if integ == IntegNone {
		return nil, errors.New("AH needs an integrity algorithm")
	}
	m, err := newICV(integ, key)
	if err != nil {
		return nil, err
	}
	// For IPv4 the AH header must be a multiple of 4 bytes (RFC 4302 §3.3.3.2.1);
	// every ICV size here is.
	return &ahCipher{mac: m, icvLen: integ.ICVSize(), esn: esn}, nil
}

func (c *ahCipher) length() int { return ahFixedLen + c.icvLen }

func (c *ahCipher) seqHigh(seq uint64) []byte {
	if !c.esn {
		return nil
	}
	be.PutUint32(c.seqHi[:], uint32(seq>>32))
	return c.seqHi[:]
}

// zeroMutable copies the IPv4 header ip into c.hdr with the fields that routers
// may change in transit zeroed (RFC 4302 §3.3.3.1.1.1): TOS, flags and fragment
// offset, TTL and the header checksum. IPv4 options cannot be marked mutable on
// the wire, so RFC 4302 Appendix A.1 lists which are immutable; every other
// option is zeroed as a whole, type and length included (§3.3.3.1.1.2).
func (c *ahCipher) zeroMutable(ip []byte) ([]byte, error) {
	h := c.hdr[:len(ip)]
	copy(h, ip)
	h[ipv4TOS] = 0
	h[ipv4FlagsFrag], h[ipv4FlagsFrag+1] = 0, 0
	h[ipv4TTL] = 0
	h[ipv4Checksum], h[ipv4Checksum+1] = 0, 0
	opts := h[ipv4MinHeader:]
	for i := 0; i < len(opts); {
		switch t := opts[i]; t {
		case 0: // End of Option List: the rest is padding, immutable
			return h, nil
		case 1: // No Operation
			i++
			continue
		default:
			if i+1 >= len(opts) || opts[i+1] < 2 || i+int(opts[i+1]) > len(opts) {
				return nil, errIPOptions
			}
			n := int(opts[i+1])
			switch t {
			case 130, 133, 134, 148, 149:
				// Security, Extended Security, Commercial Security, Router
				// Alert, Sender Directed Multi-Destination Delivery: immutable.
			default:
				clear(opts[i : i+n])
			}
			i += n
		}
	}
	return h, nil
}

// writeHeader writes the AH header at ah with a zero ICV field.
func (c *ahCipher) writeHeader(ah []byte, nextHeader byte, spi uint32, seq uint64) {
	ah[0] = nextHeader
	ah[1] = byte(c.length()/4 - 2)
	ah[2], ah[3] = 0, 0
	be.PutUint32(ah[4:], spi)
	be.PutUint32(ah[8:], uint32(seq))
	clear(ah[ahFixedLen:c.length()])
}

// sign computes the ICV of the IPv4 packet pkt, whose AH header starts at
// pkt[ahAt:] with a zeroed ICV field, and writes it into that field.
func (c *ahCipher) sign(pkt []byte, ihl, ahAt int, seq uint64) error {
	h, err := c.zeroMutable(pkt[:ihl])
	if err != nil {
		return err
	}
	c.mac.compute(c.icvOut[:], h, pkt[ihl:], c.seqHigh(seq))
	copy(pkt[ahAt+ahFixedLen:], c.icvOut[:c.icvLen])
	return nil
}

// parse checks the AH header at pkt[ihl:] against the SA and returns the next
// header and where the protected payload starts.
func (c *ahCipher) parse(pkt []byte, ihl int) (nextHeader byte, payload int, err error) {
	if len(pkt) < ihl+ahFixedLen {
		return 0, 0, errShort
	}
	ah := pkt[ihl:]
	n := (int(ah[1]) + 2) * 4
	if n != c.length() || len(ah) < n {
		return 0, 0, errAHLength
	}
	return ah[0], ihl + n, nil
}

// verify checks the ICV of the IPv4 packet pkt carrying AH at pkt[ihl:]. The ICV
// field is zeroed for the computation and restored afterwards.
func (c *ahCipher) verify(pkt []byte, ihl int, seq uint64) error {
	field := pkt[ihl+ahFixedLen : ihl+c.length()]
	got := c.saved[:c.icvLen]
	copy(got, field)
	clear(field)
	h, err := c.zeroMutable(pkt[:ihl])
	ok := err == nil && c.mac.verify(got, h, pkt[ihl:], c.seqHigh(seq))
	copy(field, got)
	if err != nil {
		return fmt.Errorf("AH: %w", err)
	}
	if !ok {
		return errIntegrity
	}
	return nil
}

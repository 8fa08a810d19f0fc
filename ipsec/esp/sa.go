package esp

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipseclab/ipseclab/ipsec/esp/replay"
)

// Direction of an SA relative to the node: every IPsec SA is unidirectional.
type Direction uint8

const (
	Inbound  Direction = 1
	Outbound Direction = 2
)

func (d Direction) String() string {
	switch d {
	case Inbound:
		return "in"
	case Outbound:
		return "out"
	}
	return fmt.Sprintf("dir-%d", uint8(d))
}

// UDPEncap asks for ESP in UDP (RFC 3948), used when NAT traversal was
// negotiated. Ports are those of the IKE SA after the float, normally 4500 on
// both sides; behind a NAT the remote port is whatever the NAT chose.
type UDPEncap struct {
	LocalPort  uint16 // the data plane's NAT-T port; informational, the port is shared
	RemotePort uint16
	// FollowPeer, set when NAT-D found the peer behind a NAT, lets an
	// authenticated packet of this inbound SA that arrives from another
	// address or port move the peer's end of its SAs there (mapping.go).
	FollowPeer bool
}

// Lifetime limits an SA by traffic (RFC 4301 §4.4.2.1). Zero means no limit.
// Soft limits call Hooks.Expire with Hard false once, so IKE can rekey; hard
// limits remove the SA, then call Hooks.Expire with Hard true. Time lifetimes
// are IKE's: it deletes the SA itself.
type Lifetime struct {
	SoftBytes, HardBytes     uint64 // bytes of inner (plaintext) packets
	SoftPackets, HardPackets uint64
}

// SAConfig is one unidirectional SA as IKE installs it, built from Quick Mode's
// outcome and KEYMAT (RFC 2409 §5.5). IKE installs a pair: an Inbound SA with
// the SPI this node chose, and an Outbound SA with the SPI the peer chose.
type SAConfig struct {
	// Conn names the connection, for events and for the SPD: an Outbound SA
	// serves the policy with the same name (see Policy.Conn).
	Conn string

	Dir      Direction
	SPI      uint32 // in network order on the wire; values 1..255 are reserved (RFC 4303 §2.1)
	Protocol Protocol
	Mode     Mode

	// Encryption (ESP only). EncKey is the first Enc.KeySize() bytes of
	// KEYMAT; for GCM, Salt is the Enc.SaltSize() bytes after it.
	Enc    EncAlg
	EncKey []byte
	Salt   []byte

	// Integrity (AH, and ESP without an AEAD). IntegKey follows the
	// encryption key (and salt) in KEYMAT.
	Integ    IntegAlg
	IntegKey []byte

	// Local and Remote are the outer addresses: the tunnel endpoints in tunnel
	// mode, the hosts themselves in transport mode. For an Inbound SA, Local
	// is the destination; for an Outbound SA, Remote is.
	Local, Remote netip.Addr

	Encap *UDPEncap // nil: ESP or AH directly over IP

	// Inner traffic selectors, from this node's point of view in both
	// directions: an Outbound SA carries packets from LocalTS to RemoteTS, an
	// Inbound SA accepts only packets from RemoteTS to LocalTS. In transport
	// mode they default to Local and Remote.
	LocalTS, RemoteTS TrafficSelector

	ReplayWindow int  // inbound; 0 means replay.DefaultSize
	ESN          bool // 64-bit extended sequence numbers (RFC 4303 §2.2.1)
	Lifetime     Lifetime
}

// SAID identifies an SA as RFC 4301 §4.1 does: SPI, protocol and destination.
type SAID struct {
	SPI      uint32
	Protocol Protocol
	Dst      netip.Addr
}

func (id SAID) String() string { return fmt.Sprintf("%s %08x → %s", id.Protocol, id.SPI, id.Dst) }

// ID is the SA's identifier.
func (c *SAConfig) ID() SAID {
	dst := c.Remote
	if c.Dir == Inbound {
		dst = c.Local
	}
	return SAID{SPI: c.SPI, Protocol: c.Protocol, Dst: dst}
}

// Proposal renders the algorithms in strongSwan's notation ("aes128gcm16",
// "aes128-sha1", "ah-sha256").
func (c *SAConfig) Proposal() string {
	switch {
	case c.Protocol == ProtoAH:
		return c.Integ.String()
	case c.Enc.IsAEAD() || c.Integ == IntegNone:
		return c.Enc.String()
	}
	return c.Enc.String() + "-" + c.Integ.String()
}

func (c *SAConfig) validate() error {
	if c.Dir != Inbound && c.Dir != Outbound {
		return errors.New("SA direction must be Inbound or Outbound")
	}
	if c.SPI < 256 {
		return fmt.Errorf("SPI %d is reserved (RFC 4303 §2.1)", c.SPI)
	}
	if c.Mode != Tunnel && c.Mode != Transport {
		return errors.New("SA mode must be Tunnel or Transport")
	}
	if !c.Local.Is4() || !c.Remote.Is4() {
		return fmt.Errorf("outer addresses %v and %v must be IPv4", c.Local, c.Remote)
	}
	switch c.Protocol {
	case ProtoESP:
	case ProtoAH:
		if c.Encap != nil {
			return errors.New("AH cannot be UDP-encapsulated (RFC 3948 covers ESP only)")
		}
		if c.Enc != 0 {
			return errors.New("AH has no encryption")
		}
	default:
		return fmt.Errorf("protocol must be ESP or AH, not %d", c.Protocol)
	}
	if c.Encap != nil && c.Encap.RemotePort == 0 {
		return errors.New("UDP encapsulation needs the remote port")
	}
	for _, ts := range []TrafficSelector{c.LocalTS, c.RemoteTS} {
		if ts.Prefix.IsValid() && !ts.Prefix.Addr().Is4() {
			return fmt.Errorf("traffic selector %s: only IPv4 is supported", ts)
		}
	}
	if c.Mode == Tunnel && (!c.LocalTS.Prefix.IsValid() || !c.RemoteTS.Prefix.IsValid()) {
		return errors.New("a tunnel-mode SA needs both traffic selectors")
	}
	return nil
}

// counters are an SA's statistics. Atomic, so the data path never locks for them.
type counters struct {
	packets, bytes                           atomic.Uint64
	replayDrops, integrityFails, policyDrops atomic.Uint64
	otherDrops                               atomic.Uint64 // malformed, sequence exhausted, dummy packets (RFC 4303 §2.6)
}

// Counters is a snapshot of an SA's counters.
type Counters struct {
	Packets           uint64 `json:"packets"`
	Bytes             uint64 `json:"bytes"`
	ReplayDrops       uint64 `json:"replay_drops"`
	IntegrityFailures uint64 `json:"integrity_failures"`
	PolicyDrops       uint64 `json:"policy_drops"`
	OtherDrops        uint64 `json:"other_drops"`
}

func (c *counters) snapshot() Counters {
	return Counters{
		Packets: c.packets.Load(), Bytes: c.bytes.Load(),
		ReplayDrops: c.replayDrops.Load(), IntegrityFailures: c.integrityFails.Load(),
		PolicyDrops: c.policyDrops.Load(), OtherDrops: c.otherDrops.Load(),
	}
}

// saState is one installed security association: its configuration, its transform,
// its sequence number or replay window, and its counters.
type saState struct {
	cfg       SAConfig
	id        SAID
	installed time.Time

	mu  sync.Mutex // guards the transforms' scratch state
	esp *espCipher
	ah  *ahCipher

	// encapPeer is the peer's end of the UDP encapsulation: where outbound
	// packets go. It starts as Remote and Encap.RemotePort, and IKE moves it
	// when a NAT changes its mapping (UpdateEncap). Nil without UDP.
	encapPeer atomic.Pointer[netip.AddrPort]

	seq  atomic.Uint64 // outbound: the last sequence number sent
	ipID atomic.Uint32 // outbound: identification of the outer headers we build
	// innerMTU (outbound) is the largest inner packet that fits the path to
	// the peer, as the route into the TUN carries it; 0 until known.
	innerMTU atomic.Int32
	replay   *replay.Window // inbound

	c          counters
	softFired  atomic.Bool
	dead       atomic.Bool   // hard-expired or deleted: no longer used
	described  atomic.Uint32 // packets described in ESPPacket events so far
	lastDrop   atomic.Int64  // unix nanoseconds of the last ESPDrop event
	suppressed atomic.Uint64 // drops not published since then
}

func newSA(cfg SAConfig, now time.Time) (*saState, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.Mode == Transport {
		if !cfg.LocalTS.Prefix.IsValid() {
			cfg.LocalTS = HostSelector(cfg.Local)
		}
		if !cfg.RemoteTS.Prefix.IsValid() {
			cfg.RemoteTS = HostSelector(cfg.Remote)
		}
	}
	// Keep private copies of the keys: the caller's slices may be reused.
	cfg.EncKey = append([]byte(nil), cfg.EncKey...)
	cfg.Salt = append([]byte(nil), cfg.Salt...)
	cfg.IntegKey = append([]byte(nil), cfg.IntegKey...)
	if cfg.Encap != nil {
		e := *cfg.Encap
		cfg.Encap = &e
	}
	sa := &saState{cfg: cfg, id: cfg.ID(), installed: now}
	if cfg.Encap != nil {
		peer := netip.AddrPortFrom(cfg.Remote, cfg.Encap.RemotePort)
		sa.encapPeer.Store(&peer)
	}
	var err error
	if cfg.Protocol == ProtoESP {
		sa.esp, err = newESPCipher(cfg.Enc, cfg.EncKey, cfg.Salt, cfg.Integ, cfg.IntegKey, cfg.ESN)
	} else {
		sa.ah, err = newAHCipher(cfg.Integ, cfg.IntegKey, cfg.ESN)
	}
	if err != nil {
		return nil, fmt.Errorf("SA %s: %w", sa.id, err)
	}
	if cfg.Dir == Inbound {
		sa.replay = replay.New(cfg.ReplayWindow)
	}
	return sa, nil
}

// overhead is the most the SA adds to an inner packet on the wire.
func (sa *saState) overhead() int {
	n := 0
	if sa.cfg.Mode == Tunnel {
		n += ipv4MinHeader
	}
	if sa.esp != nil {
		n += sa.esp.overhead()
	} else {
		n += sa.ah.length()
	}
	if sa.cfg.Encap != nil {
		n += 8
	}
	return n
}

// overheadParts spells out overhead for the route-MTU event, the way RFC
// 4303, 4302 and 3948 lay the packet out.
func (sa *saState) overheadParts() string {
	var parts []string
	add := func(format string, n int) { parts = append(parts, fmt.Sprintf(format, n)) }
	if sa.cfg.Mode == Tunnel {
		add("outer IPv4 header %d", ipv4MinHeader)
	}
	if sa.cfg.Encap != nil {
		add("UDP header %d", 8)
	}
	if e := sa.esp; e != nil {
		add("ESP header %d", espHeaderLen)
		if e.ivLen > 0 {
			add("IV %d", e.ivLen)
		}
		if e.align > 1 {
			add("padding up to %d", e.align-1)
		}
		add("pad length and next header %d", 2)
		if e.icvLen > 0 {
			add("ICV %d", e.icvLen)
		}
	} else {
		add("AH header and ICV %d", sa.ah.length())
	}
	return strings.Join(parts, " + ")
}

// dropReason classifies why a packet was not delivered; each has a counter.
type dropReason uint8

const (
	dropNone dropReason = iota
	dropReplay
	dropIntegrity
	dropPolicy
	dropMalformed
	dropSeqExhausted
	dropDummy // RFC 4303 §2.6 traffic-flow-confidentiality padding: discarded on purpose

	dropReasons // how many there are
)

func (r dropReason) String() string {
	switch r {
	case dropReplay:
		return "replay"
	case dropIntegrity:
		return "integrity"
	case dropPolicy:
		return "policy"
	case dropMalformed:
		return "malformed"
	case dropSeqExhausted:
		return "sequence-exhausted"
	case dropDummy:
		return "dummy"
	}
	return "none"
}

// countDrop counts a packet sa dropped, on the SA and in the node's totals,
// which outlive it.
func (d *DataPlane) countDrop(sa *saState, r dropReason) {
	sa.count(r)
	d.st.saDrops[r].Add(1)
}

func (sa *saState) count(r dropReason) {
	switch r {
	case dropReplay:
		sa.c.replayDrops.Add(1)
	case dropIntegrity:
		sa.c.integrityFails.Add(1)
	case dropPolicy:
		sa.c.policyDrops.Add(1)
	default:
		sa.c.otherDrops.Add(1)
	}
}

// nextSeq reserves the next outbound sequence number. Without ESN the counter
// must not cycle (RFC 4303 §3.3.3): past 2^32-1 the SA is exhausted.
func (sa *saState) nextSeq() (uint64, bool) {
	s := sa.seq.Add(1)
	if !sa.cfg.ESN && s > 0xffffffff {
		return 0, false
	}
	return s, true
}

func (sa *saState) nextIPID() uint16 {
	for {
		if id := uint16(sa.ipID.Add(1)); id != 0 {
			return id
		}
	}
}

// protect encapsulates buf[p0:p1], an IPv4 packet read from the TUN, in place.
// It returns the bounds of what goes on the wire: a whole IPv4 packet for the
// raw socket, or, with UDP encapsulation, the ESP packet that is the UDP
// payload. buf needs Headroom bytes before p0 and Tailroom after p1.
func (sa *saState) protect(buf []byte, p0, p1 int) (start, end int, seq uint64, r dropReason) {
	return sa.protectLater(nil, buf, p0, p1)
}

// protectLater is protect, leaving the encryption and ICV of an ESP packet in
// CBC mode to jobs when it is set (see sealJobs): the packet is complete only
// once jobs has run.
func (sa *saState) protectLater(jobs *sealJobs, buf []byte, p0, p1 int) (start, end int, seq uint64, r dropReason) {
	ihl, total, err := ipv4Header(buf[p0:p1])
	if err != nil {
		return 0, 0, 0, dropMalformed
	}
	p1 = p0 + total
	seq, ok := sa.nextSeq()
	if !ok {
		return 0, 0, 0, dropSeqExhausted
	}
	inner := buf[p0:p1]
	tos := inner[ipv4TOS]
	df := be.Uint16(inner[ipv4FlagsFrag:])&ipv4DF != 0
	if sa.cfg.Mode == Transport && be.Uint16(inner[ipv4FlagsFrag:])&(ipv4MF|ipv4FragOffset) != 0 {
		// RFC 4301 §7: transport mode protects whole packets only; the TUN's MTU
		// keeps the local stack from fragmenting before IPsec.
		return 0, 0, 0, dropMalformed
	}

	sa.mu.Lock()
	defer sa.mu.Unlock()
	switch {
	case sa.esp != nil && sa.cfg.Mode == Tunnel:
		start, end = sa.esp.sealLater(jobs, &sa.mu, buf, p0, p1, protoIPv4, sa.cfg.SPI, seq)
		if sa.cfg.Encap != nil {
			return start, end, seq, dropNone
		}
		start -= ipv4MinHeader
		writeIPv4Header(buf[start:], end-start, tos, df, sa.nextIPID(), byte(ProtoESP), sa.cfg.Local, sa.cfg.Remote)
		return start, end, seq, dropNone

	case sa.esp != nil: // transport
		proto := inner[ipv4Protocol]
		hs := p0 - sa.esp.headroom()
		copy(buf[hs:], buf[p0:p0+ihl]) // move the IP header out of the ESP header's way
		start, end = sa.esp.sealLater(jobs, &sa.mu, buf, p0+ihl, p1, proto, sa.cfg.SPI, seq)
		if sa.cfg.Encap != nil {
			return start, end, seq, dropNone // the UDP socket writes the IP header
		}
		h := buf[hs : hs+ihl]
		h[ipv4Protocol] = byte(ProtoESP)
		be.PutUint16(h[ipv4TotalLen:], uint16(end-hs))
		setIPv4Checksum(h)
		return hs, end, seq, dropNone

	case sa.cfg.Mode == Tunnel: // AH
		n := sa.ah.length()
		start = p0 - n - ipv4MinHeader
		sa.ah.writeHeader(buf[p0-n:], protoIPv4, sa.cfg.SPI, seq)
		writeIPv4Header(buf[start:], p1-start, tos, df, sa.nextIPID(), byte(ProtoAH), sa.cfg.Local, sa.cfg.Remote)
		if err := sa.ah.sign(buf[start:p1], ipv4MinHeader, ipv4MinHeader, seq); err != nil {
			return 0, 0, 0, dropMalformed
		}
		return start, p1, seq, dropNone

	default: // AH transport
		n := sa.ah.length()
		hs := p0 - n
		proto := inner[ipv4Protocol]
		copy(buf[hs:], buf[p0:p0+ihl])
		h := buf[hs : hs+ihl]
		sa.ah.writeHeader(buf[hs+ihl:], proto, sa.cfg.SPI, seq)
		h[ipv4Protocol] = byte(ProtoAH)
		be.PutUint16(h[ipv4TotalLen:], uint16(p1-hs))
		if be.Uint16(h[ipv4ID:]) == 0 {
			// The identification is covered by the ICV, and a raw socket would
			// fill a zero one in after we signed.
			be.PutUint16(h[ipv4ID:], sa.nextIPID())
		}
		setIPv4Checksum(h)
		if err := sa.ah.sign(buf[hs:p1], ihl, ihl, seq); err != nil {
			return 0, 0, 0, dropMalformed
		}
		return hs, p1, seq, dropNone
	}
}

// unprotect checks and decapsulates an inbound packet into out. pkt is a whole
// IPv4 packet (ihl > 0, from a raw socket) or an ESP packet that came in UDP
// (ihl == 0); it is left as it was. The inner IPv4 packet is written to out,
// its payload at Headroom, and its bounds are returned; out must hold
// Headroom+len(pkt) bytes and must not overlap pkt. The order is RFC 4303
// §3.4: replay pre-check, ICV, window update, decryption, then the policy
// check on the inner packet (RFC 4301 §5.2). ahead, if not nil, may hold the
// packet's ICV verdict, checked ahead (icvahead.go).
func (sa *saState) unprotect(pkt []byte, ihl int, out []byte, ahead *icvVerdict) (p0, p1 int, seq uint64, r dropReason) {
	var low uint32
	if sa.esp != nil {
		esp := pkt[ihl:]
		if len(esp) < espHeaderLen || sa.esp.checkLength(esp) != nil {
			return 0, 0, 0, dropMalformed
		}
		low = be.Uint32(esp[4:])
	} else {
		if _, _, err := sa.ah.parse(pkt, ihl); err != nil {
			return 0, 0, 0, dropMalformed
		}
		low = be.Uint32(pkt[ihl+8:])
	}
	seq = uint64(low)
	if sa.cfg.ESN {
		seq = sa.replay.InferSeq(low)
	}
	if sa.replay.Check(seq) != replay.OK {
		return 0, 0, seq, dropReplay
	}

	sa.mu.Lock()
	var nh byte
	if sa.esp != nil {
		esp := pkt[ihl:]
		aead := sa.esp.aead != nil
		if !aead {
			ok, checked := ahead.use(sa, seq)
			if !checked {
				ok = sa.esp.authenticate(esp, seq) == nil
			}
			if !ok {
				sa.mu.Unlock()
				return 0, 0, seq, dropIntegrity
			}
			if sa.replay.Accept(seq) != replay.OK {
				sa.mu.Unlock()
				return 0, 0, seq, dropReplay
			}
		}
		n, next, err := sa.esp.open(out[Headroom:], esp, seq)
		sa.mu.Unlock()
		switch {
		case errors.Is(err, errIntegrity):
			return 0, 0, seq, dropIntegrity
		case err != nil:
			return 0, 0, seq, dropMalformed
		}
		if aead && sa.replay.Accept(seq) != replay.OK {
			return 0, 0, seq, dropReplay
		}
		p0, p1, nh = Headroom, Headroom+n, next
	} else {
		err := sa.ah.verify(pkt, ihl, seq)
		sa.mu.Unlock()
		if err != nil {
			if errors.Is(err, errIntegrity) {
				return 0, 0, seq, dropIntegrity
			}
			return 0, 0, seq, dropMalformed
		}
		if sa.replay.Accept(seq) != replay.OK {
			return 0, 0, seq, dropReplay
		}
		nh = pkt[ihl]
		p0 = Headroom
		p1 = p0 + copy(out[p0:], pkt[ihl+sa.ah.length():])
	}

	if nh == protoNoNext {
		return 0, 0, seq, dropDummy
	}
	if sa.cfg.Mode == Tunnel {
		if nh != protoIPv4 {
			return 0, 0, seq, dropPolicy // IPv6 inner packets are not supported
		}
		if ihl > 0 {
			propagateCE(pkt[ipv4TOS], out[p0:p1])
		}
	} else {
		// Transport mode: the outer header becomes the packet's header again.
		var h []byte
		if ihl > 0 {
			h = out[p0-ihl : p0]
			copy(h, pkt[:ihl])
		} else {
			// Over UDP the socket stripped the IP header: rebuild one from the
			// SA's addresses, which a NAT may have changed (RFC 3948 §3.1.2).
			h = out[p0-ipv4MinHeader : p0]
			writeIPv4Header(h, 0, 0, false, 0, 0, sa.cfg.Remote, sa.cfg.Local)
		}
		p0 -= len(h)
		h[ipv4Protocol] = nh
		be.PutUint16(h[ipv4TotalLen:], uint16(p1-p0))
		setIPv4Checksum(h)
		if ihl == 0 {
			fixTransportChecksum(out[p0:p1], len(h))
		}
	}

	ihlIn, total, err := ipv4Header(out[p0:p1])
	if err != nil || total != p1-p0 {
		return 0, 0, seq, dropMalformed
	}
	f := parseFlow(out[p0:p1], ihlIn)
	if !sa.cfg.RemoteTS.matches(f.src, &f, f.sport) || !sa.cfg.LocalTS.matches(f.dst, &f, f.dport) {
		return 0, 0, seq, dropPolicy
	}
	return p0, p1, seq, dropNone
}

// propagateCE applies RFC 6040 §4.2 at decapsulation: congestion marked on the
// outer header is copied to an ECN-capable inner packet.
func propagateCE(outerTOS byte, inner []byte) {
	if len(inner) < ipv4MinHeader || outerTOS&3 != 3 {
		return
	}
	if ecn := inner[ipv4TOS] & 3; ecn == 1 || ecn == 2 {
		inner[ipv4TOS] |= 3
		ihl := int(inner[0]&0x0f) * 4
		if ihl >= ipv4MinHeader && ihl <= len(inner) {
			setIPv4Checksum(inner[:ihl])
		}
	}
}

package strongswan

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/strongswan/govici/vici"
)

// IKESA is an IKE SA as charon lists it (vici list-sa). For IKEv1 it is the
// ISAKMP SA, and its SPIs are the cookies.
type IKESA struct {
	Name        string // connection name
	UniqueID    uint32
	Version     int
	State       string // CREATED, CONNECTING, ESTABLISHED, PASSIVE, REKEYING, REKEYED, DELETING, DESTROYING
	Local       netip.AddrPort
	Remote      netip.AddrPort
	LocalID     string
	RemoteID    string
	Initiator   bool   // this side initiated the SA
	ICookie     uint64 // initiator's SPI (cookie)
	RCookie     uint64 // responder's SPI (cookie)
	NATLocal    bool   // this side is behind a NAT
	NATRemote   bool   // the peer is behind a NAT
	NATFake     bool   // a NAT was faked (charon's kernel-libipsec always forces UDP encapsulation)
	NATAny      bool
	EncrAlg     string        // e.g. AES_CBC
	EncrKey     int           // key size in bits, when the algorithm has several
	IntegAlg    string        // e.g. HMAC_SHA2_256_128
	PRFAlg      string        // e.g. PRF_HMAC_SHA2_256
	DHGroup     string        // e.g. MODP_2048, ECP_256, CURVE_25519
	Established time.Duration // how long ago it was established
	RekeyIn     time.Duration // 0 when not scheduled
	ReauthIn    time.Duration // 0 when not scheduled

	// Virtual addresses from Mode Config: on a client, the one it was
	// lent (LocalVIPs); on a gateway, the one it lent the client
	// (RemoteVIPs).
	LocalVIPs, RemoteVIPs []string

	Children []ChildSA
}

// ChildSA is a CHILD SA: in IKEv1 terms the pair of IPsec SAs one Quick Mode
// negotiated.
type ChildSA struct {
	Name       string // CHILD SA configuration name
	UniqueID   uint32
	ReqID      uint32
	State      string // INSTALLED, REKEYING, REKEYED, DELETING, ...
	Mode       string // TUNNEL, TRANSPORT
	Protocol   string // ESP or AH
	Encap      bool   // UDP-encapsulated (RFC 3948)
	SPIIn      uint32 // SPI of the inbound SA: the one this side chose
	SPIOut     uint32 // SPI of the outbound SA: the one the peer chose
	EncrAlg    string // e.g. AES_GCM_16, AES_CBC
	EncrKey    int    // bits
	IntegAlg   string // "" for AEAD
	DHGroup    string // PFS group, "" without PFS
	ESN        bool
	BytesIn    uint64
	PacketsIn  uint64
	BytesOut   uint64
	PacketsOut uint64
	RekeyIn    time.Duration
	ExpiresIn  time.Duration
	Installed  time.Duration // how long ago it was installed
	LocalTS    []string
	RemoteTS   []string
}

// Proposal renders the IKE SA's algorithms the way swanctl --list-sas does,
// e.g. AES_CBC-128/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_2048.
func (sa IKESA) Proposal() string {
	return joinAlgs(withKeySize(sa.EncrAlg, sa.EncrKey), sa.IntegAlg, sa.PRFAlg, sa.DHGroup)
}

// Proposal renders the CHILD SA's algorithms the way swanctl --list-sas does,
// e.g. AES_GCM_16-128/MODP_2048 or AES_CBC-128/HMAC_SHA1_96.
func (ch ChildSA) Proposal() string {
	return joinAlgs(withKeySize(ch.EncrAlg, ch.EncrKey), ch.IntegAlg, ch.DHGroup)
}

func withKeySize(alg string, bits int) string {
	if bits == 0 {
		return alg
	}
	return alg + "-" + strconv.Itoa(bits)
}

func joinAlgs(algs ...string) string {
	var parts []string
	for _, a := range algs {
		if a != "" {
			parts = append(parts, a)
		}
	}
	return strings.Join(parts, "/")
}

// fields reads typed values out of a vici section, remembering the first
// malformed one.
type fields struct {
	m   *vici.Message
	err error
}

func (f *fields) fail(key, v string, err error) {
	if f.err == nil {
		f.err = fmt.Errorf("%s=%q: %w", key, v, err)
	}
}

func (f *fields) str(key string) string {
	s, _ := f.m.Get(key).(string)
	return s
}

func (f *fields) flag(key string) bool { return f.str(key) == "yes" }

// list is a list value; charon sends a one-element list as a list too.
func (f *fields) list(key string) []string {
	l, _ := f.m.Get(key).([]string)
	return l
}

func (f *fields) uint(key string, bits int) uint64 {
	v := f.str(key)
	if v == "" {
		return 0
	}
	n, err := strconv.ParseUint(v, 10, bits)
	if err != nil {
		f.fail(key, v, err)
	}
	return n
}

func (f *fields) hex(key string, bits int) uint64 {
	v := f.str(key)
	if v == "" {
		return 0
	}
	n, err := strconv.ParseUint(v, 16, bits)
	if err != nil {
		f.fail(key, v, err)
	}
	return n
}

func (f *fields) seconds(key string) time.Duration {
	return time.Duration(f.uint(key, 32)) * time.Second
}

func (f *fields) addr(key string) netip.Addr {
	v := f.str(key)
	if v == "" {
		return netip.Addr{}
	}
	a, err := netip.ParseAddr(v)
	if err != nil {
		f.fail(key, v, err)
	}
	return a
}

func (f *fields) addrPort(hostKey, portKey string) netip.AddrPort {
	v := f.str(hostKey)
	if v == "" {
		return netip.AddrPort{}
	}
	a, err := netip.ParseAddr(v)
	if err != nil {
		f.fail(hostKey, v, err)
	}
	return netip.AddrPortFrom(a, uint16(f.uint(portKey, 16)))
}

func parseIKESA(name string, m *vici.Message) (IKESA, error) {
	f := &fields{m: m}
	sa := IKESA{
		Name:        name,
		UniqueID:    uint32(f.uint("uniqueid", 32)),
		Version:     int(f.uint("version", 8)),
		State:       f.str("state"),
		Local:       f.addrPort("local-host", "local-port"),
		Remote:      f.addrPort("remote-host", "remote-port"),
		LocalID:     f.str("local-id"),
		RemoteID:    f.str("remote-id"),
		Initiator:   f.flag("initiator"),
		ICookie:     f.hex("initiator-spi", 64),
		RCookie:     f.hex("responder-spi", 64),
		NATLocal:    f.flag("nat-local"),
		NATRemote:   f.flag("nat-remote"),
		NATFake:     f.flag("nat-fake"),
		NATAny:      f.flag("nat-any"),
		EncrAlg:     f.str("encr-alg"),
		EncrKey:     int(f.uint("encr-keysize", 16)),
		IntegAlg:    f.str("integ-alg"),
		PRFAlg:      f.str("prf-alg"),
		DHGroup:     f.str("dh-group"),
		Established: f.seconds("established"),
		RekeyIn:     f.seconds("rekey-time"),
		ReauthIn:    f.seconds("reauth-time"),
		LocalVIPs:   f.list("local-vips"),
		RemoteVIPs:  f.list("remote-vips"),
	}
	children, _ := m.Get("child-sas").(*vici.Message)
	for _, key := range childKeys(children) {
		sec := children.Get(key).(*vici.Message)
		g := &fields{m: sec}
		ch := ChildSA{
			Name:       g.str("name"),
			UniqueID:   uint32(g.uint("uniqueid", 32)),
			ReqID:      uint32(g.uint("reqid", 32)),
			State:      g.str("state"),
			Mode:       g.str("mode"),
			Protocol:   g.str("protocol"),
			Encap:      g.flag("encap"),
			SPIIn:      uint32(g.hex("spi-in", 32)),
			SPIOut:     uint32(g.hex("spi-out", 32)),
			EncrAlg:    g.str("encr-alg"),
			EncrKey:    int(g.uint("encr-keysize", 16)),
			IntegAlg:   g.str("integ-alg"),
			DHGroup:    g.str("dh-group"),
			ESN:        g.str("esn") == "1",
			BytesIn:    g.uint("bytes-in", 64),
			PacketsIn:  g.uint("packets-in", 64),
			BytesOut:   g.uint("bytes-out", 64),
			PacketsOut: g.uint("packets-out", 64),
			RekeyIn:    g.seconds("rekey-time"),
			ExpiresIn:  g.seconds("life-time"),
			Installed:  g.seconds("install-time"),
			LocalTS:    g.list("local-ts"),
			RemoteTS:   g.list("remote-ts"),
		}
		if g.err != nil && f.err == nil {
			f.err = fmt.Errorf("child %s: %w", key, g.err)
		}
		sa.Children = append(sa.Children, ch)
	}
	if f.err != nil {
		return sa, fmt.Errorf("strongswan: IKE SA %s: %w", name, f.err)
	}
	return sa, nil
}

// childKeys are the names of a child-sas section's CHILD SAs, in charon's
// order.
func childKeys(m *vici.Message) []string {
	if m == nil {
		return nil
	}
	var out []string
	for _, k := range m.Keys() {
		if _, ok := m.Get(k).(*vici.Message); ok {
			out = append(out, k)
		}
	}
	return out
}

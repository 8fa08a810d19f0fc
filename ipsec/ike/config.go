package ike

import (
	"crypto"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"time"

	"github.com/ipseclab/ipseclab/events"
	"github.com/ipseclab/ipseclab/ipsec/esp"
	"github.com/ipseclab/ipseclab/ipsec/isakmp"
	"github.com/ipseclab/ipseclab/ipsec/pki"
	"github.com/ipseclab/ipseclab/ipsec/proposal"
)

// Role says which side of a connection this node plays. Both sides answer a
// peer that starts a negotiation; only an initiator starts one on its own
// (Child.Start, acquires, DPD restarts).
type Role int

const (
	Initiator Role = iota
	Responder
)

func (r Role) String() string {
	if r == Responder {
		return "responder"
	}
	return "initiator"
}

// Mode is the phase 1 exchange of a connection.
type Mode int

const (
	MainMode       Mode = iota // 6 messages, identities encrypted (RFC 2409 §5)
	AggressiveMode             // 3 messages, identities in the clear
)

func (m Mode) String() string {
	if m == AggressiveMode {
		return "aggressive"
	}
	return "main"
}

// StartAction is what a connection does when the engine starts, in swanctl's
// words (start_action).
type StartAction int

const (
	StartNone  StartAction = iota // wait for Initiate or the peer
	StartTrap                     // install the policy; the first matching packet starts it
	StartStart                    // initiate at once
)

func (s StartAction) String() string {
	return [...]string{"none", "trap", "start"}[s]
}

// DPDAction is what happens when dead peer detection gives up on the peer
// (swanctl's dpd_action; "hold" is its "trap").
type DPDAction int

const (
	DPDClear   DPDAction = iota // remove the SAs and stay down
	DPDRestart                  // remove the SAs and negotiate again at once
	DPDHold                     // remove the SAs; the next matching packet negotiates again
)

func (a DPDAction) String() string {
	return [...]string{"clear", "restart", "hold"}[a]
}

// DPD configures RFC 3706 dead peer detection. A zero Delay disables it.
type DPD struct {
	Delay   time.Duration // idle time before an R-U-THERE
	Timeout time.Duration // declare the peer dead after this long unanswered; 0: DefaultDPDTimeout
	Action  DPDAction
}

// Retransmit tunes IKE retransmissions, as strongSwan's retransmit_timeout,
// retransmit_tries and retransmit_base: the n-th retransmission of a message
// goes out Timeout·Base^(n-1) after the previous one, and the exchange fails
// one more interval after the last.
type Retransmit struct {
	Timeout time.Duration // default DefaultRetransmitTimeout
	Tries   int           // default DefaultRetransmitTries
	Base    float64       // default DefaultRetransmitBase
}

// Defaults, strongSwan's where it has one.
const (
	DefaultIKELifetime       = 4 * time.Hour
	DefaultChildLifetime     = time.Hour
	DefaultRetransmitTimeout = time.Second
	DefaultRetransmitTries   = 5
	DefaultRetransmitBase    = 1.8
	DefaultDPDTimeout        = 150 * time.Second
	DefaultHalfOpenLimit     = 8192 // 2.7 s of a 3,000/s flood of forged first messages: longer than halfOpenGrace
	DefaultHalfOpenPerPeer   = 5
	DefaultHalfOpenTimeout   = 30 * time.Second
	DefaultKeepalive         = 20 * time.Second // RFC 3948 §4 suggests 20 s
	DefaultRekeyDeleteDelay  = 5 * time.Second
)

// Connection is one IPsec connection of a node, named in swanctl's
// vocabulary where a word exists. Everything is from this node's point of
// view: Local is this node, Remote the peer.
type Connection struct {
	Name string
	Role Role

	Local  netip.Addr // this node's address for IKE and ESP
	Remote netip.Addr // the peer; the zero Addr accepts any peer (a responder behind which initiators may sit behind NATs)
	// ExpectedRemote is, for a responder that accepts any peer (Remote
	// zero), the address its peer's first message is expected from: the
	// peer's own, or its NAT's. It does not restrict the peer, it ranks the
	// connections: a Main Mode responder must choose its pre-shared key by
	// the initiator's address before it sees its identity (RFC 2409 §5.4),
	// so a first message from this address goes to this connection before
	// one that expects no address, and to both before one that expects
	// another.
	ExpectedRemote netip.Addr

	// Identities: "192.0.2.1" (the default is Local's address), "fqdn:vpn.example.org",
	// "email:alice@example.org", "keyid:opaque" or "keyid:#6b6579" (hex).
	// An empty RemoteID accepts any identity.
	LocalID, RemoteID string

	PSK  string // the pre-shared key, when Auth.Method is AuthPSK
	Auth Auth   // how phase 1 authenticates; the zero value is a pre-shared key

	// Remote access, after phase 1 and before Quick Mode: nil for none.
	XAuth      *XAuth
	ModeConfig *ModeConfig
	Mode       Mode

	Proposals []proposal.Proposal // IKE proposals in preference order, e.g. aes128-sha256-modp2048
	Lifetime  time.Duration       // of the ISAKMP SA; 0: DefaultIKELifetime

	DPD        DPD
	ForceEncap bool // fake a NAT (like strongSwan's encap=yes) so that ESP goes in UDP anyway
	NoNATT     bool // do not negotiate NAT traversal (RFC 3947) at all
	// Keepalive is how often this side, when behind a NAT, sends NAT-T
	// keepalives (RFC 3948 §2.3): 0 takes Tuning.Keepalive, KeepaliveOff
	// sends none, and the NAT's mapping then lives only as long as traffic.
	Keepalive  time.Duration
	Retransmit Retransmit

	Child Child
}

// AuthKind is a phase 1 authentication method (RFC 2409 §5), in swanctl's
// words where it has them.
type AuthKind int

const (
	AuthPSK                  AuthKind = iota // a pre-shared key (§5.4)
	AuthPubkey                               // signatures, RSA or ECDSA as the key is (§5.1, RFC 4754)
	AuthRSAEncryption                        // public-key encryption (§5.2, auth method 4)
	AuthRSARevisedEncryption                 // its revised mode (§5.3, auth method 5)
	// Hybrid authentication (draft-ietf-ipsec-isakmp-hybrid-auth-05): the
	// gateway signs, the client proves itself by XAUTH alone
	// (HybridInitRSA, 64221). XAUTH after a pre-shared key or signatures is
	// Connection.XAuth, not a method of its own.
	AuthHybrid
)

func (k AuthKind) String() string {
	switch k {
	case AuthPubkey:
		return "pubkey"
	case AuthRSAEncryption:
		return "rsa-encryption"
	case AuthRSARevisedEncryption:
		return "rsa-encryption-revised"
	case AuthHybrid:
		return "hybrid"
	}
	return "psk"
}

// encrypts reports whether the method is public-key encryption, which
// hides the nonces and identities of the key exchange messages.
func (k AuthKind) encrypts() bool { return k == AuthRSAEncryption || k == AuthRSARevisedEncryption }

// Auth is what a connection authenticates with beyond a pre-shared key.
type Auth struct {
	Method AuthKind
	// Chain is our certificate, leaf first, with any intermediates (not
	// the CA); Key its private key.
	Chain []*x509.Certificate
	Key   crypto.Signer
	// CAs are the certificates the peer's chain must lead to.
	CAs []*x509.Certificate
	// PeerCert is the peer's certificate when known beforehand: used when
	// the peer sends none. Public-key encryption needs it: the nonce and
	// identity go encrypted to its key before the peer has said anything.
	PeerCert *x509.Certificate
}

// XAuth is one side of extended authentication (draft-ietf-ipsec-isakmp-
// xauth-06): after phase 1, the gateway asks the client for a user name and
// password in a Transaction exchange, so that a group's shared key (or a
// certificate) proves the device and XAUTH the person. It changes phase 1's
// authentication method number (XAUTHInitPreShared, 65001, with a
// pre-shared key; XAUTHInitRSA, 65003, with signatures) so that both sides
// know it will follow.
type XAuth struct {
	Users map[string]string // the gateway: who may log in, and their passwords
	// The client: its credentials.
	User, Password string
}

// ModeConfig is one side of Mode Config (draft-dukes-ike-mode-cfg-02): the
// gateway lends the client an address from a pool, with DNS servers and the
// networks to send into the tunnel, in a Transaction exchange after phase 1
// (and XAUTH). The client needs only Push: whether to ask or to wait.
type ModeConfig struct {
	Pool          netip.Prefix   // addresses to lend: the network and broadcast excluded
	DNS, NBNS     []netip.Addr   // INTERNAL_IP4_DNS, INTERNAL_IP4_NBNS
	SplitInclude  []netip.Prefix // Cisco Unity's split tunnel; empty: everything
	Push          bool           // the gateway SETs (push), and the client waits for it; otherwise the client REQUESTs (pull)
	Banner        string         // Cisco Unity's banner
	DefaultDomain string         // Cisco Unity's default domain
}

// Lease is what Mode Config gave a client.
type Lease struct {
	Addr         netip.Prefix // the virtual address, with INTERNAL_IP4_NETMASK's length
	DNS          []netip.Addr
	SplitInclude []netip.Prefix // empty: everything goes into the tunnel
	Banner       string
}

// Child configures the IPsec SAs of a connection (swanctl's children section).
type Child struct {
	// Traffic selectors from this node's point of view. Zero prefixes mean
	// the two IKE endpoints themselves (host to host, usual in transport mode).
	LocalTS, RemoteTS netip.Prefix

	// Proposals: ESP or AH, all of one protocol, in preference order. A
	// Diffie-Hellman group in them means PFS in Quick Mode; all proposals
	// must then name the same group.
	Proposals []proposal.Proposal
	Mode      esp.Mode // esp.Tunnel (default when zero) or esp.Transport

	Lifetime     time.Duration // hard lifetime; rekeyed at about 90 %; 0: DefaultChildLifetime
	LifeBytes    uint64        // hard limit in bytes per SA; rekeyed at 90 %; 0: none
	Start        StartAction
	ReplayWindow int // 0: the data plane's default
}

// Tuning holds engine-wide limits; zero values take the defaults.
type Tuning struct {
	// Half-open ISAKMP SAs (responder side, peer not yet authenticated).
	HalfOpenLimit   int           // in all; default DefaultHalfOpenLimit
	HalfOpenPerPeer int           // from one source address; default DefaultHalfOpenPerPeer
	HalfOpenTimeout time.Duration // default DefaultHalfOpenTimeout

	Keepalive        time.Duration // NAT-T keepalive interval; default DefaultKeepalive
	RekeyDeleteDelay time.Duration // how long a replaced IPsec SA pair lingers; default DefaultRekeyDeleteDelay
}

// Transport is how the engine puts messages on the wire.
type Transport interface {
	// SendIKE sends msg from local to remote. From port 4500 the message
	// gets the 4-byte non-ESP marker in front (RFC 3948 §2.2); from any
	// other port it goes as is.
	SendIKE(local, remote netip.AddrPort, msg []byte) error
	// SendKeepalive sends a NAT-keepalive to remote from port 4500.
	SendKeepalive(remote netip.AddrPort) error
}

// DataPlane is what the engine needs from the IPsec data plane; *esp.DataPlane
// is one.
type DataPlane interface {
	AllocateSPI(proto esp.Protocol) (uint32, error)
	ReleaseSPI(proto esp.Protocol, spi uint32)
	AddSA(cfg esp.SAConfig) error
	DeleteSA(id esp.SAID) error
	AddPolicy(p esp.Policy) error
	DeletePolicy(p esp.Policy) error
	// SetNegotiating marks a policy whose SAs IKE is negotiating as a
	// responder: packets wait for the SA without an acquire. Installing an
	// outbound SA for the policy clears it.
	SetNegotiating(k esp.PolicyKey, negotiating bool) error
	// Held is how many packets a policy holds for an outbound SA: the
	// ones its installation will send at once.
	Held(k esp.PolicyKey) int
	// UpdateEncap moves a UDP-encapsulated SA to the peer's new address and
	// port, keeping its keys and sequence numbers.
	UpdateEncap(id esp.SAID, remote netip.AddrPort) error
	SAs() []esp.SAStatus
}

// Config configures an Engine.
type Config struct {
	Node        string
	Events      *events.Bus // nil: no events
	Connections []Connection
	Transport   Transport
	DataPlane   DataPlane

	Clock Clock     // nil: the real clock
	Rand  io.Reader // nil: crypto/rand

	// PublishKeys adds events.KeysDerived events with SKEYID*, Ka, the
	// cookies and the IPsec SAs' keys, for teaching and for Wireshark.
	PublishKeys bool

	// VirtualIP, on a client, is told the address that Mode Config gave a
	// connection, so that its owner installs it in the node with routes
	// for the split-include networks (or a default route) into the tunnel;
	// and the zero Lease when the lease ends. Called without the engine's
	// lock held.
	VirtualIP func(conn string, l Lease)

	Tuning Tuning
}

// withDefaults returns a copy of c with zero values replaced by defaults.
func (c Connection) withDefaults() Connection {
	if c.Lifetime == 0 {
		c.Lifetime = DefaultIKELifetime
	}
	if c.Retransmit.Timeout == 0 {
		c.Retransmit.Timeout = DefaultRetransmitTimeout
	}
	if c.Retransmit.Tries == 0 {
		c.Retransmit.Tries = DefaultRetransmitTries
	}
	if c.Retransmit.Base == 0 {
		c.Retransmit.Base = DefaultRetransmitBase
	}
	if c.DPD.Delay > 0 && c.DPD.Timeout == 0 {
		c.DPD.Timeout = DefaultDPDTimeout
	}
	if c.Child.Mode == 0 {
		c.Child.Mode = esp.Tunnel
	}
	if c.Child.Lifetime == 0 {
		c.Child.Lifetime = DefaultChildLifetime
	}
	return c
}

func (t Tuning) withDefaults() Tuning {
	if t.HalfOpenLimit == 0 {
		t.HalfOpenLimit = DefaultHalfOpenLimit
	}
	if t.HalfOpenPerPeer == 0 {
		t.HalfOpenPerPeer = DefaultHalfOpenPerPeer
	}
	if t.HalfOpenTimeout == 0 {
		t.HalfOpenTimeout = DefaultHalfOpenTimeout
	}
	if t.Keepalive == 0 {
		t.Keepalive = DefaultKeepalive
	}
	if t.RekeyDeleteDelay == 0 {
		t.RekeyDeleteDelay = DefaultRekeyDeleteDelay
	}
	return t
}

// Validate checks a connection the way the engine will use it, with errors a
// lab author can act on.
func (c Connection) Validate() error {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("connection %q: %s", c.Name, fmt.Sprintf(format, args...))
	}
	if c.Name == "" {
		return errors.New("a connection needs a name")
	}
	if !c.Local.Is4() {
		return fail("local address %v: an IPv4 address is required", c.Local)
	}
	if c.Remote.IsValid() && !c.Remote.Is4() {
		return fail("remote address %v: only IPv4 is supported", c.Remote)
	}
	if c.ExpectedRemote.IsValid() && (c.Remote.IsValid() || !c.ExpectedRemote.Is4()) {
		return fail("expected remote address %v: only an IPv4 address, and only where the remote address is left open", c.ExpectedRemote)
	}
	if !c.Remote.IsValid() && (c.Role == Initiator || c.Child.Start != StartNone) {
		return fail("an initiator needs the remote address (only a responder may accept any peer)")
	}
	if err := c.Auth.validate(c.PSK); err != nil {
		return fail("%v", err)
	}
	if err := c.validateRemoteAccess(); err != nil {
		return fail("%v", err)
	}
	if _, err := ParseIdentity(c.LocalID, c.Local); err != nil {
		return fail("local id: %v", err)
	}
	if c.RemoteID != "" {
		if _, err := ParseIdentity(c.RemoteID, netip.Addr{}); err != nil {
			return fail("remote id: %v", err)
		}
	}
	if len(c.Proposals) == 0 {
		return fail("no IKE proposals")
	}
	for _, p := range c.Proposals {
		if _, err := phase1Suite(p); err != nil {
			return fail("IKE proposal %s: %v", p, err)
		}
		if c.Mode == AggressiveMode && p.Group != c.Proposals[0].Group {
			return fail("Aggressive Mode sends its Diffie-Hellman value in the first message, so all IKE proposals must share one group (%s, %s)", c.Proposals[0], p)
		}
		// AM1 goes before the responder chose a proposal, yet its HASH(1)
		// uses "the negotiated hash function", and the revised method
		// encrypts its KE and ID with the negotiated cipher (RFC 2409
		// §5.2, §5.3): one of each, then, whatever the responder picks.
		if first := c.Proposals[0]; c.Mode == AggressiveMode && c.Auth.Method.encrypts() {
			if p.Integ != first.Integ {
				return fail("Aggressive Mode with %s hashes the responder's certificate (HASH(1)) in the first message, before a hash is chosen, so all IKE proposals must share one hash (%s, %s)", c.Auth.Method, first, p)
			}
			if c.Auth.Method == AuthRSARevisedEncryption && (p.Encr != first.Encr || p.KeyBits != first.KeyBits) {
				return fail("Aggressive Mode with %s encrypts the first message's KE and ID with the cipher before one is chosen, so all IKE proposals must share one cipher (%s, %s)", c.Auth.Method, first, p)
			}
		}
	}
	for _, d := range []time.Duration{c.Lifetime, c.DPD.Delay, c.DPD.Timeout, c.Retransmit.Timeout, c.Child.Lifetime} {
		if d < 0 {
			return fail("negative duration %v", d)
		}
	}
	if c.Retransmit.Tries < 0 || (c.Retransmit.Base != 0 && c.Retransmit.Base < 1) {
		return fail("retransmit tries %d, base %g: tries must be positive and the base at least 1", c.Retransmit.Tries, c.Retransmit.Base)
	}
	return c.Child.validate(c)
}

func (a Auth) validate(psk string) error {
	switch a.Method {
	case AuthPSK:
		if psk == "" {
			return errors.New("a pre-shared key is required (auth psk)")
		}
	case AuthPubkey:
		if len(a.Chain) == 0 || a.Key == nil {
			return errors.New("auth pubkey needs our certificate and its private key")
		}
		if err := pki.KeyMatches(a.Chain[0], a.Key); err != nil {
			return fmt.Errorf("our certificate: %v", err)
		}
		if _, err := pki.AuthMethodOf(a.Key.Public()); err != nil {
			return fmt.Errorf("our key: %v", err)
		}
		if len(a.CAs) == 0 && a.PeerCert == nil {
			return errors.New("auth pubkey needs a CA certificate (or the peer's certificate) to check the peer's against")
		}
	case AuthRSAEncryption, AuthRSARevisedEncryption:
		if len(a.Chain) == 0 || a.Key == nil {
			return fmt.Errorf("auth %s needs our certificate and its private key", a.Method)
		}
		if err := pki.KeyMatches(a.Chain[0], a.Key); err != nil {
			return fmt.Errorf("our certificate: %v", err)
		}
		// Only RSA encrypts; RFC 2409's ElGamal variants are not done.
		if _, ok := a.Key.Public().(*rsa.PublicKey); !ok {
			return fmt.Errorf("auth %s decrypts the peer's nonce with our private key, which must be RSA, not %s", a.Method, pki.DescribeKey(a.Key.Public()))
		}
		if _, ok := a.Key.(crypto.Decrypter); !ok {
			return fmt.Errorf("auth %s decrypts with our private key, and this %T cannot", a.Method, a.Key)
		}
		if a.PeerCert == nil {
			return fmt.Errorf("auth %s encrypts our nonce and identity to the peer's public key before the peer has sent anything: the peer's certificate is required", a.Method)
		}
		if _, ok := a.PeerCert.PublicKey.(*rsa.PublicKey); !ok {
			return fmt.Errorf("auth %s encrypts to the peer's RSA key; the peer's certificate holds %s", a.Method, pki.DescribeKey(a.PeerCert.PublicKey))
		}
	case AuthHybrid:
		// The gateway has a certificate and signs; the client has none and
		// checks the gateway's.
		if a.Key != nil {
			if len(a.Chain) == 0 {
				return errors.New("auth hybrid: the gateway needs its certificate with its key")
			}
			if err := pki.KeyMatches(a.Chain[0], a.Key); err != nil {
				return fmt.Errorf("our certificate: %v", err)
			}
			if _, ok := a.Key.Public().(*rsa.PublicKey); !ok {
				return fmt.Errorf("auth hybrid signs with RSA (HybridInitRSA); the gateway's key is %s", pki.DescribeKey(a.Key.Public()))
			}
		} else if len(a.CAs) == 0 && a.PeerCert == nil {
			return errors.New("auth hybrid: the client needs the CA certificate (or the gateway's certificate) to check the gateway's against")
		}
	default:
		return fmt.Errorf("unknown auth method %d", a.Method)
	}
	return nil
}

func (ch Child) validate(c Connection) error {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("connection %q child: %s", c.Name, fmt.Sprintf(format, args...))
	}
	if len(ch.Proposals) == 0 {
		return fail("no ESP or AH proposals")
	}
	first := ch.Proposals[0]
	for _, p := range ch.Proposals {
		if p.Protocol != first.Protocol || (p.Protocol != proposal.ESP && p.Protocol != proposal.AH) {
			return fail("proposal %s: all child proposals must be ESP, or all AH", p)
		}
		if p.Group != first.Group {
			return fail("proposals %s and %s name different PFS groups; Quick Mode sends one KE", first, p)
		}
		if _, err := childSuite(p); err != nil {
			return fail("proposal %s: %v", p, err)
		}
	}
	if ch.Mode != 0 && ch.Mode != esp.Tunnel && ch.Mode != esp.Transport {
		return fail("mode must be tunnel or transport")
	}
	// A Mode Config client's own selector is the address it will be lent,
	// and a gateway's remote one the address it lends: each gives one side.
	if ch.LocalTS.IsValid() != ch.RemoteTS.IsValid() && c.ModeConfig == nil {
		return fail("give both traffic selectors, or neither (host to host)")
	}
	for _, ts := range []netip.Prefix{ch.LocalTS, ch.RemoteTS} {
		if ts.IsValid() && !ts.Addr().Is4() {
			return fail("traffic selector %s: only IPv4 is supported", ts)
		}
	}
	if ch.Mode == esp.Tunnel && !ch.LocalTS.IsValid() && !c.Remote.IsValid() {
		return fail("a tunnel to any peer needs traffic selectors")
	}
	if ch.Start != StartNone && c.Role == Responder {
		return fail("start %s: only an initiator starts a connection on its own", ch.Start)
	}
	if ch.ReplayWindow < 0 {
		return fail("negative replay window")
	}
	return nil
}

// validateRemoteAccess checks XAUTH and Mode Config: one role per
// connection (the gateway with users and a pool, or the client with its
// credentials), and the methods XAUTH has numbers for.
func (c Connection) validateRemoteAccess() error {
	if x := c.XAuth; x != nil {
		switch {
		case len(x.Users) > 0 && x.User != "":
			return errors.New("xauth: a connection is the gateway (users) or the client (user), not both")
		case len(x.Users) == 0 && (x.User == "" || x.Password == ""):
			return errors.New("xauth: the client needs a user and a password (or the gateway its users)")
		}
		if m := baseAuthNumber(&c); m != isakmp.AuthMethodPSK && m != isakmp.AuthMethodRSASig && m != isakmp.AuthMethodHybridInitRSA {
			return fmt.Errorf("xauth follows a pre-shared key or RSA signatures (%s has no XAUTH method number)", m)
		}
	}
	if c.Auth.Method == AuthHybrid && c.XAuth == nil {
		return errors.New("auth hybrid proves the client by XAUTH alone: xauth is required")
	}
	if mc := c.ModeConfig; mc != nil {
		if mc.Pool.IsValid() && (!mc.Pool.Addr().Is4() || mc.Pool.Bits() > 30) {
			return fmt.Errorf("mode config pool %s: an IPv4 network of at least 4 addresses", mc.Pool)
		}
		for _, n := range mc.SplitInclude {
			if !n.Addr().Is4() {
				return fmt.Errorf("split-include %s: IPv4 only", n)
			}
		}
		gateway := mc.Pool.IsValid()
		if c.XAuth != nil && (len(c.XAuth.Users) > 0) != gateway {
			return errors.New("the gateway has both the XAUTH users and the pool; the client neither")
		}
	}
	return nil
}

package topology

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/ipseclab/ipseclab/ipsec/pki"
	"github.com/ipseclab/ipseclab/ipsec/proposal"
)

// IPsecConn is one connection between two IPsec nodes, named in strongSwan's
// swanctl vocabulary where a word exists. The same block configures ipseclab's
// own stack on a gateway node and charon on a strongswan node.
type IPsecConn struct {
	// The initiator, or (remote access) the initiators: the clients of one
	// gateway, each a side as initiator: is. One of the two is given;
	// Clients returns them alike.
	Initiator  Peer         `yaml:"initiator"`
	Initiators []Peer       `yaml:"initiators"`
	Responder  Peer         `yaml:"responder" lab:"required"`
	Remote     RemotePeers  `yaml:"remote"` // any: the responder serves any peer (implied by several initiators or a pool)
	Auth       Auth         `yaml:"auth" lab:"required"`
	KeyType    KeyType      `yaml:"key-type"` // the lab PKI's key for this connection's certificates
	IKE        IKEOptions   `yaml:"ike"`
	Child      ChildOptions `yaml:"child" lab:"required"`

	Name string `yaml:"-"`
	// Filled by validation: the parsed proposals.
	IKEProposals   []proposal.Proposal `yaml:"-"`
	ChildProposals []proposal.Proposal `yaml:"-"`
}

// Peer is one side of a connection: a node name, or a mapping that also sets
// the address, identity, a side-specific pre-shared key or the side's
// certificate files.
type Peer struct {
	Node    string `yaml:"node" lab:"required"`
	Address Addr   `yaml:"address"` // default: see defaultAddress
	// ID defaults to the address, or with a cert: to the certificate's
	// subject (dn:), as strongSwan's; "dn:", "fqdn:", "email:" or "keyid:"
	// prefixes select the type.
	ID  string `yaml:"id"`
	PSK string `yaml:"psk"` // overrides auth.secret on this side (a "wrong key" lab)

	// Certificate files (pubkey, rsa-encryption), PEM or DER, relative to
	// the lab file. A side that names neither cert nor key gets the lab
	// PKI's certificate at deploy; one without cacert trusts the lab CA.
	Cert     string `yaml:"cert"`      // this side's certificate, maybe followed by intermediate CAs
	Key      string `yaml:"key"`       // its private key (PKCS#1, PKCS#8 or SEC1)
	CACert   string `yaml:"cacert"`    // the CA(s) the peer's certificate must lead to
	PeerCert string `yaml:"peer-cert"` // the peer's certificate, known beforehand (rsa-encryption)

	// Remote access, after phase 1 (XAUTH, Mode Config). The gateway (the
	// responder) lists who may log in and what Mode Config lends: an
	// address from pool, DNS and NBNS servers, the networks to send into
	// the tunnel (none: everything), Cisco Unity's banner and default
	// domain. A client (an initiator) gives its xauth user and password;
	// the rest it is given.
	XAuth         *XAuth      `yaml:"xauth"`
	Pool          Prefix      `yaml:"pool"`
	DNS           []Addr      `yaml:"dns"`
	NBNS          []Addr      `yaml:"nbns"`
	SplitInclude  PrefixList  `yaml:"split-include"`
	ModeCfg       ModeCfgMode `yaml:"modecfg"` // pull (default: the client asks) or push (the gateway sets)
	Banner        string      `yaml:"banner"`
	DefaultDomain string      `yaml:"default-domain"`

	// This side's own settings where they differ from the connection's
	// (sideopts.go): a troubleshooting lab's mismatch, one side configured
	// apart from the other.
	IKE   *SideIKE   `yaml:"ike"`
	Child *SideChild `yaml:"child"`

	// Certs is the material of the files above, read once by validation and
	// completed by the lab PKI at deploy (Lab.UseLabPKI); nil under psk.
	Certs *Certs `yaml:"-"`

	addrGiven bool   // the lab file gave address:
	addrWhy   string // how Address was chosen, for `validate`
	idGiven   bool   // the lab file gave id:
}

func (p *Peer) fromScalar(n *yaml.Node) error {
	p.Node = n.Value
	return nil
}

// Auth is how the peers authenticate in phase 1.
type Auth struct {
	Method AuthMethod `yaml:"method"` // psk (default), pubkey, rsa-encryption, rsa-encryption-revised, xauth-psk, xauth-pubkey or hybrid
	Secret string     `yaml:"secret"` // psk and xauth-psk only
}

// XAuth is one side's extended authentication (draft-ietf-ipsec-isakmp-
// xauth-06): on the gateway, who may log in, as users or in users-file (its
// users are merged into Users by validation); on a client, its credentials.
type XAuth struct {
	Users     map[string]string `yaml:"users"`      // the gateway: name → password
	UsersFile string            `yaml:"users-file"` // the gateway: name:password lines, relative to the lab file
	User      string            `yaml:"user"`       // a client
	Password  string            `yaml:"password"`   // a client
}

// IKEOptions configures phase 1.
type IKEOptions struct {
	Mode       IKEMode    `yaml:"mode"`      // main (default) or aggressive
	Proposals  []string   `yaml:"proposals"` // default [aes128-sha256-modp2048]
	Lifetime   Duration   `yaml:"lifetime"`  // default 4h, as strongSwan
	DPD        *DPD       `yaml:"dpd"`
	Encap      bool       `yaml:"encap"` // force UDP encapsulation even without a NAT
	NATT       NATTConfig `yaml:"nat-t"` // on (default) or off, or {keepalive: 20s | off}
	Retransmit Retransmit `yaml:"retransmit"`
}

// NATTConfig is NAT traversal (RFC 3947, RFC 3948): `nat-t: off` turns it
// off; `nat-t: {keepalive: 10s}` keeps it on and says how often the side
// behind a NAT sends its one-byte keepalives, `keepalive: off` none at all.
type NATTConfig struct {
	Mode      NATT      `yaml:"mode"`      // on (default) or off
	Keepalive Keepalive `yaml:"keepalive"` // default 20s (RFC 3948 §4), or off
}

func (o *NATTConfig) fromScalar(n *yaml.Node) error { o.Mode = NATT(n.Value); return nil }

// Keepalive is an interval, or "off".
type Keepalive struct {
	Interval time.Duration // 0: the default
	Off      bool
}

// UnmarshalYAML reads "off" or a duration of at least a second.
func (k *Keepalive) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode && (n.Value == "off" || n.ShortTag() == "!!bool" && n.Value == "false") {
		*k = Keepalive{Off: true}
		return nil
	}
	var d Duration
	if err := d.UnmarshalYAML(n); err != nil {
		return fmt.Errorf("keepalive: %v, or off", err)
	}
	if d.Duration < time.Second {
		return fmt.Errorf("keepalive %q: at least 1s (or off); a NAT's UDP timeout is tens of seconds", n.Value)
	}
	*k = Keepalive{Interval: d.Duration}
	return nil
}

// DPD configures RFC 3706 Dead Peer Detection.
type DPD struct {
	Delay   Duration  `yaml:"delay" lab:"required"` // idle time before R-U-THERE
	Timeout Duration  `yaml:"timeout"`              // declare the peer dead after this long without an answer
	Action  DPDAction `yaml:"action"`               // clear (default), restart or hold
}

// Retransmit tunes IKE retransmissions (strongSwan's retransmit_* settings).
type Retransmit struct {
	Timeout Duration `yaml:"timeout"` // first retransmission after this long (default 1s)
	Tries   int      `yaml:"tries"`   // give up after this many retransmissions (default 5)
	Base    float64  `yaml:"base"`    // back-off factor (default 1.8)
}

// ChildOptions configures phase 2 (the IPsec SAs).
type ChildOptions struct {
	LocalTS   PrefixList  `yaml:"local-ts"`  // initiator side; default: the initiator's address (transport)
	RemoteTS  PrefixList  `yaml:"remote-ts"` // responder side
	ESP       []string    `yaml:"esp"`       // default [aes128-sha256] unless ah is given
	AH        []string    `yaml:"ah"`
	Mode      ChildMode   `yaml:"mode"`       // tunnel (default) or transport
	PFS       string      `yaml:"pfs"`        // a DH group for Quick Mode PFS, added to every proposal
	Lifetime  Duration    `yaml:"lifetime"`   // default 1h
	LifeBytes Size        `yaml:"life-bytes"` // hard limit in bytes; rekey at 90%
	Start     StartAction `yaml:"start"`      // trap (default): the first packet starts it; start: at deploy; none: by hand
	ReplayWin int         `yaml:"replay-window"`
}

// PrefixList is one prefix or a list of them.
type PrefixList []Prefix

// UnmarshalYAML accepts one prefix or a list.
func (l *PrefixList) UnmarshalYAML(n *yaml.Node) error {
	items := []*yaml.Node{n}
	if n.Kind == yaml.SequenceNode {
		items = n.Content
	}
	for _, it := range items {
		var p Prefix
		if err := p.UnmarshalYAML(it); err != nil {
			return &itemError{line: it.Line, col: it.Column, err: err}
		}
		*l = append(*l, p)
	}
	return nil
}

// itemError is a problem with one item of a list that reads its own YAML,
// placed at the item rather than at the list.
type itemError struct {
	line, col int
	err       error
}

func (e *itemError) Error() string             { return e.err.Error() }
func (e *itemError) Position() (line, col int) { return e.line, e.col }

// Duration is a time.Duration written with a unit ("30s", "1h").
type Duration struct{ time.Duration }

// UnmarshalYAML parses a duration with a unit.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode || n.ShortTag() == "!!int" || n.ShortTag() == "!!float" {
		return fmt.Errorf("a duration needs a unit, like 30s, 500ms or 1h")
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil || v < 0 {
		return fmt.Errorf("%q is not a duration (write it like 30s, 500ms or 1h)", n.Value)
	}
	d.Duration = v
	return nil
}

// Size is a byte count written with an optional unit: 1000, 64kb, 10mb, 1gb
// (powers of 1000, as strongSwan's life_bytes) or 64KiB, 10MiB (powers of 1024).
type Size int64

// UnmarshalYAML parses a byte size.
func (s *Size) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseSize(n.Value)
	if n.Kind != yaml.ScalarNode || err != nil {
		return fmt.Errorf("%q is not a size in bytes (write it like 1000, 64kb or 10mb)", n.Value)
	}
	*s = Size(v)
	return nil
}

// ParseSize parses a byte size such as "10mb" or "64KiB".
func ParseSize(s string) (int64, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	mult := int64(1)
	for _, u := range []struct {
		suf string
		m   int64
	}{{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30}, {"kb", 1e3}, {"mb", 1e6}, {"gb", 1e9}, {"k", 1e3}, {"m", 1e6}, {"g", 1e9}, {"b", 1}} {
		if strings.HasSuffix(t, u.suf) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suf)), u.m
			break
		}
	}
	v, err := strconv.ParseInt(t, 10, 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("bad size %q", s)
	}
	return v * mult, nil
}

// The settings a lab file writes as one word from a list. Validation fills
// the default (the first of each list in validate.go) and refuses any other
// word, so that past it a value is always one of these.
type (
	AuthMethod  string // phase 1 authentication (RFC 2409 §5)
	IKEMode     string // phase 1 exchange
	NATT        string // NAT traversal on or off
	DPDAction   string // what DPD does with a dead peer's SAs
	ChildMode   string // the IPsec SAs' mode
	StartAction string // when the child's SAs are negotiated
	ModeCfgMode string // who starts Mode Config
	RemotePeers string // whom a responder serves
)

const (
	AuthPSK           AuthMethod = "psk"                    // pre-shared key (§5.4)
	AuthPubkey        AuthMethod = "pubkey"                 // signatures, RSA or ECDSA as the key is (§5.1, RFC 4754); swanctl's word
	AuthRSAEncryption AuthMethod = "rsa-encryption"         // public-key encryption (§5.2)
	AuthRSARevised    AuthMethod = "rsa-encryption-revised" // revised public-key encryption (§5.3)
	// Remote access: phase 1, then XAUTH asks the client's user for a
	// password (strongSwan's IKEv1 second round: auth = xauth on the
	// client, xauth-generic on the server).
	AuthXAuthPSK    AuthMethod = "xauth-psk"    // a (group) pre-shared key, then XAUTH
	AuthXAuthPubkey AuthMethod = "xauth-pubkey" // certificates on both sides, then XAUTH
	AuthHybrid      AuthMethod = "hybrid"       // the gateway's certificate, the client's XAUTH alone (draft-ietf-ipsec-isakmp-hybrid-auth-05)

	MainMode       IKEMode     = "main"
	AggressiveMode IKEMode     = "aggressive"
	NATTOn         NATT        = "on"
	NATTOff        NATT        = "off"
	DPDClear       DPDAction   = "clear"
	DPDRestart     DPDAction   = "restart"
	DPDHold        DPDAction   = "hold"
	TunnelMode     ChildMode   = "tunnel"
	TransportMode  ChildMode   = "transport"
	StartTrap      StartAction = "trap"  // the first matching packet starts it
	StartAtDeploy  StartAction = "start" // the initiator starts it when the lab is up
	StartNone      StartAction = "none"  // by hand (tunnel up, the script)
	ModeCfgPull    ModeCfgMode = "pull"  // the client REQUESTs its address
	ModeCfgPush    ModeCfgMode = "push"  // the gateway SETs it
	RemoteAny      RemotePeers = "any"   // the responder serves any peer, from any address, with any identity
)

// Certificates reports whether the method authenticates with certificates
// (every method but psk and xauth-psk; hybrid the gateway alone).
func (m AuthMethod) Certificates() bool { return !m.PSK() }

// PSK reports the methods that authenticate phase 1 with a pre-shared key.
func (m AuthMethod) PSK() bool { return m == AuthPSK || m == AuthXAuthPSK || m == "" }

// XAuth reports the methods that run XAUTH after phase 1.
func (m AuthMethod) XAuth() bool { return m == AuthXAuthPSK || m == AuthXAuthPubkey || m == AuthHybrid }

// Encrypts reports the public-key encryption methods, which need the peer's
// RSA key before the exchange starts.
func (m AuthMethod) Encrypts() bool { return m == AuthRSAEncryption || m == AuthRSARevised }

// KeyType is a lab PKI key's algorithm and size, in the lab file's words
// (pki.KeyTypes).
type KeyType = pki.KeyType

// Clients returns the connection's initiators, in the order written: the
// one of initiator:, or those of initiators:.
func (c *IPsecConn) Clients() []*Peer {
	if len(c.Initiators) == 0 {
		return []*Peer{&c.Initiator}
	}
	out := make([]*Peer, len(c.Initiators))
	for i := range c.Initiators {
		out[i] = &c.Initiators[i]
	}
	return out
}

// clientKey is where client i of c is written: "initiator" or "initiators[i]".
func (c *IPsecConn) clientKey(i int) string {
	if len(c.Initiators) == 0 {
		return "initiator"
	}
	return fmt.Sprintf("initiators[%d]", i)
}

// ClientOf returns the client of c on node, or nil.
func (c *IPsecConn) ClientOf(node string) *Peer {
	for _, p := range c.Clients() {
		if p.Node == node {
			return p
		}
	}
	return nil
}

// AnyPeer reports a responder that serves any peer: remote: any, given or
// implied by several initiators or a pool (filled by validation).
func (c *IPsecConn) AnyPeer() bool { return c.Remote == RemoteAny }

// ModeConfig reports whether the connection lends addresses by Mode Config
// (the responder has a pool).
func (c *IPsecConn) ModeConfig() bool { return c.Responder.Pool.IsValid() }

// rsaKey reports an RSA key type.
func rsaKey(k KeyType) bool { return k == pki.RSA2048 || k == pki.RSA3072 }

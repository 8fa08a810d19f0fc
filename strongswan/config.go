package strongswan

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Config is one strongSwan node: the connections it knows.
type Config struct {
	Connections []Connection
}

// Connection is one swanctl.conf `connections.<name>` section: an IKEv1 SA
// configuration with its authentication and CHILD SA configurations. (charon
// speaks IKEv2 too; this package always writes version = 1.)
type Connection struct {
	Name        string   // section name; the name vici's initiate and terminate take
	LocalAddrs  []string // local_addrs: addresses, ranges or %any
	RemoteAddrs []string // remote_addrs
	Aggressive  bool     // aggressive: IKEv1 Aggressive Mode instead of Main Mode
	Encap       bool     // encap: force UDP encapsulation (kernel-libipsec does anyway)

	// Proposals are IKE proposals such as "aes128-sha256-modp2048" (proposals).
	Proposals []string

	// Authentication: "psk" (the default when empty) or "pubkey" (RSA or
	// ECDSA signatures with X.509 certificates, RFC 2409 §5.1, RFC 4754; the
	// method follows from the key). IKEv1 authenticates both peers with one
	// method, so the two must agree.
	LocalAuth, RemoteAuth string

	// LocalID and RemoteID are local.id and remote.id. Empty means charon's
	// default: for psk the IP address; for pubkey the subject DN of the local
	// certificate, and any identity the peer's certificate proves. Besides
	// strongSwan's own forms (an address, "fqdn:", "email:", "keyid:",
	// a bare DN such as "CN=gw-a, O=Lab"), ipseclab's "dn:CN=gw-a, O=Lab" is
	// accepted and written as the bare DN.
	LocalID, RemoteID string

	PSK string // the pre-shared key, for psk

	// Certificate material, for pubkey. Start writes it into the node's
	// swanctl directory (x509/, x509ca/, pkcs8/) and swanctl.conf names it.
	//
	// LocalCerts is this side's chain, leaf first (local.certs names the
	// leaf; intermediates go to x509ca/ so that charon can send them).
	// PrivateKey is the leaf's key, an *rsa.PrivateKey or an
	// *ecdsa.PrivateKey on P-256, P-384 or P-521. CACerts are the trust
	// anchors the peer's chain must lead to (remote.cacerts). PeerCert, if
	// set, pins the peer's certificate (remote.certs). A pubkey connection
	// needs LocalCerts, PrivateKey, and CACerts or PeerCert.
	LocalCerts []*x509.Certificate
	PrivateKey crypto.Signer
	CACerts    []*x509.Certificate
	PeerCert   *x509.Certificate

	// IKE SA lifetimes (rekey_time, reauth_time, over_time, rand_time). IKEv1
	// has no rekeying of its own: charon re-establishes the ISAKMP SA.
	RekeyTime, ReauthTime, OverTime, RandTime time.Duration

	// Dead peer detection (RFC 3706): dpd_delay and, for IKEv1, dpd_timeout.
	DPDDelay, DPDTimeout time.Duration

	Children []Child
}

// Child is one `children.<name>` section: a CHILD SA (a pair of IPsec SAs).
type Child struct {
	Name     string
	LocalTS  []string // local_ts, e.g. "10.1.0.0/24"
	RemoteTS []string // remote_ts

	// ESPProposals such as "aes128gcm16-modp2048" or "aes128-sha1"; a DH group
	// in the proposal means PFS in Quick Mode (esp_proposals).
	ESPProposals []string

	Mode        string // mode: "tunnel" (default); kernel-libipsec does nothing else
	StartAction string // start_action: "none" (default), "trap" or "start"
	CloseAction string // close_action: "none", "clear", "trap" or "start"
	DPDAction   string // dpd_action: "clear", "trap" or "restart"

	// Lifetimes in time, bytes and packets: soft (rekey_*), hard (life_*) and
	// the jitter subtracted from the soft limit (rand_time).
	RekeyTime, LifeTime, RandTime time.Duration
	RekeyBytes, LifeBytes         uint64
	RekeyPackets, LifePackets     uint64
}

// sectionName is what strongSwan's settings parser accepts as a section name
// without quoting, narrowed to what is sensible in a lab.
var sectionName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

var (
	validModes          = []string{"", "tunnel"}
	validStartActions   = []string{"", "none", "trap", "start"}
	validCloseActions   = []string{"", "none", "clear", "trap", "start"}
	validDPDActions     = []string{"", "clear", "trap", "restart"}
	validAuthMethods    = []string{"", "psk", "pubkey"}
	errNoConnections    = errors.New("strongswan: configuration has no connections")
	errControlCharacter = errors.New("contains a control character")
)

// Validate checks what charon would otherwise reject late, or silently
// misread.
func (c Config) Validate() error {
	if len(c.Connections) == 0 {
		return errNoConnections
	}
	seen := map[string]bool{}
	children := map[string]string{}
	for _, conn := range c.Connections {
		if err := conn.validate(); err != nil {
			return fmt.Errorf("strongswan: connection %q: %w", conn.Name, err)
		}
		if seen[conn.Name] {
			return fmt.Errorf("strongswan: connection %q defined twice", conn.Name)
		}
		seen[conn.Name] = true
		// vici's initiate finds a CHILD SA configuration by its name alone, so
		// child names must be unique across the node.
		for _, ch := range conn.Children {
			if other, ok := children[ch.Name]; ok {
				return fmt.Errorf("strongswan: child %q is defined in both %q and %q", ch.Name, other, conn.Name)
			}
			children[ch.Name] = conn.Name
		}
	}
	return nil
}

func (conn Connection) validate() error {
	if !sectionName.MatchString(conn.Name) {
		return fmt.Errorf("name must match %s", sectionName)
	}
	if len(conn.RemoteAddrs) == 0 {
		return errors.New("remote_addrs is empty")
	}
	if err := conn.validateAuth(); err != nil {
		return err
	}
	for _, d := range []time.Duration{conn.RekeyTime, conn.ReauthTime, conn.OverTime, conn.RandTime, conn.DPDDelay, conn.DPDTimeout} {
		if d < 0 || d%time.Second != 0 {
			return fmt.Errorf("duration %v: must be whole non-negative seconds", d)
		}
	}
	if err := noControl(append(append(append([]string{conn.LocalID, conn.RemoteID}, conn.LocalAddrs...), conn.RemoteAddrs...), conn.Proposals...)...); err != nil {
		return err
	}
	for _, ch := range conn.Children {
		if err := ch.validate(); err != nil {
			return fmt.Errorf("child %q: %w", ch.Name, err)
		}
	}
	return nil
}

func (conn Connection) validateAuth() error {
	for _, a := range []string{conn.LocalAuth, conn.RemoteAuth} {
		if !oneOf(a, validAuthMethods) {
			return fmt.Errorf("auth %q: want psk or pubkey", a)
		}
	}
	if conn.localAuth() != conn.remoteAuth() {
		return fmt.Errorf("local auth %s, remote auth %s: IKEv1 authenticates both peers with the same method", conn.localAuth(), conn.remoteAuth())
	}
	if conn.localAuth() == "psk" {
		if conn.PSK == "" {
			return errors.New("psk authentication needs a secret")
		}
		if len(conn.LocalCerts) > 0 || conn.PrivateKey != nil || len(conn.CACerts) > 0 || conn.PeerCert != nil {
			return errors.New("certificates or a private key are given, but auth is psk: set LocalAuth and RemoteAuth to pubkey")
		}
		return nil
	}
	if len(conn.LocalCerts) == 0 {
		return errors.New("pubkey authentication needs a local certificate (LocalCerts)")
	}
	if conn.PrivateKey == nil {
		return errors.New("pubkey authentication needs the private key of the local certificate (PrivateKey)")
	}
	if len(conn.CACerts) == 0 && conn.PeerCert == nil {
		return errors.New("pubkey authentication needs a CA certificate to trust (CACerts) or the peer's certificate (PeerCert)")
	}
	for i, c := range slices.Concat(conn.LocalCerts, conn.CACerts) {
		if c == nil || len(c.Raw) == 0 {
			return fmt.Errorf("certificate %d is empty: pass parsed certificates (x509.ParseCertificate)", i)
		}
	}
	if conn.PeerCert != nil && len(conn.PeerCert.Raw) == 0 {
		return errors.New("peer certificate is empty: pass a parsed certificate (x509.ParseCertificate)")
	}
	if err := checkPrivateKey(conn.PrivateKey); err != nil {
		return err
	}
	leaf := conn.LocalCerts[0]
	if pub, ok := leaf.PublicKey.(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(conn.PrivateKey.Public()) {
		return fmt.Errorf("the private key does not belong to the local certificate %q", leaf.Subject)
	}
	return nil
}

// checkPrivateKey accepts the keys IKEv1 signs with (RSA, method 3; ECDSA on
// the curves of methods 9, 10 and 11) and that can be written to a file.
func checkPrivateKey(k crypto.Signer) error {
	switch k := k.(type) {
	case *rsa.PrivateKey:
		return nil
	case *ecdsa.PrivateKey:
		switch k.Curve {
		case elliptic.P256(), elliptic.P384(), elliptic.P521():
			return nil
		}
		return fmt.Errorf("ECDSA key on %s: IKEv1 signs with P-256, P-384 or P-521 only (RFC 4754)", k.Curve.Params().Name)
	default:
		return fmt.Errorf("private key of type %T: want *rsa.PrivateKey or *ecdsa.PrivateKey", k)
	}
}

func (conn Connection) localAuth() string  { return orDefault(conn.LocalAuth, "psk") }
func (conn Connection) remoteAuth() string { return orDefault(conn.RemoteAuth, "psk") }

func (ch Child) validate() error {
	if !sectionName.MatchString(ch.Name) {
		return fmt.Errorf("name must match %s", sectionName)
	}
	if len(ch.LocalTS) == 0 || len(ch.RemoteTS) == 0 {
		return errors.New("local_ts and remote_ts are required")
	}
	if err := noControl(append(append([]string{}, ch.LocalTS...), ch.RemoteTS...)...); err != nil {
		return err
	}
	switch {
	case !oneOf(ch.Mode, validModes):
		return fmt.Errorf("mode %q: kernel-libipsec supports tunnel mode only", ch.Mode)
	case !oneOf(ch.StartAction, validStartActions):
		return fmt.Errorf("start_action %q: want none, trap or start", ch.StartAction)
	case !oneOf(ch.CloseAction, validCloseActions):
		return fmt.Errorf("close_action %q: want none, clear, trap or start", ch.CloseAction)
	case !oneOf(ch.DPDAction, validDPDActions):
		return fmt.Errorf("dpd_action %q: want clear, trap or restart", ch.DPDAction)
	}
	for _, d := range []time.Duration{ch.RekeyTime, ch.LifeTime, ch.RandTime} {
		if d < 0 || d%time.Second != 0 {
			return fmt.Errorf("duration %v: must be whole non-negative seconds", d)
		}
	}
	return noControl(ch.ESPProposals...)
}

func oneOf(s string, set []string) bool {
	for _, v := range set {
		if s == v {
			return true
		}
	}
	return false
}

func noControl(ss ...string) error {
	for _, s := range ss {
		if strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			return fmt.Errorf("%q %w", s, errControlCharacter)
		}
	}
	return nil
}

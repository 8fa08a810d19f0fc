package strongswan

import (
	"errors"
	"fmt"
	"regexp"
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

	// Authentication. Only pre-shared keys are supported: LocalAuth and
	// RemoteAuth are "psk" when empty, and PSK is the secret.
	LocalAuth, RemoteAuth string
	LocalID, RemoteID     string // local.id and remote.id; empty means the IP address
	PSK                   string

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
	validAuthMethods    = []string{"", "psk"}
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
	if !oneOf(conn.LocalAuth, validAuthMethods) || !oneOf(conn.RemoteAuth, validAuthMethods) {
		return fmt.Errorf("auth %q/%q: only psk is supported", conn.LocalAuth, conn.RemoteAuth)
	}
	if conn.PSK == "" {
		return errors.New("psk authentication needs a secret")
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

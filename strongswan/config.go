package strongswan

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strings"
	"time"
)

// Config is one strongSwan node: the connections it knows, and the address
// pools its remote-access connections lend.
type Config struct {
	Connections []Connection

	// Pools are swanctl.conf's `pools` sections: the virtual addresses and
	// Mode Config attributes a gateway hands its clients (Connection.Pools
	// names them).
	Pools []Pool
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

	// Authentication, the first round: "psk" (the default when empty),
	// "pubkey" (RSA or ECDSA signatures with X.509 certificates, RFC 2409
	// §5.1, RFC 4754; the method follows from the key) or "xauth" (Hybrid,
	// below). IKEv1 authenticates both peers with one method, so the two
	// must agree: psk with psk, pubkey with pubkey. The one exception is
	// Hybrid authentication (draft-ietf-ipsec-isakmp-hybrid-auth-05): the
	// client's LocalAuth is "xauth" and its RemoteAuth "pubkey", the
	// gateway's LocalAuth "pubkey" and its RemoteAuth "xauth". The gateway
	// signs with its RSA certificate, the client proves itself with XAUTH
	// alone, and charon 5.9.8 offers only the initiator's form
	// (HybridInitRSA, 64221): the client must be the initiator.
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

	// SendCert (send_cert) says when charon sends its certificate:
	// "ifasked" (charon's default: when the peer sent a CERTREQ),
	// "always" or "never". A Hybrid gateway defaults to "always": vpnc
	// asks for nothing and still wants the certificate in Aggressive
	// Mode's second message.
	SendCert string

	// Remote access: XAUTH (draft-ietf-ipsec-isakmp-xauth-06) as a second
	// authentication round after psk or pubkey, or as the only one of the
	// client in Hybrid mode, and Mode Config (draft-dukes-ike-mode-cfg-02).
	// Phase 1's auth method becomes XAUTHInitPreShared (65001) or
	// XAUTHInitRSA (65005) when the client initiates, as it does; with
	// pubkey, charon 5.9.8 knows the RSA forms only.
	//
	// XAuthID and XAuthPassword make this side the XAUTH client:
	// `local-xauth { auth = xauth; xauth_id = XAuthID }` (or, with
	// LocalAuth "xauth", the first round itself) and an xauth secret for
	// the name.
	XAuthID, XAuthPassword string

	// XAuthUsers makes this side the XAUTH gateway: `remote-xauth { auth =
	// xauth-generic }` (or, with RemoteAuth "xauth", the first round), and
	// one xauth secret per user name. The xauth-generic plugin checks the
	// name and password the client sends against them; charon asks once,
	// and a wrong password ends the ISAKMP SA.
	XAuthUsers map[string]string

	// VIPs (vips) are the virtual addresses a client asks Mode Config for;
	// "0.0.0.0" asks for any. The address charon gets is its local traffic
	// selector (leave Child.LocalTS empty: dynamic).
	VIPs []string

	// Pools (pools) names the Config.Pools a gateway lends addresses and
	// attributes from. Its children's RemoteTS may be left empty (dynamic:
	// the client's virtual address).
	Pools []string

	// Push makes Mode Config push instead of pull (pull = no): the gateway
	// SETs the address right after XAUTH rather than waiting for the
	// client's REQUEST. Set it on both sides; charon's client waits for
	// the SET when it is set, and sends a REQUEST when not.
	Push bool

	// IKE SA lifetimes (rekey_time, reauth_time, over_time, rand_time). IKEv1
	// has no rekeying of its own: charon re-establishes the ISAKMP SA.
	RekeyTime, ReauthTime, OverTime, RandTime time.Duration

	// Dead peer detection (RFC 3706): dpd_delay and, for IKEv1, dpd_timeout.
	DPDDelay, DPDTimeout time.Duration

	Children []Child
}

// Pool is one swanctl.conf `pools.<name>` section: the addresses a gateway
// lends with Mode Config, and the attributes sent with each.
type Pool struct {
	Name string

	// Addrs (addrs) is a CIDR subnet ("10.9.0.0/24") or a range
	// ("10.9.0.10-10.9.0.99"). charon lends from a subnet every address
	// but the network and broadcast ones.
	Addrs string

	DNS  []string // dns: INTERNAL_IP4_DNS (3)
	NBNS []string // nbns: INTERNAL_IP4_NBNS (4)

	// SplitInclude (split_include) sends the networks as Cisco Unity
	// UNITY_SPLIT_INCLUDE (28676), to every client. With the unity
	// plugin, which this package loads, charon also sends its children's
	// local selectors (other than 0.0.0.0/0) in that attribute by itself,
	// to clients that sent the Unity vendor ID, as vpnc does, and charon
	// does when it is a remote-access client here (strongswan.conf's
	// cisco_unity, see RemoteAccess); leave SplitInclude empty then, or the
	// networks arrive twice.
	SplitInclude []string

	// Cisco Unity strings, as the numbered attributes swanctl.conf accepts:
	// UNITY_BANNER (28672) and UNITY_DEF_DOMAIN (28674).
	Banner, DefaultDomain string
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
	// the most subtracted at random from the soft limit (rand_time,
	// rand_bytes; 0 leaves charon's default, None writes 0).
	RekeyTime, LifeTime, RandTime time.Duration
	RekeyBytes, LifeBytes         uint64
	RandBytes                     int64
	RekeyPackets, LifePackets     uint64
}

// None, as Child.RandTime or RandBytes, writes 0: no random part.
const None = -1

// sectionName is what strongSwan's settings parser accepts as a section name
// without quoting, narrowed to what is sensible in a lab.
var sectionName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

var (
	validModes          = []string{"", "tunnel"}
	validStartActions   = []string{"", "none", "trap", "start"}
	validCloseActions   = []string{"", "none", "clear", "trap", "start"}
	validDPDActions     = []string{"", "clear", "trap", "restart"}
	validSendCert       = []string{"", "ifasked", "always", "never"}
	validAuthMethods    = []string{"", "psk", "pubkey", "xauth"}
	errNoConnections    = errors.New("strongswan: configuration has no connections")
	errControlCharacter = errors.New("contains a control character")
)

// Validate checks what charon would otherwise reject late, or silently
// misread.
func (c Config) Validate() error {
	if len(c.Connections) == 0 {
		return errNoConnections
	}
	pools := map[string]bool{}
	for _, p := range c.Pools {
		if err := p.validate(); err != nil {
			return fmt.Errorf("strongswan: pool %q: %w", p.Name, err)
		}
		if pools[p.Name] {
			return fmt.Errorf("strongswan: pool %q defined twice", p.Name)
		}
		pools[p.Name] = true
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
		for _, p := range conn.Pools {
			if !pools[p] {
				return fmt.Errorf("strongswan: connection %q: pool %q is not among the configuration's Pools", conn.Name, p)
			}
		}
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
	if !oneOf(conn.SendCert, validSendCert) {
		return fmt.Errorf("send_cert %q: want ifasked, always or never", conn.SendCert)
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
		// Empty selectors are charon's "dynamic": the address of the
		// ISAKMP SA, or the virtual one Mode Config lent.
		if len(ch.LocalTS) == 0 && len(conn.VIPs) == 0 {
			return fmt.Errorf("child %q: local_ts is required (it may be left empty, dynamic, only on a client with VIPs)", ch.Name)
		}
		if len(ch.RemoteTS) == 0 && len(conn.Pools) == 0 {
			return fmt.Errorf("child %q: remote_ts is required (it may be left empty, dynamic, only on a gateway with Pools)", ch.Name)
		}
	}
	return nil
}

func (conn Connection) validateAuth() error {
	for _, a := range []string{conn.LocalAuth, conn.RemoteAuth} {
		if !oneOf(a, validAuthMethods) {
			return fmt.Errorf("auth %q: want psk, pubkey or xauth", a)
		}
	}
	local, remote := conn.localAuth(), conn.remoteAuth()
	switch {
	case local == remote && local != "xauth":
	case local == "xauth" && remote == "pubkey", local == "pubkey" && remote == "xauth":
		// Hybrid.
	default:
		return fmt.Errorf("local auth %s, remote auth %s: IKEv1 authenticates both peers with the same method, "+
			"except in Hybrid mode (xauth on the client's side, pubkey on the gateway's)", local, remote)
	}
	if err := conn.validateXAuth(); err != nil {
		return err
	}
	if local == "psk" {
		if conn.PSK == "" {
			return errors.New("psk authentication needs a secret")
		}
		if len(conn.LocalCerts) > 0 || conn.PrivateKey != nil || len(conn.CACerts) > 0 || conn.PeerCert != nil {
			return errors.New("certificates or a private key are given, but auth is psk: set LocalAuth and RemoteAuth to pubkey")
		}
		return nil
	}
	if conn.PSK != "" {
		return fmt.Errorf("a pre-shared key is given, but auth is %s/%s", local, remote)
	}
	if local == "pubkey" {
		if err := conn.validateLocalCert(); err != nil {
			return err
		}
	} else if len(conn.LocalCerts) > 0 || conn.PrivateKey != nil {
		return errors.New("a local certificate or private key is given, but the client of Hybrid authentication proves itself with XAUTH alone")
	}
	if remote == "pubkey" {
		if len(conn.CACerts) == 0 && conn.PeerCert == nil {
			return errors.New("pubkey authentication needs a CA certificate to trust (CACerts) or the peer's certificate (PeerCert)")
		}
		for i, c := range conn.CACerts {
			if c == nil || len(c.Raw) == 0 {
				return fmt.Errorf("CA certificate %d is empty: pass parsed certificates (x509.ParseCertificate)", i)
			}
		}
		if conn.PeerCert != nil && len(conn.PeerCert.Raw) == 0 {
			return errors.New("peer certificate is empty: pass a parsed certificate (x509.ParseCertificate)")
		}
	} else if len(conn.CACerts) > 0 || conn.PeerCert != nil {
		return errors.New("CA or peer certificates are given, but the client of Hybrid authentication has none to show")
	}
	// charon 5.9.8 names only RSA for XAUTH and Hybrid with signatures
	// (XAUTHInitRSA, HybridInitRSA): it has no ECDSA forms of them.
	if conn.RemoteAccess() && local == "pubkey" {
		if _, ok := conn.PrivateKey.(*rsa.PrivateKey); !ok {
			return fmt.Errorf("XAUTH and Hybrid with certificates need an RSA key: charon 5.9.8 knows XAUTHInitRSA and HybridInitRSA only, and this key is %T", conn.PrivateKey)
		}
	}
	return nil
}

func (conn Connection) validateLocalCert() error {
	if len(conn.LocalCerts) == 0 {
		return errors.New("pubkey authentication needs a local certificate (LocalCerts)")
	}
	if conn.PrivateKey == nil {
		return errors.New("pubkey authentication needs the private key of the local certificate (PrivateKey)")
	}
	for i, c := range conn.LocalCerts {
		if c == nil || len(c.Raw) == 0 {
			return fmt.Errorf("certificate %d is empty: pass parsed certificates (x509.ParseCertificate)", i)
		}
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

// validateXAuth checks the XAUTH and Mode Config settings: one side is the
// client (a name and password, maybe virtual addresses), the other the
// gateway (users, maybe pools).
func (conn Connection) validateXAuth() error {
	client := conn.XAuthID != "" || conn.XAuthPassword != ""
	gateway := len(conn.XAuthUsers) > 0
	switch {
	case client && gateway:
		return errors.New("XAuthID and XAuthUsers are both set: a connection is either the XAUTH client or the gateway")
	case client && (conn.XAuthID == "" || conn.XAuthPassword == ""):
		return errors.New("an XAUTH client needs both XAuthID and XAuthPassword")
	case conn.localAuth() == "xauth" && !client:
		return errors.New(`LocalAuth "xauth" (the Hybrid client) needs XAuthID and XAuthPassword`)
	case conn.remoteAuth() == "xauth" && !gateway:
		return errors.New(`RemoteAuth "xauth" (the Hybrid gateway) needs XAuthUsers`)
	case client && len(conn.Pools) > 0:
		return errors.New("an XAUTH client lends no addresses: Pools belong on the gateway")
	case gateway && len(conn.VIPs) > 0:
		return errors.New("an XAUTH gateway asks for no virtual address: VIPs belong on the client")
	case len(conn.VIPs) > 0 && len(conn.Pools) > 0:
		return errors.New("VIPs and Pools are both set: a connection either asks for an address or lends them")
	}
	for user, password := range conn.XAuthUsers {
		if user == "" || password == "" {
			return fmt.Errorf("XAUTH user %q: name and password must not be empty", user)
		}
		if err := noControl(user); err != nil {
			return err
		}
	}
	if err := noControl(conn.XAuthID); err != nil {
		return err
	}
	for _, v := range conn.VIPs {
		if _, err := netip.ParseAddr(v); err != nil {
			return fmt.Errorf("vips %q: want an address, 0.0.0.0 for any", v)
		}
	}
	for _, p := range conn.Pools {
		if !sectionName.MatchString(p) {
			return fmt.Errorf("pool name %q must match %s", p, sectionName)
		}
	}
	return nil
}

// RemoteAccess reports whether the connection uses XAUTH or Mode Config.
func (conn Connection) RemoteAccess() bool {
	return conn.XAuthID != "" || len(conn.XAuthUsers) > 0 || len(conn.VIPs) > 0 || len(conn.Pools) > 0 ||
		conn.localAuth() == "xauth" || conn.remoteAuth() == "xauth"
}

// RemoteAccess reports whether any connection uses XAUTH or Mode Config:
// charon then announces Cisco Unity (cisco_unity), so that a gateway sends
// it split-include networks and it narrows its tunnel to them.
func (c Config) RemoteAccess() bool {
	for _, conn := range c.Connections {
		if conn.RemoteAccess() {
			return true
		}
	}
	return false
}

func (p Pool) validate() error {
	if !sectionName.MatchString(p.Name) {
		return fmt.Errorf("name must match %s", sectionName)
	}
	if _, err := netip.ParsePrefix(p.Addrs); err != nil {
		from, to, ok := strings.Cut(p.Addrs, "-")
		a, errA := netip.ParseAddr(strings.TrimSpace(from))
		b, errB := netip.ParseAddr(strings.TrimSpace(to))
		if !ok || errA != nil || errB != nil || a.Is4() != b.Is4() || b.Less(a) {
			return fmt.Errorf("addrs %q: want a subnet (10.9.0.0/24) or a range (10.9.0.10-10.9.0.99)", p.Addrs)
		}
	}
	for _, l := range [][]string{p.DNS, p.NBNS} {
		for _, a := range l {
			if _, err := netip.ParseAddr(a); err != nil {
				return fmt.Errorf("%q: want an address", a)
			}
		}
	}
	for _, n := range p.SplitInclude {
		if _, err := netip.ParsePrefix(n); err != nil {
			return fmt.Errorf("split_include %q: want a subnet", n)
		}
	}
	return noControl(p.Banner, p.DefaultDomain)
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

func (conn Connection) localAuth() string { return orDefault(conn.LocalAuth, "psk") }

// sendCert is send_cert as written: a Hybrid gateway's default is always.
func (conn Connection) sendCert() string {
	if conn.SendCert == "" && conn.remoteAuth() == "xauth" {
		return "always"
	}
	return conn.SendCert
}
func (conn Connection) remoteAuth() string { return orDefault(conn.RemoteAuth, "psk") }

func (ch Child) validate() error {
	if !sectionName.MatchString(ch.Name) {
		return fmt.Errorf("name must match %s", sectionName)
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
	if ch.RandBytes < 0 && ch.RandBytes != None {
		return fmt.Errorf("rand_bytes %d: must not be negative", ch.RandBytes)
	}
	for _, d := range []time.Duration{ch.RekeyTime, ch.LifeTime, ch.RandTime} {
		if d == None && d == ch.RandTime {
			continue
		}
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

package vpnc

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// Config is one vpnc client: the gateway it connects to and what it proves,
// in the words of vpnc's configuration file (vpnc --long-help lists them).
type Config struct {
	// Gateway (IPSec gateway) is the address of the gateway.
	Gateway netip.Addr

	// GroupID (IPSec ID) is the group name: vpnc sends it as its phase 1
	// identity, an ID_KEY_ID, in Aggressive Mode, and the gateway picks the
	// group's pre-shared key by it.
	GroupID string

	// GroupSecret (IPSec secret) is the group's pre-shared key. vpnc
	// authenticates phase 1 with XAUTHInitPreShared (65001) and needs it
	// even in Hybrid mode, where it goes unused in the hash.
	GroupSecret string

	// Username and Password (Xauth username, Xauth password) answer the
	// gateway's XAUTH request. vpnc runs non-interactively here: a
	// gateway that asks for anything else fails the connection.
	Username, Password string

	// Hybrid (IKE Authmode hybrid) makes vpnc authenticate the gateway by
	// its RSA certificate (HybridInitRSA, 64221), checked against CACerts,
	// instead of by the group secret. Debian's vpnc is built with GnuTLS,
	// which gives it that.
	Hybrid  bool
	CACerts []*x509.Certificate // written to the node's directory (CA-File)

	// NATT (NAT Traversal Mode) is "natt" (RFC 3947 when the gateway
	// speaks it and a NAT is detected; the default), "force-natt" (UDP
	// encapsulation even without a NAT), "none", or "cisco-udp" (Cisco's
	// own encapsulation, usually UDP 10000). Without encapsulation vpnc
	// sends ESP through a raw socket.
	NATT string

	// DHGroup (IKE DH Group) is the group of Aggressive Mode's key
	// exchange: dh1, dh2 (vpnc's default), dh5, dh14 ... dh18. vpnc
	// proposes it with AES-128/192/256 and 3DES, SHA-1 and MD5.
	DHGroup string

	// PFS (Perfect Forward Secrecy) is the group for Quick Mode: nopfs,
	// dh1 ... dh18, or "server" (vpnc's default: whatever the gateway's
	// Cisco Unity PFS attribute says, and no PFS without one).
	PFS string

	// Interface (Interface name) is the TUN device vpnc creates; default
	// "vpnc0".
	Interface string

	// LocalPort (Local Port) is the UDP port of IKE, 500 by default; -1
	// asks vpnc for a random one (its 0).
	LocalPort int

	// DPDIdle (DPD idle timeout (our side)) is how long vpnc waits without
	// hearing from the gateway before it sends R-U-THERE (10 s to 1 day;
	// vpnc's default 300 s). Negative disables DPD both ways.
	DPDIdle time.Duration

	// TargetNetwork (IPSEC target network) is the remote selector vpnc
	// proposes in Quick Mode: one network. Unset, vpnc proposes 0.0.0.0/0,
	// as Cisco's client does, and leaves it to the gateway to narrow it to
	// its split-include networks (charon's unity plugin does). It does not
	// change the routes, which follow the split-include vpnc was sent.
	TargetNetwork netip.Prefix

	// ApplicationVersion (Application version) is what vpnc reports in
	// Mode Config's APPLICATION_VERSION; vpnc's default names itself as a
	// Cisco client.
	ApplicationVersion string
}

var (
	validNATT   = []string{"", "natt", "force-natt", "none", "cisco-udp"}
	validGroups = []string{"dh1", "dh2", "dh5", "dh14", "dh15", "dh16", "dh17", "dh18"}
)

// DefaultInterface is the TUN device vpnc creates when Config.Interface is
// empty.
const DefaultInterface = "vpnc0"

// Validate checks what vpnc would otherwise refuse, misread or ask for on a
// terminal.
func (c Config) Validate() error {
	if !c.Gateway.Is4() {
		return fmt.Errorf("vpnc: gateway %v: want an IPv4 address (vpnc speaks IPv4 only)", c.Gateway)
	}
	for _, f := range []struct{ name, v string }{
		{"group ID", c.GroupID}, {"group secret", c.GroupSecret}, {"user name", c.Username}, {"password", c.Password},
	} {
		if f.v == "" {
			return fmt.Errorf("vpnc: the %s is empty, and vpnc would ask for it on a terminal", f.name)
		}
	}
	for _, f := range []struct{ name, v string }{
		{"group ID", c.GroupID}, {"group secret", c.GroupSecret}, {"user name", c.Username}, {"password", c.Password},
		{"interface name", c.Interface}, {"application version", c.ApplicationVersion},
	} {
		if err := checkValue(f.v); err != nil {
			return fmt.Errorf("vpnc: the %s %w", f.name, err)
		}
	}
	if !oneOf(c.NATT, validNATT) {
		return fmt.Errorf("vpnc: NAT Traversal Mode %q: want natt, force-natt, none or cisco-udp", c.NATT)
	}
	if c.DHGroup != "" && !oneOf(c.DHGroup, validGroups) {
		return fmt.Errorf("vpnc: IKE DH Group %q: want one of %s", c.DHGroup, strings.Join(validGroups, ", "))
	}
	if c.PFS != "" && c.PFS != "nopfs" && c.PFS != "server" && !oneOf(c.PFS, validGroups) {
		return fmt.Errorf("vpnc: Perfect Forward Secrecy %q: want nopfs, server or one of %s", c.PFS, strings.Join(validGroups, ", "))
	}
	if n := len(c.Interface); n > 15 || strings.ContainsAny(c.Interface, "/ ") {
		return fmt.Errorf("vpnc: interface name %q: at most 15 bytes, no '/' or space", c.Interface)
	}
	if c.LocalPort < -1 || c.LocalPort > 65535 {
		return fmt.Errorf("vpnc: local port %d out of range", c.LocalPort)
	}
	if d := c.DPDIdle; d > 0 && (d < 10*time.Second || d > 24*time.Hour || d%time.Second != 0) {
		return fmt.Errorf("vpnc: DPD idle timeout %v: whole seconds from 10s to 24h (or negative: off)", d)
	}
	if t := c.TargetNetwork; t.IsValid() && (!t.Addr().Is4() || t.Masked() != t) {
		return fmt.Errorf("vpnc: target network %s: want an IPv4 network (its host bits zero)", t)
	}
	if c.Hybrid && len(c.CACerts) == 0 {
		return errors.New("vpnc: Hybrid authentication needs the CA certificate that issued the gateway's (CACerts)")
	}
	if !c.Hybrid && len(c.CACerts) > 0 {
		return errors.New("vpnc: CA certificates are given, but only Hybrid authentication checks the gateway's certificate")
	}
	for i, crt := range c.CACerts {
		if crt == nil || len(crt.Raw) == 0 {
			return fmt.Errorf("vpnc: CA certificate %d is empty: pass parsed certificates", i)
		}
	}
	return nil
}

// checkValue refuses what vpnc's line-oriented configuration file cannot
// carry: line breaks and other control characters, and leading or trailing
// blanks, which vpnc strips.
func checkValue(v string) error {
	if strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return errors.New("contains a control character, which vpnc's configuration file cannot hold")
	}
	if strings.TrimLeft(v, " \t") != v || strings.TrimRight(v, " \t") != v {
		return errors.New("starts or ends with a blank, which vpnc would strip")
	}
	return nil
}

func oneOf(s string, set []string) bool {
	for _, v := range set {
		if s == v {
			return true
		}
	}
	return false
}

// Conf renders vpnc's configuration file. script is the path of the script
// vpnc runs to configure the interface, caFile that of the CA certificates
// (Hybrid only). The passwords are in the clear: the file is the node's,
// mode 0600.
func (c Config) Conf(script, caFile string) (string, error) {
	if err := c.Validate(); err != nil {
		return "", err
	}
	var b strings.Builder
	b.WriteString("# Written by ipseclab for vpnc(8).\n")
	set := func(key, value string) {
		if value != "" {
			fmt.Fprintf(&b, "%s %s\n", key, value)
		}
	}
	set("IPSec gateway", c.Gateway.String())
	set("IPSec ID", c.GroupID)
	set("IPSec secret", c.GroupSecret)
	set("Xauth username", c.Username)
	set("Xauth password", c.Password)
	if c.Hybrid {
		set("IKE Authmode", "hybrid")
		set("CA-File", caFile)
	}
	set("NAT Traversal Mode", c.NATT)
	set("IKE DH Group", c.DHGroup)
	set("Perfect Forward Secrecy", c.PFS)
	set("Interface name", c.InterfaceName())
	set("Interface mode", "tun")
	switch {
	case c.LocalPort == -1:
		set("Local Port", "0")
	case c.LocalPort > 0:
		set("Local Port", fmt.Sprint(c.LocalPort))
	}
	switch {
	case c.DPDIdle < 0:
		set("DPD idle timeout (our side)", "0")
	case c.DPDIdle > 0:
		set("DPD idle timeout (our side)", fmt.Sprint(int64(c.DPDIdle/time.Second)))
	}
	if c.TargetNetwork.IsValid() {
		set("IPSEC target network", c.TargetNetwork.String())
	}
	set("Application version", c.ApplicationVersion)
	set("Script", script)
	b.WriteString("Noninteractive\n")
	return b.String(), nil
}

// InterfaceName is the TUN device's name.
func (c Config) InterfaceName() string {
	if c.Interface == "" {
		return DefaultInterface
	}
	return c.Interface
}

func (c Config) caPEM() []byte {
	var out []byte
	for _, crt := range c.CACerts {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: crt.Raw})...)
	}
	return out
}

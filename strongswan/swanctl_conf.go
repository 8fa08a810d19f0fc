package strongswan

import (
	"encoding/hex"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// SwanctlConf renders the configuration as swanctl.conf, the file
// `swanctl --load-all --file` reads. Every value is quoted, so identities with
// commas or spaces keep their meaning.
func (c Config) SwanctlConf() (string, error) {
	if err := c.Validate(); err != nil {
		return "", err
	}
	w := &confWriter{}
	w.open("connections")
	for _, conn := range c.Connections {
		conn.write(w)
	}
	w.close()
	// Private keys need no section: swanctl loads them from pkcs8/, and
	// charon finds each by the public key in the certificate.
	w.open("secrets")
	for _, conn := range c.Connections {
		if conn.localAuth() == "psk" {
			conn.writeSecret(w)
		}
		conn.writeXAuthSecrets(w)
	}
	w.close()
	if len(c.Pools) > 0 {
		w.open("pools")
		for _, p := range c.Pools {
			p.write(w)
		}
		w.close()
	}
	return w.String(), nil
}

// XAUTH backend on the gateway: xauth-generic checks the user's name and
// password against the xauth secrets (Debian's libcharon-extauth-plugins).
const xauthServer = "xauth-generic"

// write renders a pool. Numbered attributes take strings; charon reads one
// that parses as an address as an address, which a banner or domain name
// does not.
func (p Pool) write(w *confWriter) {
	w.open(p.Name)
	w.set("addrs", p.Addrs)
	w.list("dns", p.DNS)
	w.list("nbns", p.NBNS)
	w.list("split_include", p.SplitInclude)
	w.set(strconv.Itoa(unityBanner), p.Banner)
	w.set(strconv.Itoa(unityDefDomain), p.DefaultDomain)
	w.close()
}

// Cisco Unity Mode Config attribute types.
const (
	unityBanner    = 28672
	unityDefDomain = 28674
)

func (conn Connection) write(w *confWriter) {
	w.open(conn.Name)
	w.set("version", "1")
	w.list("local_addrs", conn.LocalAddrs)
	w.list("remote_addrs", conn.RemoteAddrs)
	w.list("proposals", conn.Proposals)
	w.flag("aggressive", conn.Aggressive)
	w.flag("encap", conn.Encap)
	w.seconds("rekey_time", conn.RekeyTime)
	w.seconds("reauth_time", conn.ReauthTime)
	w.seconds("over_time", conn.OverTime)
	w.seconds("rand_time", conn.RandTime)
	w.seconds("dpd_delay", conn.DPDDelay)
	w.seconds("dpd_timeout", conn.DPDTimeout)
	w.set("send_cert", conn.sendCert())
	w.list("vips", conn.VIPs)
	w.list("pools", conn.Pools)
	if conn.Push {
		w.setRaw("pull", "no")
	}

	// Authentication rounds. XAUTH follows psk or pubkey as a second round
	// (local-xauth, remote-xauth), or is the first in Hybrid mode.
	w.open("local")
	if conn.localAuth() == "xauth" {
		w.set("auth", "xauth")
		w.set("xauth_id", conn.XAuthID)
	} else {
		w.set("auth", conn.localAuth())
	}
	w.set("id", swanID(conn.LocalID))
	if conn.localAuth() == "pubkey" {
		w.set("certs", localCertName(conn.Name))
	}
	w.close()
	if conn.XAuthID != "" && conn.localAuth() != "xauth" {
		w.open("local-xauth")
		w.setRaw("round", "2") // after local, whatever the order of sections
		w.set("auth", "xauth")
		w.set("xauth_id", conn.XAuthID)
		w.close()
	}
	w.open("remote")
	if conn.remoteAuth() == "xauth" {
		w.set("auth", xauthServer)
	} else {
		w.set("auth", conn.remoteAuth())
	}
	w.set("id", swanID(conn.RemoteID))
	if conn.remoteAuth() == "pubkey" {
		var cas []string
		for i := range conn.CACerts {
			cas = append(cas, caCertName(conn.Name, i+1))
		}
		w.list("cacerts", cas)
		if conn.PeerCert != nil {
			w.set("certs", peerCertName(conn.Name))
		}
	}
	w.close()
	if len(conn.XAuthUsers) > 0 && conn.remoteAuth() != "xauth" {
		w.open("remote-xauth")
		w.setRaw("round", "2")
		w.set("auth", xauthServer)
		w.close()
	}

	w.open("children")
	for _, ch := range conn.Children {
		w.open(ch.Name)
		w.list("local_ts", ch.LocalTS)
		w.list("remote_ts", ch.RemoteTS)
		w.list("esp_proposals", ch.ESPProposals)
		w.set("mode", orDefault(ch.Mode, "tunnel"))
		w.set("start_action", ch.StartAction)
		w.set("close_action", ch.CloseAction)
		w.set("dpd_action", ch.DPDAction)
		w.seconds("rekey_time", ch.RekeyTime)
		w.seconds("life_time", ch.LifeTime)
		w.seconds("rand_time", ch.RandTime)
		if ch.RandTime == None {
			w.setRaw("rand_time", "0s")
		}
		w.count("rekey_bytes", ch.RekeyBytes)
		w.count("life_bytes", ch.LifeBytes)
		switch {
		case ch.RandBytes == None:
			w.setRaw("rand_bytes", "0")
		case ch.RandBytes > 0:
			w.count("rand_bytes", uint64(ch.RandBytes))
		}
		w.count("rekey_packets", ch.RekeyPackets)
		w.count("life_packets", ch.LifePackets)
		w.close()
	}
	w.close()
	w.close()
}

// writeSecret binds the PSK to the two identities it is for. In IKEv1 Main
// Mode the responder needs the key before it can decrypt the initiator's ID
// payload (RFC 2409 §5.4), so charon picks the connection by address and then
// takes the key shared by that connection's configured identities; those are
// the owners written here.
func (conn Connection) writeSecret(w *confWriter) {
	w.open("ike-" + conn.Name)
	for i, owner := range []string{ownerID(swanID(conn.LocalID), conn.LocalAddrs), ownerID(swanID(conn.RemoteID), conn.RemoteAddrs)} {
		w.set("id-"+strconv.Itoa(i+1), owner)
	}
	w.setRaw("secret", secretValue(conn.PSK))
	w.close()
}

// writeXAuthSecrets writes the client's XAUTH password, or the gateway's
// users, as xauth secrets owned by the user name alone: charon's
// xauth-generic looks the secret up by the name and the gateway's identity,
// and a secret with one owner matches whatever the other side is.
func (conn Connection) writeXAuthSecrets(w *confWriter) {
	users := conn.XAuthUsers
	if conn.XAuthID != "" {
		users = map[string]string{conn.XAuthID: conn.XAuthPassword}
	}
	for i, user := range slices.Sorted(maps.Keys(users)) {
		w.open("xauth-" + conn.Name + "-" + strconv.Itoa(i+1))
		w.set("id", user)
		w.setRaw("secret", secretValue(users[user]))
		w.close()
	}
}

// ownerID is the identity a secret belongs to: the configured ID, or else the
// single address, which is what charon uses as the ID by default. Without
// either the secret has no owner and matches any peer.
func ownerID(id string, addrs []string) string {
	if id != "" {
		return id
	}
	if len(addrs) == 1 {
		if _, err := netip.ParseAddr(addrs[0]); err == nil {
			return addrs[0]
		}
	}
	return ""
}

// secretValue quotes a PSK, except where swanctl would read the quoted text as
// an encoding: values starting 0x are hex and 0s base64 (swanctl.conf(5)), and
// control characters cannot be quoted. Such secrets are written as hex.
func secretValue(psk string) string {
	if strings.HasPrefix(psk, "0x") || strings.HasPrefix(psk, "0s") || noControl(psk) != nil {
		return "0x" + hex.EncodeToString([]byte(psk))
	}
	return quote(psk)
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// confWriter writes strongSwan's settings syntax (strongswan.conf(5)): nested
// `name { ... }` sections and `key = value` lines, indented for the reader.
type confWriter struct {
	strings.Builder
	depth int
}

func (w *confWriter) line(s string) {
	w.WriteString(strings.Repeat("    ", w.depth))
	w.WriteString(s)
	w.WriteString("\n")
}

func (w *confWriter) open(name string) {
	w.line(name + " {")
	w.depth++
}

func (w *confWriter) close() {
	w.depth--
	w.line("}")
}

// set writes a quoted value; an empty value is left out so charon applies its
// default.
func (w *confWriter) set(key, value string) {
	if value != "" {
		w.setRaw(key, quote(value))
	}
}

func (w *confWriter) setRaw(key, value string) { w.line(key + " = " + value) }

// list writes a comma-separated list, the form swanctl takes for list values.
func (w *confWriter) list(key string, values []string) {
	w.set(key, strings.Join(values, ","))
}

func (w *confWriter) flag(key string, on bool) {
	if on {
		w.setRaw(key, "yes")
	}
}

func (w *confWriter) seconds(key string, d time.Duration) {
	if d > 0 {
		w.setRaw(key, fmt.Sprintf("%ds", int64(d/time.Second)))
	}
}

func (w *confWriter) count(key string, n uint64) {
	if n > 0 {
		w.setRaw(key, strconv.FormatUint(n, 10))
	}
}

// quote makes a settings string: inside double quotes, backslash and the quote
// itself are escaped (strongswan.conf(5), "Quoting").
func quote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

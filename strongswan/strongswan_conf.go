package strongswan

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
)

// plugins is charon's explicit plugin list (charon.load). It is the smallest
// set that works here, plus random, and it leaves out on purpose:
//   - stroke, which wants the hard-coded /var/run/charon.ctl;
//   - resolve, which rewrites /etc/resolv.conf;
//   - the per-algorithm plugins (aes, sha1, sha2, md5, hmac, gmp, curve25519,
//     ...): openssl provides every cipher, hash, PRF, MODP, ECP and Curve25519
//     group that IKEv1 and ESP use, and Debian does not ship a des plugin.
//
// kernel-libipsec does ESP in user space over a TUN device (this kernel has no
// ESP); kernel-netlink is still required, for addresses and routes (charon
// refuses to start without a kernel-net implementation); nonce is required
// (NONCE_GEN). random is not needed by the PSK exchanges here, but it is the
// only provider of the strong and true RNGs (openssl registers a weak one
// only), so it stays rather than let some feature fail for want of one.
//
// For certificates (auth = pubkey), all from Debian's libstrongswan: x509
// parses certificates and builds the trust chain, pem unwraps PEM files (vici
// hands charon the files' bytes as they are), pkcs8 parses PKCS#8 private
// keys of any type and pkcs1 PKCS#1 RSA keys and public keys, pubkey loads raw
// public keys (remote.pubkeys). openssl does the RSA and ECDSA arithmetic.
// They come before openssl, in the order of strongSwan's default list.
//
// For remote access (IKEv1 XAUTH, Mode Config, Hybrid): xauth-generic
// (Debian's libcharon-extauth-plugins) is the gateway's XAUTH backend,
// checking names and passwords against xauth secrets, and the client's,
// answering with its secret; unity (libcharon-extra-plugins) speaks Cisco
// Unity: a gateway sends its children's local selectors as split-include
// networks (UNITY_SPLIT_INCLUDE), accepts a client's 0.0.0.0/0 proposal
// (vpnc's) narrowed to them, and a client narrows its tunnel to the
// networks it was sent. The vici plugin keeps the address pools and their
// attributes itself, so attr (pools from strongswan.conf) is not needed;
// Debian does not ship xauth-noauth, and xauth-eap and xauth-pam (RADIUS,
// PAM) have nothing to ask here.
var plugins = []string{
	"kernel-libipsec", "kernel-netlink", "socket-default", "vici", "nonce", "random",
	"x509", "pubkey", "pkcs1", "pkcs8", "pem", "openssl",
	"xauth-generic", "unity",
}

// Paths as charon sees them: its private mount namespace has the node's
// directory mounted on /run (so that /var/run/charon.pid, hard-coded in
// /usr/lib/ipsec/charon, lands there too).
const (
	runInside     = "/run"
	viciFile      = "charon.vici"
	logFile       = "charon.log"
	strongswanCfg = "strongswan.conf"
	swanctlCfg    = "swanctl.conf"
)

// keyLogLevels are the filelog levels at which charon writes what Keys needs:
// IKE 4 dumps Ka, CHD 4 dumps the ESP keys, MGR 2 names the cookies of each
// IKE SA when it is checked in.
var keyLogLevels = map[string]int{"ike": 4, "chd": 4, "mgr": 2}

// Retransmit tunes charon's IKE retransmissions (Options.Retransmit).
type Retransmit struct {
	Timeout time.Duration // the first retransmission after this long
	Tries   int           // give up after this many retransmissions
	Base    float64       // each wait is the one before times Base
}

// strongswanConf renders the node's strongswan.conf. With remoteAccess
// charon sends the Cisco Unity vendor ID (cisco_unity), as a remote-access
// client or gateway of Cisco's world does; without, it stays the plain IKEv1
// peer it always was. keepAlive is Options.KeepAlive, rt Options.Retransmit.
func strongswanConf(levels map[string]int, remoteAccess bool, keepAlive time.Duration, rt Retransmit) string {
	w := &confWriter{}
	w.line("# Written by ipseclab. charon runs in a private mount namespace in which")
	w.line("# this file's directory is mounted on /run.")
	w.open("charon")
	w.setRaw("load", strings.Join(plugins, " "))
	// Aggressive Mode with PSK sends the hash that authenticates the responder
	// in the clear, open to an offline dictionary attack; charon refuses it
	// unless told otherwise. A lab exists to show it.
	w.setRaw("i_dont_care_about_security_and_use_aggressive_mode_psk", "yes")
	if remoteAccess {
		w.setRaw("cisco_unity", "yes")
	}
	switch {
	case keepAlive < 0:
		w.setRaw("keep_alive", "0s") // charon's word for none
	case keepAlive > 0:
		w.setRaw("keep_alive", fmt.Sprintf("%ds", max(1, int(keepAlive.Round(time.Second)/time.Second))))
	}
	if rt.Timeout > 0 {
		w.setRaw("retransmit_timeout", strconv.FormatFloat(rt.Timeout.Seconds(), 'f', -1, 64))
	}
	if rt.Tries > 0 {
		w.setRaw("retransmit_tries", strconv.Itoa(rt.Tries))
	}
	if rt.Base > 0 {
		w.setRaw("retransmit_base", strconv.FormatFloat(rt.Base, 'f', -1, 64))
	}
	w.open("plugins")
	w.open("vici")
	w.setRaw("socket", "unix://"+runInside+"/"+viciFile)
	w.close()
	w.close()
	w.open("filelog")
	w.open("charon")
	w.setRaw("path", runInside+"/"+logFile)
	w.setRaw("time_format", "%F %T")
	w.setRaw("ike_name", "yes") // prefixes lines with <conn|unique-id>, which Keys and LogLine rely on
	w.setRaw("log_level", "yes")
	w.setRaw("append", "yes") // the file exists before charon starts, and its tail is already open
	w.setRaw("flush_line", "yes")
	for _, group := range slices.Sorted(maps.Keys(levels)) {
		w.setRaw(group, fmt.Sprint(levels[group]))
	}
	w.close()
	w.close()
	w.close()
	// charon-systemd logs to the journal by default; there is no journald here.
	w.open("charon-systemd")
	w.open("journal")
	w.setRaw("default", "-1")
	w.close()
	w.close()
	return w.String()
}

// logLevels merges the caller's levels with the defaults and, for key logging,
// raises the groups Keys reads to at least the level that logs the keys.
func logLevels(user map[string]int, keyLog bool) map[string]int {
	levels := map[string]int{"default": 1}
	maps.Copy(levels, user)
	if keyLog {
		for g, need := range keyLogLevels {
			have, ok := levels[g]
			if !ok {
				have = levels["default"]
			}
			levels[g] = max(have, need)
		}
	}
	return levels
}

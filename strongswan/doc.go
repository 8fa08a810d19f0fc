// Package strongswan runs Debian's strongSwan 5.9.8 charon as an independent
// IKEv1 peer inside a lab node's network namespace: it writes the node's
// strongswan.conf and swanctl.conf, starts charon without systemd in a private
// mount namespace, loads the configuration with swanctl, drives it over vici
// (initiate, terminate, list SAs), streams its log, and reads the negotiated
// keys out of that log for Wireshark.
//
// The configuration speaks swanctl.conf's vocabulary (swanctl.conf(5)), so that
// a lab file's `ipsec:` block maps onto it word for word.
//
// # How charon runs
//
//	Start ─▶ writes DIR/{strongswan.conf, swanctl.conf, charon.log}, and DIR/{x509,x509ca,pkcs8}/ for certificates
//	      ─▶ nsenter --net=NETNS unshare --mount sh -c 'mount --bind DIR /run; exec charon-systemd'
//	      ─▶ waits for DIR/charon.vici ─▶ SWANCTL_DIR=DIR swanctl --load-all --file DIR/swanctl.conf --uri unix://DIR/charon.vici
//	      ─▶ with certificates, list-certs: charon holds each certificate, its key, and the CAs
//	Initiate, Terminate, ListSAs, ListCerts ─▶ vici (strongSwan's own github.com/strongswan/govici), one session per command
//	DIR/charon.log ─▶ inotify tail ─▶ Options.OnLog (PublishLog: events.StrongSwanLog) and Keys
//	Stop ─▶ SIGTERM (charon sends Deletes), SIGKILL after StopTimeout; the mount namespace dies with charon
//
// # What charon 5.9.8 does here that one would not guess
//
//   - Debian's /usr/lib/ipsec/charon is in package strongswan-charon, which is
//     not installed; charon-systemd is. It runs fine without systemd, reads the
//     `charon` settings through a fallback, writes no pid file, and logs to the
//     journal unless told not to (strongswan.conf turns that off).
//   - /usr/lib/ipsec/charon writes the hard-coded /var/run/charon.pid, hence the
//     private /run. Every path in strongswan.conf is therefore under /run.
//   - kernel-netlink is required even with kernel-libipsec (charon refuses to
//     start without a kernel-net implementation); openssl alone provides every
//     algorithm; Debian ships no des plugin; stroke and resolve stay out.
//   - kernel-libipsec does UDP-encapsulated ESP only and forces it by faking
//     NAT-D: IKE floats to port 4500 after Main Mode message 4 with no NAT in
//     sight, and list-sas reports nat-remote and nat-any.
//   - libipsec routes the remote selector through its TUN device (ipsec0, MTU
//     1400, routing table 220) with the local selector's address as source, so
//     that address must exist in the namespace (on lo as a /32 if nowhere
//     else).
//   - The Quick Mode responder installs its SAs on message 3, after the
//     initiator's Initiate has returned; the first packets may find no SA.
//   - In Aggressive Mode the initiator sends Quick Mode message 1 right behind
//     Aggressive Mode message 3. charon's worker threads may take the second
//     first; the responder then logs "ignoring QUICK_MODE request while phase
//     1 is incomplete" and the initiator retransmits 4 s later.
//   - swanctl does not read the vici socket from strongswan.conf (--uri after
//     the command word), and complains about every missing credential
//     directory next to swanctl.conf.
//   - swanctl reads its credential directories (x509/, x509ca/, private/,
//     ...) under SWANCTL_DIR, /etc/swanctl by default, whatever --file says;
//     Start points it at the node's directory. A file swanctl cannot load is
//     reported but does not fail --load-all, hence the list-certs check.
//   - With certificates, IKEv1 signs HASH_I/HASH_R as they are: RSA as
//     PKCS#1 v1.5 without DigestInfo (RSA_EMSA_PKCS1_NULL), ECDSA as r|s over
//     the HASH itself (ECDSA_WITH_NULL), and for ECDSA the HASH is made with
//     HMAC-SHA-256/384/512 for P-256/384/521 whatever PRF was negotiated.
//     charon sends an intermediate CA certificate of the local chain in its
//     own CERT payload. An identity "dn:..." is ipseclab's; strongSwan takes
//     the bare DN, its attributes in the certificate's order ("O=Lab,
//     CN=gw-a"), and its "asn1dn:" wants DER in hex.
//   - govici v0.8.0's CallStreaming can lose the events charon sends just
//     before a command's reply; the commands here subscribe instead (call).
//   - The filelog has one-second timestamps (no time_precision in 5.9.8).
//   - The save-keys plugin is not built: keys come from the log at IKE 4,
//     CHD 4 and MGR 2 (the cookies), with ike_name so lines name their SA.
//   - Remote access (IKEv1 XAUTH, Mode Config, Hybrid) needs two plugins
//     beyond the site-to-site set: xauth-generic (Debian's
//     libcharon-extauth-plugins; xauth-noauth is not packaged) and unity
//     (libcharon-extra-plugins). The vici plugin holds the pools and their
//     attributes (swanctl.conf's pools, `split_include` and numbered ones
//     such as 28672 for the Unity banner), so attr is not needed.
//   - charon derives phase 1's auth method from the rounds: psk/psk with an
//     XAUTH round on the initiator's side is XAuthInitPSK (65001), and the
//     responder logs "looking for XAuthInitPSK peer configs"; pubkey with
//     XAUTH is XAuthInitRSA only, and Hybrid (the client's first round
//     xauth, the gateway's pubkey) is HybridInitRSA only: no ECDSA or DSS
//     forms, and no responder-side XAUTH or Hybrid from a gateway that
//     initiates.
//   - The gateway asks for the password once; a wrong one ends the ISAKMP
//     SA after XAUTH STATUS failed ("XAuth authentication of 'alice'
//     failed"), and Initiate on the client fails.
//   - A pool given as a subnet lends every address but the network and
//     broadcast ones (10.9.0.0/24: 254 entries, 10.9.0.1 first). The lease
//     is the XAUTH user's (charon's "EAP identity"), and the same user gets
//     the same address again. get-pools lists the leases.
//   - The client puts its virtual address on libipsec's TUN device (ipsec0)
//     as a /32 and routes the remote selector there from it (table 220).
//     It has no handler for INTERNAL_IP4_DNS without the resolve plugin,
//     left out on purpose, and logs "handling INTERNAL_IP4_DNS attribute
//     failed": harmless.
//   - With the unity plugin and a peer that sent the Unity vendor ID (vpnc
//     does; charon does with cisco_unity = yes, set here for remote-access
//     nodes), the gateway sends its children's local selectors as
//     UNITY_SPLIT_INCLUDE, accepts a client's 0.0.0.0/0 remote selector
//     narrowed to them, and the client narrows its CHILD SA to what it
//     received ("narrowed CHILD_SA to UNITY_SPLIT_INCLUDE 10.1.0.0/24").
//   - Push (pull = no) and pull both work in Main and Aggressive Mode: the
//     gateway SETs ADDR, DNS and U_SPLITINC right after XAUTH, or answers
//     the client's REQUEST for ADDR, U_SPLITINC and U_LOCALLAN.
//   - Wireshark: the ESP key charon calls "initiator" belongs to the SA whose
//     SPI the Quick Mode responder chose; the IKEv1 table is "icookie,Ka"
//     unquoted; ESP decryption needs esp.enable_encryption_decode; and a
//     retransmitted encrypted IKEv1 message decrypts as garbage because
//     Wireshark has already moved the IV on.
package strongswan

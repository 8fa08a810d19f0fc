// Package vpnc runs vpnc, a Cisco-style IKEv1 remote-access client that no
// one here wrote (Debian's package vpnc, 0.5.3+git20220927), inside a lab
// node's network namespace: it writes vpnc's configuration file and a small
// script of ours that applies what Mode Config gave, starts vpnc, turns its
// output into events and stops it on request.
//
// # How vpnc runs
//
//	Start ─▶ writes DIR/{vpnc.conf (0600), vpnc-script, ca.pem for Hybrid}
//	      ─▶ nsenter --net=NETNS -- stdbuf -oL vpnc --no-detach --debug 1 --pid-file DIR/vpnc.pid DIR/vpnc.conf
//	      ─▶ vpnc: Aggressive Mode, XAUTH, Mode Config, then system(DIR/vpnc-script) with reason=connect
//	         ─▶ ip addr/route on vpnc's TUN device; env -0 > DIR/lease.env; a line on stdout
//	      ─▶ Quick Mode, "VPNC started in foreground...": Wait returns the Lease
//	stdout+stderr ─▶ Options.OnLog (PublishLog: events.VPNCLog and the milestones) and the lease
//	Stop ─▶ SIGTERM (vpnc sends Deletes and runs the script with reason=disconnect), SIGKILL after StopTimeout
//
// vpnc needs no private mount namespace: with its own pid file and our
// script it writes nothing outside DIR. Debian's vpnc-script is not used:
// it rewrites /etc/resolv.conf and keeps state under /var/run.
//
// # What vpnc does here that one would not guess
//
//   - It speaks Aggressive Mode only, sends the group name as an ID_KEY_ID,
//     and proposes AES-128/192/256, 3DES and DES with SHA-1 and MD5 in one
//     DH group (IKE DH Group), but takes the gateway's choice of 3DES, DES
//     or MD5 only with its --enable-weak-* options, which are not given
//     here: AES-CBC with SHA-1 is what works.
//   - Its phase 1 method is XAUTHInitPreShared (it prints "psk+xauth"); it
//     cannot do plain PSK without XAUTH against a gateway that wants none.
//   - It always pulls Mode Config, asking for ADDR, MASK, DNS, NBNS and the
//     Cisco Unity attributes (default domain, banner, PFS, split include,
//     split DNS, ...). Against a gateway that pushes (charon's pull = no)
//     it meets a SET where it waits for the REPLY or for Quick Mode's answer
//     and gives up with INVALID_MESSAGE_ID.
//   - It sends the Cisco Unity vendor ID and proposes 0.0.0.0/0 as the
//     remote selector; charon's unity plugin narrows that to the gateway's
//     local selectors and sends them as UNITY_SPLIT_INCLUDE, which vpnc
//     hands the script as CISCO_SPLIT_INC_*.
//   - Against charon with kernel-libipsec, whose faked NAT-D makes every
//     peer look NATed, vpnc reports "remote end behind NAT? YES" and uses
//     RFC 3947 NAT-T (mode 2): ESP in UDP 4500, done by vpnc itself between
//     its TUN device and its socket.
//   - It prints its progress with stdio, block-buffered into a pipe, so its
//     lines would arrive when it exits: stdbuf -oL makes them line-buffered.
//     Its errors go to stderr, prefixed with its path, and some are
//     followed by paragraphs of explanation.
//   - Debian builds it with GnuTLS, not OpenSSL, and, although --long-help
//     says Hybrid needs OpenSSL, it does Hybrid (it prints "hybrid(rsa)",
//     HybridInitRSA). It still wants a group secret, which Hybrid's hashes
//     do not use. It sends no CERTREQ, so charon must be told to send its
//     certificate (send_cert = always, strongswan.Connection's default for a
//     Hybrid gateway). Its GnuTLS check of that certificate
//     (crypto-gnutls.c, verify_last) refuses a signer that is not a CA but
//     not a signer it does not know: a gateway certificate from another CA
//     passes, so its Hybrid mode does not authenticate the gateway.
//   - A wrong group secret fails on the gateway's hash ("hash comparison
//     failed ... check group password!") before XAUTH, and vpnc quits
//     without a third message: charon keeps a half-open SA until it times
//     out. A wrong password fails after it ("authentication unsuccessful").
package vpnc

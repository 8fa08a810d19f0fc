// Package esp is ipseclab's user-space IPsec data plane: the SAD and SPD of
// RFC 4301, ESP (RFC 4303) and AH (RFC 4302) in tunnel and transport mode,
// extended sequence numbers, and UDP encapsulation for NAT traversal
// (RFC 3948). It is the protocol alone, portable and free of any system
// interface: a DataPlane moves packets between a Device (the inner side, a
// TUN), a Network (the outer side, ESP and AH over IP and ESP in UDP, in
// batches) and, where there is a kernel to route into the Device, Routes
// (io.go). On Linux, package linux opens all three in a network namespace,
// as wireguard-go's device runs on its tun and conn packages.
//
// Map of the package and the packages beside it, file by file:
//
//	algorithms.go   transform identifiers, key, salt, IV and ICV sizes (RFC 2410, 2405, 2451, 3602, 4106, 2403, 2404, 4868)
//	integrity.go    truncated HMAC ICVs (RFC 2104; RFC 2403, 2404, 4868 §2.1), paired on SHA-NI
//	espcrypto.go    ESP framing: header, IV, padding, trailer, AAD with ESN, ICV (RFC 4303 §2, §2.2.1, §3.3; RFC 3602, 4106);
//	                outbound AES-CBC packets encrypted four at a time and signed in pairs
//	icvahead.go     a received batch's ICVs checked in pairs before its packets are handled one by one (RFC 4303 §3.4.4)
//	ah.go           AH framing and the zeroing of the IPv4 header's mutable fields (RFC 4302 §2, §3.3.3)
//	ipv4.go         the IPv4 header operations the modes need (RFC 791), a packet's selectors (RFC 4301 §4.4.1.1)
//	sa.go           SAConfig (what IKE installs) and one SA's state: protect and unprotect in the order of
//	                RFC 4303 §3.3 and §3.4, lifetimes (RFC 4301 §4.4.2.1), ECN at decapsulation (RFC 6040 §4.2)
//	selector.go     traffic selectors (RFC 4301 §4.4.1.1)
//	spd.go          policies: outbound lookup, the acquire queue (RFC 4301 §4.4.1, §5.1)
//	sad.go          the SA database: inbound by SPI, every SA by its RFC 4301 §4.1 triple
//	outbound.go     Device → policy → SA → ESP/AH → Network (RFC 4301 §5.1)
//	inbound.go      Network → SA → replay, ICV, decryption → policy → Device (RFC 4301 §5.2, RFC 4303 §3.4)
//	natt.go         the UDP 4500 port shared with IKE: keepalive, non-ESP marker, ESP (RFC 3948 §2);
//	                transport mode's checksum behind a NAT (RFC 3948 §3.1.2)
//	mapping.go      following a peer whose NAT changed its mapping: only an authenticated packet with the
//	                newest sequence number moves its SAs (RFC 3948 §2.1; Linux's XFRM mapping events)
//	dataplane.go    the per-node object tying it together, callbacks to IKE, events
//	io.go           the seams: Device, Network and its Receivers, Routes; buffer head- and tailroom
//	replay/         the anti-replay window and ESN inference (RFC 4303 §3.4.3, Appendix A)
//	internal/vaes   AES-GCM and AES-CBC with VAES and VPCLMULQDQ (NIST SP 800-38D, RFC 3602); crypto/cipher elsewhere
//	internal/hmac2  HMAC-SHA1 and HMAC-SHA256 of two messages at once on SHA-NI (RFC 2104, FIPS 180-4)
//	internal/csum   the Internet checksum with AVX2, alone or fused with a copy (RFC 1071)
//	internal/x86cpu the CPU feature bits the assembly needs and golang.org/x/sys/cpu does not report (VAES, VPCLMULQDQ, SHA)
//	tun/            the TUN device (esp.Device) with a virtio-net header: TSO super-packets split, segments
//	                coalesced back (virtio 1.2 §5.1.6, RFC 9293 §3.1), checksums computed while copying
//	conn/           raw ESP and AH sockets and the NAT-T UDP port (esp.Network), batched with recvmmsg and
//	                sendmmsg, UDP GSO and GRO on the port
//	linux/          Open: a data plane in a node's network namespace; policy routing into the TUN with each
//	                SA's inner MTU (table 220), the bypass for IPsec's own packets, accept_local
package esp

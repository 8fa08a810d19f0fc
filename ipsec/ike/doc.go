// Package ike is ipseclab's IKEv1 (RFC 2409) engine: the exchanges that build
// an ISAKMP SA and the IPsec SAs under it, and the SA manager that owns
// retransmissions, lifetimes, rekeys, NAT traversal and dead peer detection.
// It works on the wire format of package isakmp and the key derivations of
// package keymat, and installs what Quick Mode negotiates into a data plane
// (package esp).
//
// Each exchange reads top to bottom like its message flow in the RFC, in the
// manner of crypto/tls's handshake files; each extension adds and consumes its
// own payloads, as strongSwan's IKEv1 tasks do:
//
//	phase1.go           what phase 1 holds while it runs and     RFC 2409 §5, App. B
//	                    wipes when it ends; Diffie-Hellman and
//	                    SKEYID; the state tables' shape
//	phase1_auth.go      HASH_I and HASH_R: authenticatePeer,     RFC 2409 §5.1–5.4
//	                    the authMethod seam, pre-shared keys
//	phase1_auth_pubkey.go  signatures: CERTREQ, CERT, SIG; the   RFC 2409 §5.1; RFC 4754;
//	                    chain, dates and ID checked, a notify    RFC 4945
//	                    for each failure
//	phase1_auth_pkenc.go   public-key encryption and its         RFC 2409 §5.2, §5.3
//	                    revision: the nonces, IDs (and KE)
//	                    encrypted in the key exchange messages
//	main_mode.go        Main Mode, 6 messages, and its states    RFC 2409 §5, §5.4
//	aggressive_mode.go  Aggressive Mode, 3 messages, its states  RFC 2409 §5, §5.4
//	quick_mode.go       Quick Mode, optional PFS, client IDs     RFC 2409 §5.5; RFC 3947 §5
//	informational.go    protected Informational: Delete, notify  RFC 2408 §3.14, §3.15; RFC 2409 §5.7
//	natt.go             NAT-D, the float to 4500, keepalives     RFC 3947; RFC 3948 §2.2–2.3
//	dpd.go              R-U-THERE / R-U-THERE-ACK, periodic or   RFC 3706
//	                    on-demand, sequence numbers checked
//	invalid_spi.go      INVALID-SPI for ESP to a lost SA         RFC 2408 §3.14.1
//	vendorid.go         the Vendor IDs we send and understand    RFC 3947 §3.1; RFC 3706 §4
//	proposals.go        strongSwan-notation suites ↔ SA payloads RFC 2409 App. A; RFC 2407 §4.4–4.5
//	identity.go         phase 1 identities and client IDs        RFC 2407 §4.6.2
//	isakmp_sa.go        the ISAKMP SA: cookies, state, keys, IVs RFC 2408 §2.5.3; RFC 2409 App. B
//	ipsec_sa.go         IPsec SA pairs: install, rekey, expire,  RFC 2409 §5.5; RFC 4301 §4.4.1–2;
//	                    their policies, their peer's other       RFC 3948 §2.1
//	                    connections, the NAT's moves
//	flight.go           retransmission and duplicate detection   RFC 2408 §5 (resends); RFC 2409 §5
//	send.go             every datagram out, after its event      —
//	engine.go           the per-node engine: receive, initiate,  —
//	                    acquire and expiry from the data plane
//	config.go           connections in swanctl's vocabulary      —
//	status.go           the SA listing of `ipseclab sas`         —
//	clock.go            the injected clock and the engine's      —
//	                    timers
//	events.go           what the engine tells the event bus      —
//
// The engine does no I/O of its own. It sends through a Transport (the UDP 500
// socket and the data plane's NAT-T port) and is handed received datagrams by
// Receive; it reads time from a Clock and randomness from an io.Reader, so
// that tests run two engines deterministically over a fake network (package
// ipsec/stack/sim) with a manual clock.
//
// All state is guarded by one mutex: every entry point (Receive, a timer,
// Initiate, Terminate, SAs, the data plane's acquire and expiry hooks) takes it
// for the time it runs, so the exchanges themselves are plain sequential code.
package ike

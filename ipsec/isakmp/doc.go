// Package isakmp is the IKEv1 wire format: the ISAKMP header, every payload
// IKEv1 uses as a typed struct, TV/TLV data attributes and the constants of
// the IPsec DOI, with encoding, strict decoding and the CBC encryption of
// message bodies. It knows nothing about exchanges or keys; package keymat
// derives the keys and hashes, and the exchange layer decides what a message
// means.
//
// Where the RFCs live in this package:
//
//	header.go      ISAKMP header                                RFC 2408 §3.1
//	types.go       exchange, payload, DOI, protocol, ID and     RFC 2408 §3.1, §4.1; RFC 2407 §4.2, §4.4.1, §4.6.2.1
//	               certificate type numbers
//	notifytypes.go notify message types                         RFC 2408 §3.14.1; RFC 2407 §4.6.3; RFC 3706 §5
//	errors.go      decoding errors and the notify they call for RFC 2408 §5
//	attributes.go  data attributes, TV and TLV                  RFC 2408 §3.3
//	oakley.go      phase 1 attribute classes and values         RFC 2409 Appendix A; RFC 4868; RFC 5903; RFC 8031
//	ipsecdoi.go    IPsec DOI attributes and transform IDs       RFC 2407 §4.4, §4.5; RFC 3947 §5; RFC 4304
//	payload.go     generic payload header, payload chain,       RFC 2408 §3.2, §3.7, §3.11–3.13, §3.16
//	               KE, HASH, SIG, NONCE, VID, unknown payloads
//	sa.go          SA, Proposal, Transform                      RFC 2408 §3.4–3.6; RFC 2407 §4.6.1
//	id.go          Identification                               RFC 2408 §3.8; RFC 2407 §4.6.2
//	cert.go        Certificate, Certificate Request             RFC 2408 §3.9, §3.10
//	notify.go      Notification, DPD, INITIAL-CONTACT,          RFC 2408 §3.14; RFC 2407 §4.6.3; RFC 3706 §5
//	               RESPONDER-LIFETIME
//	delete.go      Delete                                       RFC 2408 §3.15
//	modecfg.go     Attribute payload (Mode Config, XAUTH)       draft-ietf-ipsec-isakmp-mode-cfg-05 §3.2; draft-ietf-ipsec-isakmp-xauth-06
//	natt.go        NAT-D, NAT-OA (and their draft numbers)      RFC 3947 §3.2, §5.1
//	fragment.go    IKEv1 fragmentation payload                  Cisco/strongSwan extension (type 132)
//	vendorid.go    known Vendor IDs                             RFC 3947 §3.1; RFC 3706 §4
//	message.go     Message: Decode, Encode, payload bytes       RFC 2408 §3, §5; RFC 2409 §5.5 (hashed bytes)
//	encrypt.go     CBC encryption of the body, no pad length    RFC 2408 §3.1; RFC 2409 Appendix B
//
// Received payloads keep their bodies exactly as they arrived (Payload.Body),
// because RFC 2409's hashes are computed over received bytes (SAi_b, IDii_b,
// the message after the HASH payload), not over a re-encoding.
//
// Decoding is strict about lengths and tolerant of reserved bits: a length
// that overruns its container, or is shorter than the fixed part of its
// structure, is an *Error that names the payload, the offset and the
// notification to answer with. Unknown payload types are kept as Unknown
// unless they carry the critical bit. Decoding copies the datagram once and
// allocates in proportion to its length; it never panics.
//
// A typical receive path:
//
//	msg, err := isakmp.Decode(datagram)
//	if msg.Header.Flags&isakmp.FlagEncryption != 0 {
//		err = msg.Decrypt(block, ivs.IV(msg.Header.MessageID))
//	}
//	hash := isakmp.First[*isakmp.Hash](msg)
//	rest, _ := msg.PayloadBytes(1) // what HASH(1) covers
//
// and a send path:
//
//	m := &isakmp.Message{Header: hdr, Payloads: []isakmp.Payload{hash, sa, nonce}}
//	datagram, err := m.EncodeEncrypted(block, iv)
package isakmp

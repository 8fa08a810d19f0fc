// Package keymat is the cryptography of IKEv1 (RFC 2409): the negotiated PRF,
// the phase 1 ciphers, the Diffie-Hellman groups, SKEYID and its descendants,
// the encryption key Ka, the CBC IV chains, the phase 1 and phase 2 hashes,
// NAT-D, and the KEYMAT of the IPsec SAs. It works on byte strings taken from
// the wire (package isakmp) and leaves the exchange logic to its caller.
//
// Where the RFCs live in this package:
//
//	prf.go          prf = HMAC with the negotiated hash        RFC 2409 §4; RFC 2104; RFC 4868 §2
//	cipher.go       DES, 3DES, AES-CBC for ISAKMP              RFC 2409 App. A; RFC 2451; RFC 3602
//	dh.go           MODP, ECP and Curve25519 groups            RFC 2409 §6; RFC 3526; RFC 5903; RFC 8031
//	modp_primes.go  the MODP primes                            RFC 2409 §6.1–6.2; RFC 3526 §2–7
//	skeyid.go       SKEYID, SKEYID_d/a/e, Ka, phase 1 IV       RFC 2409 §5, App. B
//	hashes.go       HASH_I, HASH_R, Quick Mode HASH(1)–(3),    RFC 2409 §5, §5.5, §5.7; RFC 3947 §3.2
//	                Informational HASH, NAT-D
//	iv.go           CBC IV chains per message ID               RFC 2409 App. B
//	ipseckeys.go    KEYMAT and its split into IPsec keys       RFC 2409 §5.5; RFC 3686 §5.1; RFC 4106 §8.1
//
// A phase 1 with a pre-shared key, once both KE and NONCE payloads are known:
//
//	group, _ := keymat.LookupGroup(isakmp.GroupMODP2048)
//	priv, _ := group.GenerateKey(rand.Reader)   // priv.Public() goes in our KE
//	gxy, err := priv.SharedSecret(peerKE.Data)  // ErrInvalidPublicValue: INVALID-KEY-INFORMATION
//	keys, _ := keymat.DerivePhase1(keymat.Phase1Params{PRF: prf, Cipher: c,
//		AuthMethod: isakmp.AuthMethodPSK, PreSharedKey: psk, Ni: ni, Nr: nr,
//		GXI: gxi, GXR: gxr, GXY: gxy, CookieI: ckyI, CookieR: ckyR})
//	block, _ := keys.NewBlock()
//	ivs := keys.NewIVs()
//	hashI := keys.HashI(saiBody, idiiBody)
package keymat

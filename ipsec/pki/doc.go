// Package pki is the certificate side of IKEv1 authentication: keys and
// certificates in files, a lab CA that needs no setup, chain validation
// with errors that say which rule failed, the binding of an ID payload to a
// certificate, and the signature and public-key encryption primitives
// exactly as strongSwan's IKEv1 applies them. It uses only the standard
// library's cryptography and knows nothing about exchanges: the IKE engine
// decides what to sign and when, this package makes and checks the bytes.
//
// Where the RFCs live in this package:
//
//	sig.go      SIG payload data: RSA PKCS#1 v1.5 over the raw       RFC 2409 §5.1; RFC 4754 §3, §7
//	            HASH_I/HASH_R; ECDSA over SHA-2(HASH), r|s
//	encrypt.go  public-key encryption of Ni, IDii, IDir (PKCS#1      RFC 2409 §5.2, §5.3
//	            v1.5)
//	verify.go   chain to a trusted CA, validity dates, key usage     RFC 5280 §6, §4.2.1.3; RFC 4945 §5.1.3.2
//	id.go       ID payload against subject and subjectAltName       RFC 4945 §3.1; RFC 2407 §4.6.2.1
//	dn.go       DN notation ("CN=gw-a, O=Lab") to and from DER,      RFC 2407 §4.6.2.1 (ID_DER_ASN1_DN); RFC 5280 §7.1
//	            and comparison of DNs as names
//	ca.go       the lab CA and its end-entity certificates           RFC 5280 §4.2.1.2, §4.2.1.9; RFC 4945 §5.1.3.12
//	keys.go     key types, PKCS#1, PKCS#8 and SEC1 keys, PEM or DER  RFC 8017 App. A.1; RFC 5208; RFC 5915
//	certs.go    certificate files, PEM or DER                        RFC 7468; RFC 5280
//	lab.go      the lab PKI directory (0700, keys 0600)
//
// Two conventions decide interoperability with strongSwan and are easy to
// get wrong. An RSA signature in IKEv1 pads the PRF output itself, with no
// DigestInfo, because RFC 2409 signs HASH_I and no hash algorithm OID fits
// a PRF; openssl calls this `pkeyutl -sign` without `-digest`. An ECDSA
// signature (RFC 4754) hashes HASH_I again with the curve's SHA-2 and sends
// r and s as fixed-width big-endian integers, not X.509's DER SEQUENCE.
//
// An ID_DER_ASN1_DN is compared with a certificate's subject RDN by RDN,
// in order. ParseDN writes strongSwan's notation in encoded order and
// chooses the string types charon's parser chooses, so that the ID bytes of
// "dn:CN=gw-a, O=Lab" are the same on both peers; a certificate meant for
// that ID is issued with IssueRequest.RawSubject set to the same bytes.
//
// A node's credential, from issue to SIG payload:
//
//	ca, _ := pki.NewCA("ipseclab lab demo CA", pki.RSA2048, from, until, rand.Reader)
//	subject, _ := pki.ParseDN("CN=gw-a, O=ipseclab lab demo")
//	cred, _ := ca.Issue(pki.IssueRequest{RawSubject: subject, DNSNames: []string{"gw-a.lab"},
//		IPs: []net.IP{ikeAddr}, KeyType: pki.ECDSAP256, NotBefore: from, NotAfter: until}, rand.Reader)
//	method, _ := pki.AuthMethodOf(cred.Key.Public())     // isakmp.AuthMethodECDSAP256 in the SA
//	sig, _ := pki.Sign(cred.Key, hashI, rand.Reader)      // the SIG payload's data
//
// and at the peer:
//
//	err := pki.VerifyChain(certs, []*x509.Certificate{ca.Cert}, now, x509.KeyUsageDigitalSignature)
//	err = pki.CertifiesID(certs[0], id.IDType, id.Data)  // ErrIDNotInCertificate
//	err = pki.Verify(certs[0].PublicKey, hashI, sig)      // ErrBadSignature
package pki

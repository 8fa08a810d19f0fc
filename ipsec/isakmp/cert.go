package isakmp

// Cert is the Certificate payload (RFC 2408 §3.9).
type Cert struct {
	received
	Encoding CertEncoding
	Data     []byte
}

func (*Cert) Type() PayloadType { return PayloadCert }
func (p *Cert) Body() []byte    { return bodyOf(p) }

func (p *Cert) appendBody(b []byte) ([]byte, error) {
	return append(append(b, byte(p.Encoding)), p.Data...), nil
}

func (p *Cert) decodeBody(body []byte, off int) error {
	if err := checkMin(PayloadCert, body, 1, off); err != nil {
		return err
	}
	p.Encoding, p.Data = CertEncoding(body[0]), body[1:]
	return nil
}

// CertRequest is the Certificate Request payload (RFC 2408 §3.10). Authority
// is, for X.509, the DER distinguished name of an acceptable CA; it may be
// empty.
type CertRequest struct {
	received
	Encoding  CertEncoding
	Authority []byte
}

func (*CertRequest) Type() PayloadType { return PayloadCertRequest }
func (p *CertRequest) Body() []byte    { return bodyOf(p) }

func (p *CertRequest) appendBody(b []byte) ([]byte, error) {
	return append(append(b, byte(p.Encoding)), p.Authority...), nil
}

func (p *CertRequest) decodeBody(body []byte, off int) error {
	if err := checkMin(PayloadCertRequest, body, 1, off); err != nil {
		return err
	}
	p.Encoding, p.Authority = CertEncoding(body[0]), body[1:]
	return nil
}

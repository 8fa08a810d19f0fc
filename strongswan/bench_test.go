package strongswan_test

import (
	"testing"

	"github.com/ipseclab/ipseclab/strongswan/swantest"
)

// BenchmarkCharonNegotiations is the charon ↔ charon baseline for IKE
// negotiation rate (Main Mode plus Quick Mode, one after another).
func BenchmarkCharonNegotiations(b *testing.B) {
	for _, bl := range swantest.NegotiationBaselines {
		b.Run(bl.Name, func(b *testing.B) { swantest.BenchNegotiations(b, bl) })
	}
}

// BenchmarkCharonCertNegotiations is the same baseline with certificate
// authentication, RSA-2048 and ECDSA P-256.
func BenchmarkCharonCertNegotiations(b *testing.B) {
	for _, bl := range swantest.CertNegotiationBaselines {
		b.Run(bl.Name, func(b *testing.B) { swantest.BenchNegotiations(b, bl) })
	}
}

// BenchmarkCharonTCP is the baseline for TCP bulk throughput host to host
// through two charon kernel-libipsec gateways.
func BenchmarkCharonTCP(b *testing.B) {
	for _, bl := range swantest.ThroughputBaselines {
		b.Run(bl.Name, func(b *testing.B) { swantest.BenchTCP(b, bl) })
	}
}

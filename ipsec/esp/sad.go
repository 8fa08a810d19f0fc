package esp

// inKey finds an inbound SA from what a packet carries. This node chose every
// inbound SPI (see DataPlane.AllocateSPI), so SPI and protocol are unique; the
// destination is checked after the lookup (RFC 4301 §4.1).
type inKey struct {
	proto Protocol
	spi   uint32
}

// sad is the SA database. The inbound table is an immutable map swapped on
// every change, so the per-packet lookup takes no lock; all is guarded by the
// data plane's mutex.
type sad struct {
	all map[SAID]*saState
}

func cloneInbound(m map[inKey]*saState) map[inKey]*saState {
	n := make(map[inKey]*saState, len(m)+1)
	for k, v := range m {
		n[k] = v
	}
	return n
}

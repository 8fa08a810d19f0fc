package esp

import "net/netip"

// Following a NAT's new mapping (RFC 3948 §2.1, and what Linux does with its
// XFRM_MSG_MAPPING events).
//
// ESP in UDP travels between the endpoints IKE uses. When the NAT in front
// of the peer forgets its mapping (it rebooted, or the mapping idled out) and
// makes a new one, the peer's packets arrive from a new address or port, and
// everything we send to the old one is dropped by the NAT. Linux notices it
// in esp_input when a UDP-encapsulated packet of an SA comes from elsewhere
// than the SA's encapsulation says, and tells the IKE daemon, which moves the
// SAs (strongSwan: only when the peer is behind a NAT, COND_NAT_THERE).
//
// Only a packet that may speak for the peer may move it, or anyone could
// redirect a tunnel's traffic with one forged datagram: it has passed the
// ICV and the replay window, and carries the highest sequence number seen so
// far, so that a late copy from an old path cannot move the SA back. The data
// plane moves the SAs itself, before the packet's inner packet is delivered,
// so that the reply to the very packet that revealed the mapping already goes
// to it; Hooks.Mapping then lets IKE move its ISAKMP SA and report it.

// MappingChange is what Hooks.Mapping reports.
type MappingChange struct {
	Conn     string
	ID       SAID           // the inbound SA whose packet came from the new endpoint
	Seq      uint64         // that packet's sequence number
	Old, New netip.AddrPort // the peer's end of the UDP encapsulation, before and after
	Moved    []SAID         // every SA that now sends to, or expects, New
}

// followMapping runs for every UDP-encapsulated packet that passed the SA's
// checks. Its common case, the packet from where the SA expects it, costs an
// atomic load and a comparison.
func (d *DataPlane) followMapping(sa *saState, src netip.AddrPort, seq uint64) {
	cur := sa.encapPeer.Load()
	if cur == nil || *cur == src || !sa.cfg.Encap.FollowPeer || sa.replay.Top() != seq {
		return
	}
	d.mu.Lock()
	old := *sa.encapPeer.Load()
	if old == src || sa.dead.Load() {
		d.mu.Unlock()
		return
	}
	// Every SA with the peer at the old endpoint moves: the pair of this
	// one, and those of the peer's other connections and of a rekey in
	// progress. An endpoint is one peer at a time.
	var moved []SAID
	for id, x := range d.sad.all {
		if p := x.encapPeer.Load(); p != nil && *p == old {
			to := src
			x.encapPeer.Store(&to)
			moved = append(moved, id)
		}
	}
	d.mu.Unlock()
	d.st.mappingChanges.Add(1)
	if h := d.hooks.Load().Mapping; h != nil {
		m := MappingChange{Conn: sa.cfg.Conn, ID: sa.id, Seq: seq, Old: old, New: src, Moved: moved}
		d.notes.post(func() { h(m) })
	}
}

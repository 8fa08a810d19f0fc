package ike

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"time"

	"github.com/ipseclab/ipseclab/events"
	"github.com/ipseclab/ipseclab/ipsec/esp"
	"github.com/ipseclab/ipseclab/ipsec/isakmp"
)

// INVALID-SPI (notify 11, RFC 2408 §3.14.1). A peer that sends ESP or AH
// with an SPI we do not hold lost track of us: we crashed and restarted, or
// our Delete never reached it. The data plane counts each such packet
// (unknown_spi) and reports the stream here, rate-limited; we tell the peer,
// under the ISAKMP SA we share with it, so that it removes the stale SA at
// once rather than when DPD or a lifetime ends it:
//
//	HDR*, HASH(1), N(INVALID-SPI, ESP, SPI)
//
// Only a protected notification can be believed (anyone can send one in the
// clear), so without an ISAKMP SA with the peer we say nothing: it learns
// through DPD, or from INITIAL-CONTACT when we next negotiate with it. At
// most one notification per peer per invalidSPIInterval, whatever the
// packet rate. charon, on receipt, only logs it ("received INVALID_SPI
// error notify"); an ipseclab gateway deletes the SA it names
// (protectedNotify), and its trap or DPD action takes over from there.

// invalidSPIInterval spaces the INVALID-SPI notifications to one peer.
const invalidSPIInterval = time.Second

// HandleUnknownSPI takes the data plane's report of a packet for an SPI we
// do not hold (esp.Hooks.UnknownSPI).
func (e *Engine) HandleUnknownSPI(u esp.UnknownSPI) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return
	}
	peer := u.Peer.Addr()
	now := e.clock.Now()
	if last, ok := e.invalidSPISent[peer]; ok && now.Sub(last) < invalidSPIInterval {
		return
	}
	if e.invalidSPISent == nil {
		e.invalidSPISent = map[netip.Addr]time.Time{}
	}
	e.invalidSPISent[peer] = now
	sa := e.sharedISAKMPSA(peer)
	if sa == nil {
		e.pub.Publish(events.Event{
			Kind: events.Notify, Step: events.StepData, Level: events.Warn,
			Message: fmt.Sprintf("%s sends %s with SPI %08x, which we do not hold; no ISAKMP SA with it to say INVALID-SPI under", peer, u.Protocol, u.SPI),
			Explain: "The peer still uses an SA we lost (a restart, a lost Delete). An unprotected INVALID-SPI could not be believed, so we stay silent: it learns through DPD, or from INITIAL-CONTACT when we next negotiate.",
			Fields:  map[string]any{"notify": isakmp.NotifyInvalidSPI.String(), "spi": fmt.Sprintf("%08x", u.SPI), "peer": peer.String(), "sent": false},
		})
		return
	}
	spi := binary.BigEndian.AppendUint32(nil, u.SPI)
	proto := isakmp.ProtocolESP
	if u.Protocol == esp.ProtoAH {
		proto = isakmp.ProtocolAH
	}
	e.stats.InvalidSPISent++
	e.notifyPeer(sa, &isakmp.Notify{DOI: isakmp.DOIIPsec, Protocol: proto, NotifyType: isakmp.NotifyInvalidSPI, SPI: spi})
}

// sharedISAKMPSA is the newest established ISAKMP SA with peer, or nil.
func (e *Engine) sharedISAKMPSA(peer netip.Addr) *isakmpSA {
	var best *isakmpSA
	for _, c := range e.conns {
		for _, sa := range c.sas {
			if sa.state == established && !sa.dead && sa.remote.Addr() == peer {
				best = sa
			}
		}
	}
	return best
}

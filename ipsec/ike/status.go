package ike

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/ipseclab/ipseclab/ipsec/esp"
)

// Status is what `ipseclab sas` shows of a node's IKE state.
type Status struct {
	ISAKMP []ISAKMPStatus `json:"isakmp"`
	IPsec  []IPsecStatus  `json:"ipsec"`
}

// ISAKMPStatus is one ISAKMP SA.
type ISAKMPStatus struct {
	Conn        string        `json:"connection"`
	State       string        `json:"state"` // "established", or where the negotiation stands ("Main Mode 3/6 sent")
	Role        string        `json:"role"`  // initiator or responder of phase 1
	Mode        string        `json:"mode"`  // main or aggressive
	ICookie     string        `json:"icookie"`
	RCookie     string        `json:"rcookie"`
	Local       string        `json:"local"`
	Remote      string        `json:"remote"`
	LocalID     string        `json:"local_id"`
	RemoteID    string        `json:"remote_id,omitempty"`
	Proposal    string        `json:"proposal,omitempty"`
	NATLocal    bool          `json:"nat_local,omitempty"`
	NATRemote   bool          `json:"nat_remote,omitempty"`
	NATFake     bool          `json:"nat_fake,omitempty"`
	NATT        bool          `json:"nat_t,omitempty"` // on UDP 4500
	DPD         bool          `json:"dpd,omitempty"`
	Established time.Time     `json:"established,omitzero"`
	Lifetime    time.Duration `json:"lifetime,omitempty"`
	Vendors     []string      `json:"vendor_ids,omitempty"`
	// Remote access: the XAUTH user, and the address Mode Config lent
	// (gateway) or gave us (client).
	XAuthUser string `json:"xauth_user,omitempty"`
	VirtualIP string `json:"virtual_ip,omitempty"`
}

// IPsecStatus is one IPsec SA pair, with the data plane's counters of both
// directions.
type IPsecStatus struct {
	Conn      string        `json:"connection"`
	State     string        `json:"state"` // installed, rekeying, rekeyed
	Protocol  string        `json:"protocol"`
	SPIIn     string        `json:"spi_in"`
	SPIOut    string        `json:"spi_out"`
	Proposal  string        `json:"proposal"`
	Mode      string        `json:"mode"`
	UDPEncap  bool          `json:"udp_encap,omitempty"`
	Local     string        `json:"local"`  // where the pair's packets leave: an address, with the port for ESP in UDP
	Remote    string        `json:"remote"` // and where they go
	LocalTS   string        `json:"local_ts"`
	RemoteTS  string        `json:"remote_ts"`
	Initiator bool          `json:"initiator,omitempty"` // we ran the Quick Mode's first message
	ICookie   string        `json:"icookie,omitempty"`   // the ISAKMP SA it lives under
	RCookie   string        `json:"rcookie,omitempty"`
	Installed time.Time     `json:"installed"`
	Lifetime  time.Duration `json:"lifetime"`
	LifeBytes uint64        `json:"life_bytes,omitempty"`
	In        esp.Counters  `json:"in"`
	Out       esp.Counters  `json:"out"`
	MTU       int           `json:"mtu,omitempty"` // the largest inner packet the outbound SA fits in the path
}

// SAs lists the engine's ISAKMP SAs and IPsec SA pairs, by connection.
func (e *Engine) SAs() Status {
	e.mu.Lock()
	defer e.mu.Unlock()
	var st Status
	counters := map[esp.SAID]esp.Counters{}
	mtus := map[esp.SAID]int{}
	sentTo := map[esp.SAID]string{}
	for _, s := range e.dp.SAs() {
		counters[s.ID] = s.Counters
		mtus[s.ID] = s.MTU
		sentTo[s.ID] = s.Remote
	}
	for _, c := range e.conns {
		for _, sa := range c.sas {
			s := ISAKMPStatus{
				Conn: c.cfg.Name, State: string(sa.state), Role: sa.role.String(), Mode: sa.mode.String(),
				ICookie: sa.ckyI.String(), RCookie: sa.ckyR.String(), Local: sa.local.String(), Remote: sa.remote.String(),
				LocalID: c.localID.String(), NATLocal: sa.nat.local, NATRemote: sa.nat.remote, NATFake: sa.nat.fake,
				NATT: sa.local.Port() == portNATT, DPD: sa.dpd.enabled, Established: sa.up, Lifetime: sa.lifetime,
				Vendors: sa.peer.vendors,
			}
			if sa.peerID.Type != 0 {
				s.RemoteID = sa.peerID.String()
			}
			if sa.choice.suite.Encr != 0 {
				s.Proposal = sa.choice.suite.String()
			}
			if sa.ra != nil {
				s.XAuthUser = sa.ra.user
			}
			if sa.lease != nil {
				s.VirtualIP = sa.lease.Addr.Addr().String()
			}
			st.ISAKMP = append(st.ISAKMP, s)
		}
		for _, ch := range c.children {
			local, remote := ch.endpoints(sentTo[ch.outID()])
			s := IPsecStatus{
				Conn: c.cfg.Name, State: ch.state.String(), Protocol: ch.proto.String(),
				SPIIn: fmt.Sprintf("%08x", ch.spiIn), SPIOut: fmt.Sprintf("%08x", ch.spiOut),
				Proposal: ch.suite.String(), Mode: ch.mode.String(), UDPEncap: ch.encap,
				Local: local, Remote: remote, LocalTS: ch.localTS.String(), RemoteTS: ch.remoteTS.String(),
				Initiator: ch.initiator, Installed: ch.installed, Lifetime: ch.lifetime, LifeBytes: ch.lifeBytes,
				In: counters[ch.inID()], Out: counters[ch.outID()], MTU: mtus[ch.outID()],
			}
			if ch.owner != nil && !ch.owner.dead {
				s.ICookie, s.RCookie = ch.owner.ckyI.String(), ch.owner.ckyR.String()
			}
			st.IPsec = append(st.IPsec, s)
		}
	}
	return st
}

// endpoints are where the pair's packets travel, not where IKE talks: ESP or
// AH over IP has addresses and no port, and ESP in UDP leaves from the NAT-T
// port (whichever port the ISAKMP SA used when the pair was made) for where
// the data plane sends it, sentTo, once a NAT moved it.
func (ch *childSA) endpoints(sentTo string) (local, remote string) {
	if !ch.encap {
		return ch.local.Addr().String(), ch.remote.Addr().String()
	}
	remote = ch.remote.String()
	if sentTo != "" {
		remote = sentTo
	}
	return netip.AddrPortFrom(ch.local.Addr(), portNATT).String(), remote
}

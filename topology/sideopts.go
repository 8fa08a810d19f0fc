package topology

import (
	"fmt"

	"github.com/ipseclab/ipseclab/ipsec/proposal"
)

// One side's own settings. A lab file writes a connection once, for both
// sides, so that they agree; a troubleshooting lab makes them disagree by
// giving one side settings of its own, as if each side had its own
// swanctl.conf:
//
//	responder:
//	  node: gw-b
//	  ike: {proposals: [aes256-sha256-ecp384]}
//	  child: {remote-ts: 10.1.1.0/24, pfs: none}
//
// What a side gives replaces the connection's on that side only. Its
// selectors are written from its own point of view: local-ts is its own
// network, whichever end it is.

// SideIKE is one side's own phase 1 settings.
type SideIKE struct {
	Proposals []string `yaml:"proposals"`
	Lifetime  Duration `yaml:"lifetime"`

	proposals []proposal.Proposal // parsed by validation
}

// SideChild is one side's own phase 2 settings.
type SideChild struct {
	LocalTS   PrefixList `yaml:"local-ts"`  // this side's network
	RemoteTS  PrefixList `yaml:"remote-ts"` // the peer's
	ESP       []string   `yaml:"esp"`
	AH        []string   `yaml:"ah"`
	PFS       string     `yaml:"pfs"` // a DH group, or none: this side without PFS
	Lifetime  Duration   `yaml:"lifetime"`
	LifeBytes Size       `yaml:"life-bytes"`

	proposals []proposal.Proposal // parsed by validation, when esp, ah or pfs is given
}

// sideSettings checks the sides' own settings and parses their proposals.
func (v *labChecker) sideSettings(path string, c *IPsecConn) {
	for _, side := range c.sides(path) {
		p := side.p
		if p.IKE == nil && p.Child == nil {
			continue
		}
		if len(c.Clients()) > 1 || c.AnyPeer() || c.ModeConfig() {
			v.errorf(side.path, "a side's own ike or child settings are for connections between two peers, not remote access")
			continue
		}
		if n := v.lab.Topology.Nodes[p.Node]; n != nil && n.Kind == KindVPNC {
			v.errorf(side.path, "a vpnc client takes its settings from the connection; give the gateway's side its own instead")
			continue
		}
		if o := p.IKE; o != nil {
			o.proposals = nil
			for pi, s := range o.Proposals {
				pr, err := proposal.Parse(proposal.IKE, s)
				if err != nil {
					v.errorf(fmt.Sprintf("%s.ike.proposals[%d]", side.path, pi), "%s", err)
					continue
				}
				o.proposals = append(o.proposals, pr)
			}
		}
		o := p.Child
		if o == nil {
			continue
		}
		if len(o.LocalTS) > 1 || len(o.RemoteTS) > 1 {
			v.errorf(side.path+".child", "IKEv1 Quick Mode carries one subnet per side; use one connection per pair of subnets")
		}
		if (len(o.LocalTS) > 0 || len(o.RemoteTS) > 0) && c.Child.Mode == TransportMode {
			v.errorf(side.path+".child", "a transport-mode child's selectors are the IKE endpoints; a side cannot choose others")
		}
		if len(o.ESP) > 0 && len(o.AH) > 0 {
			v.errorf(side.path+".child.ah", "give esp or ah, not both")
		}
		o.proposals = nil
		if len(o.ESP) == 0 && len(o.AH) == 0 && o.PFS == "" {
			continue
		}
		proto, list, key := proposal.ESP, c.Child.ESP, "esp"
		switch {
		case len(o.ESP) > 0:
			list = o.ESP
		case len(o.AH) > 0:
			proto, list, key = proposal.AH, o.AH, "ah"
		case len(c.Child.AH) > 0:
			proto, list, key = proposal.AH, c.Child.AH, "ah"
		}
		pfs := o.PFS
		if pfs == "" {
			pfs = c.Child.PFS
		}
		o.proposals = v.childProposals(side.path+".child", proto, key, list, pfs, o.PFS != "")
	}
}

// ownSettings puts the side's own settings, if it has any, in place of the
// connection's.
func (s *Side) ownSettings() {
	if o := s.Local.IKE; o != nil {
		if len(o.proposals) > 0 {
			s.IKEProposals = o.proposals
		}
		if o.Lifetime.Duration > 0 {
			s.IKELifetime = o.Lifetime.Duration
		}
	}
	if o := s.Local.Child; o != nil {
		if len(o.proposals) > 0 {
			s.ChildProposals = o.proposals
		}
		if len(o.LocalTS) > 0 {
			s.LocalTS = o.LocalTS.prefixes()
		}
		if len(o.RemoteTS) > 0 {
			s.RemoteTS = o.RemoteTS.prefixes()
		}
		if o.Lifetime.Duration > 0 {
			s.ChildLifetime = o.Lifetime.Duration
		}
		if o.LifeBytes > 0 {
			s.LifeBytes = int64(o.LifeBytes)
		}
	}
}

// sideDefaults are the connection's settings, which a side's own replace.
func (s *Side) sideDefaults(c *IPsecConn) {
	s.IKEProposals, s.IKELifetime = c.IKEProposals, c.IKE.Lifetime.Duration
	s.ChildProposals, s.ChildLifetime, s.LifeBytes = c.ChildProposals, c.Child.Lifetime.Duration, int64(c.Child.LifeBytes)
}

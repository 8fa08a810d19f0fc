package topology

import "github.com/ipseclab/ipseclab/ipsec/proposal"

// vpncClients checks the clients of a connection that are vpnc nodes against
// what Debian's vpnc does (package vpnc): Aggressive Mode, XAUTH after the
// group's pre-shared key or after the gateway's RSA certificate (hybrid),
// its address from Mode Config, which it always pulls, ESP in tunnel mode
// with AES-CBC and SHA-1, and one connection per node (it binds UDP 500 and
// names its TUN device).
func (v *labChecker) vpncClients(path string, c *IPsecConn) {
	for i, p := range c.Clients() {
		if n := v.lab.Topology.Nodes[p.Node]; n != nil && n.Kind == KindVPNC {
			v.vpncClient(path, path+"."+c.clientKey(i), c, p.Node)
		}
	}
}

func (v *labChecker) vpncClient(path, cp string, c *IPsecConn, node string) {
	switch c.Auth.Method {
	case AuthXAuthPSK, AuthHybrid:
	default:
		v.errorf(path+".auth.method", "%s is a vpnc node: vpnc logs in with XAUTH after the group's pre-shared key (xauth-psk) or after the gateway's RSA certificate (hybrid), not %s", node, c.Auth.Method)
	}
	if c.Auth.Method == AuthHybrid && !rsaKey(c.KeyType) {
		v.errorf(path+".key-type", "%s is a vpnc node, and vpnc's Hybrid checks an RSA signature only (hybrid(rsa)): use rsa-2048 or rsa-3072", node)
	}
	if c.IKE.Mode != AggressiveMode {
		v.errorf(path+".ike.mode", "%s is a vpnc node, and vpnc speaks Aggressive Mode only: set ike: {mode: aggressive}", node)
	}
	switch {
	case !c.ModeConfig():
		v.errorf(path+".responder", "%s is a vpnc node, and vpnc takes its inner address from Mode Config: give the responder pool: (e.g. pool: 10.9.0.0/24)", node)
	case c.Responder.ModeCfg == ModeCfgPush:
		v.errorf(path+".responder.modecfg", "%s is a vpnc node, and vpnc always asks for its address (pull): against push it gives up with INVALID-MESSAGE-ID; leave modecfg at pull", node)
	}
	if len(c.Child.AH) > 0 {
		v.errorf(path+".child.ah", "%s is a vpnc node, and vpnc speaks ESP only", node)
	}
	// vpnc proposes AES-CBC, 3DES and DES with SHA-1 and MD5, but takes only
	// AES with SHA-1 without its --enable-weak-* options, which ipseclab
	// does not give; and it knows the MODP groups alone.
	if !anyVPNCProposal(c.IKEProposals, true) {
		v.errorf(path+".ike.proposals", "%s is a vpnc node, and vpnc accepts AES-CBC with SHA-1 and a MODP group (modp768, 1024, 1536, 2048 to 8192) for phase 1: propose one, e.g. aes128-sha1-modp2048", node)
	}
	if len(c.ChildProposals) > 0 && !anyVPNCProposal(c.ChildProposals, false) {
		v.errorf(path+".child.esp", "%s is a vpnc node, and vpnc accepts AES-CBC with SHA-1 (PFS with a MODP group) for ESP: propose one, e.g. aes128-sha1", node)
	}
	for _, other := range v.lab.ConnNames() {
		if other < c.Name && v.lab.IPsec[other].ClientOf(node) != nil {
			v.errorf(cp, "%s is a vpnc node and already a client of %s: one vpnc connection per node", node, other)
			break
		}
	}
}

// anyVPNCProposal reports whether vpnc (without its weak options) can agree
// to one of the proposals; a phase 1 proposal needs a group, an ESP one may
// do without (no PFS).
func anyVPNCProposal(ps []proposal.Proposal, ike bool) bool {
	for _, p := range ps {
		modp := p.Group == 1 || p.Group == 2 || p.Group == 5 || (p.Group >= 14 && p.Group <= 18)
		if p.Encr == proposal.EncrAESCBC && p.Integ == proposal.IntegSHA1 && (modp || !ike && p.Group == proposal.GroupNone) {
			return true
		}
	}
	return false
}

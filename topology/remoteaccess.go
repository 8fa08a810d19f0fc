package topology

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math/bits"
	"net/netip"
	"strings"
)

// Remote access: XAUTH (draft-ietf-ipsec-isakmp-xauth-06) and Mode Config
// (draft-dukes-ike-mode-cfg-02) on the sides of a connection, several
// clients on one gateway, and remote: any.

var (
	modeCfgModes = []ModeCfgMode{ModeCfgPull, ModeCfgPush}
	remotePeers  = []RemotePeers{RemoteAny}
)

// The XAUTH settings of a side, by their YAML key under xauth, and whose
// they are.
var (
	gatewayXAuthKeys = []string{"users", "users-file"}
	clientXAuthKeys  = []string{"user", "password"}
)

// modeCfgFields are the gateway's Mode Config settings, by their YAML key,
// with whether the side sets each.
func (p *Peer) modeCfgFields() []struct {
	key string
	set bool
} {
	return []struct {
		key string
		set bool
	}{
		{"pool", p.Pool.IsValid()}, {"dns", len(p.DNS) > 0}, {"nbns", len(p.NBNS) > 0},
		{"split-include", len(p.SplitInclude) > 0}, {"modecfg", p.ModeCfg != ""},
		{"banner", p.Banner != ""}, {"default-domain", p.DefaultDomain != ""},
	}
}

// remoteAccess checks a connection's remote-access settings, after its
// auth method is known, and completes them: the users of users-file, the
// Mode Config mode, and remote: any where several clients or a pool imply it.
func (v *labChecker) remoteAccess(path string, c *IPsecConn) {
	gw := &c.Responder
	clients := c.Clients()
	method := c.Auth.Method

	// remote: any.
	if c.Remote != "" {
		if !defaultWord(&c.Remote, remotePeers) {
			v.errorf(path+".remote", "remote %q: the one word is any (the responder serves any peer)%s", c.Remote, suggest(string(c.Remote), wordStrings(remotePeers)))
		} else if gw.Node == "" {
			v.errorf(path+".remote", "remote: any makes the responder serve any peer; this connection has no responder: give responder:")
		}
	}
	if len(c.Initiators) > 1 || gw.Pool.IsValid() {
		c.Remote = RemoteAny
	}
	if c.AnyPeer() && method.Encrypts() {
		v.errorf(path+".auth.method", "%s encrypts to the peer's certificate before the exchange, and a responder that serves any peer cannot know whose: use pubkey or xauth-pubkey", method)
	}

	// The gateway's side: XAUTH users, Mode Config.
	gp := path + ".responder"
	if x := gw.XAuth; x != nil {
		for _, k := range clientXAuthKeys {
			if v.given(gp + ".xauth." + k) {
				v.errorf(gp+".xauth."+k, "%s is a client's: write it on the initiator; the gateway (the responder) lists users: {name: password} or a users-file", k)
			}
		}
		v.gatewayUsers(gp+".xauth", x)
	}
	if !method.XAuth() {
		for _, s := range c.sides(path) {
			if s.p.XAuth != nil {
				v.errorf(s.path+".xauth", "xauth needs auth method xauth-psk, xauth-pubkey or hybrid; this connection uses %s%s", method, xauthFor(method))
			}
		}
	} else if gw.XAuth == nil {
		v.errorf(path+".auth.method", "%s asks each client for a user name and password after phase 1: give the responder xauth: {users: {name: password}} (or users-file: PATH)", method)
	}
	v.modeConfig(gp, c)

	// The clients' sides.
	for i, p := range clients {
		cp := path + "." + c.clientKey(i)
		if p.Node == "" && !v.given(cp) {
			continue // no initiator at all
		}
		for _, f := range p.modeCfgFields() {
			if f.set {
				v.errorf(cp+"."+f.key, "%s is the gateway's to give (Mode Config): write it on the responder", f.key)
			}
		}
		x := p.XAuth
		if x == nil {
			if method.XAuth() {
				v.errorf(cp, "client %s has no xauth: {user, password}, which %s asks for after phase 1", p.Node, method)
			}
			continue
		}
		for _, k := range gatewayXAuthKeys {
			if v.given(cp + ".xauth." + k) {
				v.errorf(cp+".xauth."+k, "%s lists who may log in on the gateway: it belongs on the responder; a client gives user and password", k)
			}
		}
		if !method.XAuth() {
			continue
		}
		switch {
		case x.User == "" && x.Password == "":
			v.errorf(cp+".xauth", "client %s's xauth needs user and password", p.Node)
		case x.User == "":
			v.errorf(cp+".xauth", "client %s's xauth needs user", p.Node)
		case x.Password == "":
			v.errorf(cp+".xauth", "client %s's xauth needs password (for a lab about a wrong password, give a wrong one)", p.Node)
		}
		if gx := gw.XAuth; x.User != "" && gx != nil && len(gx.Users) > 0 {
			if _, ok := gx.Users[x.User]; !ok {
				v.errorf(cp+".xauth.user", "user %q is not among the gateway's users (%s)", x.User, userList(gx.Users))
			}
		}
	}

	// Several clients share the connection's child: each needs an inner
	// address of its own, which only Mode Config gives them.
	if len(clients) > 1 && !c.ModeConfig() {
		if c.Child.Mode == TunnelMode {
			v.errorf(path+".initiators", "%d clients share one tunnel-mode child, and each needs an inner address of its own: give the responder a pool: (Mode Config), or use one connection per client", len(clients))
		} else if len(c.Child.LocalTS) > 0 {
			v.errorf(path+".child.local-ts", "local-ts names one initiator's address, and this connection has %d: leave it out (transport mode protects each client's own traffic)", len(clients))
		}
	}
}

// xauthFor suggests the XAUTH form of a method.
func xauthFor(m AuthMethod) string {
	switch m {
	case AuthPSK:
		return " (did you mean xauth-psk?)"
	case AuthPubkey:
		return " (did you mean xauth-pubkey, or hybrid?)"
	}
	return ""
}

// given reports a key the file writes.
func (v *labChecker) given(path string) bool {
	_, ok := v.lab.pos[path]
	return ok
}

// userList names a gateway's users (never their passwords), a few of them.
func userList(users map[string]string) string {
	names := sortedKeys(users)
	if len(names) > 8 {
		return strings.Join(names[:8], ", ") + fmt.Sprintf(" and %d more", len(names)-8)
	}
	return strings.Join(names, ", ")
}

// gatewayUsers checks the gateway's users, reads users-file into Users.
func (v *labChecker) gatewayUsers(path string, x *XAuth) {
	switch {
	case x.UsersFile != "" && len(x.Users) > 0:
		v.errorf(path+".users-file", "give users or users-file, not both")
		return
	case x.UsersFile == "" && len(x.Users) == 0:
		if !v.given(path + ".users") {
			v.errorf(path, "the gateway's xauth needs users: {name: password} or users-file: PATH")
		} else {
			v.errorf(path+".users", "users lists nobody; give name: password pairs")
		}
		return
	}
	for _, name := range sortedKeys(x.Users) {
		if why := badUserName(name); why != "" {
			v.errs.add(v.lab.KeyPos(path+".users."+name), "user name %q %s", name, why)
		}
		if x.Users[name] == "" {
			v.errorf(path+".users."+name, "user %s has no password", name)
		}
	}
	if x.UsersFile == "" {
		return
	}
	b, ok := v.readFile(path+".users-file", x.UsersFile)
	if !ok {
		return
	}
	users, err := ParseUsers(b)
	var ue *UsersError
	switch {
	case errors.As(err, &ue):
		v.errorf(path+".users-file", "users-file %s:%d: %s", x.UsersFile, ue.Line, ue.Msg)
		return
	case err != nil:
		v.errorf(path+".users-file", "users-file %s %v", x.UsersFile, err)
		return
	}
	x.Users = users
}

// badUserName says what is wrong with an XAUTH user name, if anything.
func badUserName(name string) string {
	switch {
	case name == "":
		return "is empty"
	case len(name) > 255:
		return "is longer than 255 bytes"
	case strings.ContainsAny(name, ":\n\r"):
		return "holds ':' or a line break"
	}
	if r, ok := controlChar(name); ok {
		return fmt.Sprintf("contains the control character %q", r)
	}
	return ""
}

// UsersError is a problem in a users file, at its line.
type UsersError struct {
	Line int
	Msg  string
}

func (e *UsersError) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Msg) }

// ParseUsers reads a users file: one name:password per line, the name up to
// the first ':', spaces around either trimmed; blank lines and lines that
// start with # are skipped. The error is a *UsersError with the line.
func ParseUsers(b []byte) (map[string]string, error) {
	users := map[string]string{}
	first := map[string]int{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 4096), MaxCertFileSize)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, pw, ok := strings.Cut(line, ":")
		name, pw = strings.TrimSpace(name), strings.TrimSpace(pw)
		switch {
		case !ok:
			return nil, &UsersError{n, "is not name:password (no ':')"}
		case name == "":
			return nil, &UsersError{n, "has no name before ':'"}
		case pw == "":
			return nil, &UsersError{n, fmt.Sprintf("user %s has no password after ':'", name)}
		}
		if why := badUserName(name); why != "" {
			return nil, &UsersError{n, fmt.Sprintf("user name %q %s", name, why)}
		}
		if l, dup := first[name]; dup {
			return nil, &UsersError{n, fmt.Sprintf("user %s again (first on line %d)", name, l)}
		}
		first[name] = n
		users[name] = pw
	}
	if err := sc.Err(); err != nil {
		return nil, &UsersError{n + 1, err.Error()}
	}
	if len(users) == 0 {
		return nil, errors.New("lists no users; write name:password lines")
	}
	return users, nil
}

// modeConfig checks the gateway's Mode Config settings.
func (v *labChecker) modeConfig(gp string, c *IPsecConn) {
	gw := &c.Responder
	if !gw.Pool.IsValid() {
		for _, f := range gw.modeCfgFields() {
			if f.set {
				v.errorf(gp+"."+f.key, "%s is a Mode Config setting, and Mode Config starts with the address it lends each client: give the responder pool: too (e.g. pool: 10.9.0.0/24)", f.key)
			}
		}
		return
	}
	if !defaultWord(&gw.ModeCfg, modeCfgModes) {
		v.errorf(gp+".modecfg", "modecfg %q is neither pull (the client asks) nor push (the gateway sets)%s", gw.ModeCfg, suggest(string(gw.ModeCfg), wordStrings(modeCfgModes)))
	}
	pool := gw.Pool.Prefix
	clients := len(c.Clients())
	switch {
	case !pool.Addr().Is4():
		v.errorf(gp+".pool", "pool %s: Mode Config lends IPv4 addresses (INTERNAL_IP4_ADDRESS)", pool)
	case pool.Bits() == 0:
		v.errorf(gp+".pool", "pool %s would lend every address there is; give a prefix of its own, e.g. 10.9.0.0/24", pool)
	case pool.Bits() > 30:
		v.errorf(gp+".pool", "pool %s lends no address: its network and broadcast addresses are never lent, so a pool needs at least a /30", pool)
	default:
		if n := PoolSize(pool); n < uint64(clients) {
			v.errorf(gp+".pool", "pool %s lends %d addresses (the network and broadcast excluded), and %d clients are declared: use a /%d or larger",
				pool, n, clients, poolBitsFor(clients))
		}
		v.poolClash(gp+".pool", pool)
	}
	for _, l := range []struct {
		key  string
		list []Addr
	}{{"dns", gw.DNS}, {"nbns", gw.NBNS}} {
		for i, a := range l.list {
			if !a.Is4() {
				v.errorf(fmt.Sprintf("%s.%s[%d]", gp, l.key, i), "%s: Mode Config hands out IPv4 servers (INTERNAL_IP4_%s)", a, strings.ToUpper(l.key))
			}
		}
	}
	for i, p := range gw.SplitInclude {
		at := fmt.Sprintf("%s.split-include[%d]", gp, i)
		if !v.given(at) {
			at = gp + ".split-include"
		}
		if !p.Addr().Is4() {
			v.errorf(at, "split-include %s: Mode Config's split tunnel is IPv4", p)
		}
	}
	for _, f := range []struct{ key, value string }{{"banner", gw.Banner}, {"default-domain", gw.DefaultDomain}} {
		if len(f.value) > 65535 {
			v.errorf(gp+"."+f.key, "%s is longer than an attribute holds (65535 bytes)", f.key)
		}
	}
	if _, ctl := controlChar(gw.DefaultDomain); ctl || strings.ContainsAny(gw.DefaultDomain, " \n\t") {
		v.errorf(gp+".default-domain", "default-domain %q is a DNS domain: no spaces or control characters", gw.DefaultDomain)
	}
}

// modeConfigChild checks a child whose initiators take their address from
// Mode Config: it is a tunnel, the client's selector is its address and the
// gateway's the split-include networks, so the lab writes neither.
func (v *labChecker) modeConfigChild(path string, c *IPsecConn) {
	ch := &c.Child
	if ch.Mode == TransportMode {
		v.errorf(path+".mode", "a pool lends each client an inner address, which only tunnel mode carries: leave mode out, or drop the pool")
	}
	if len(ch.LocalTS) > 0 {
		v.errorf(path+".local-ts", "a client's local-ts is the address Mode Config gives it from the pool: leave local-ts out")
	}
	if len(ch.RemoteTS) > 0 {
		v.errorf(path+".remote-ts", "with a pool, a client's remote-ts is the gateway's split-include networks (or everything): write them as split-include on the responder")
	}
	if ch.Start == StartTrap {
		v.errorf(path+".start", "a client has no address until Mode Config gives it one, so nothing to trap: use start (the default with a pool) or none")
	}
}

// PoolSize is how many addresses a pool lends: all of the prefix but its
// network and broadcast addresses.
func PoolSize(p netip.Prefix) uint64 {
	hostBits := p.Addr().BitLen() - p.Bits()
	if hostBits < 2 {
		return 0
	}
	if hostBits >= 64 {
		return ^uint64(0)
	}
	return 1<<hostBits - 2
}

// poolBitsFor is the longest IPv4 prefix that lends n addresses.
func poolBitsFor(n int) int {
	return 32 - bits.Len(uint(n+1))
}

// poolClash reports a pool that holds an address of the lab: a client lent
// it would clash with the interface that has it.
func (v *labChecker) poolClash(at string, pool netip.Prefix) {
	for _, name := range v.lab.NodeNames() {
		for _, i := range v.lab.Topology.Nodes[name].Ifaces {
			for _, a := range i.Addrs {
				if pool.Contains(a.Addr()) || a.Contains(pool.Addr()) {
					v.errorf(at, "pool %s overlaps %s on %s:%s: the addresses it lends must be nobody's in the lab; take a prefix no link or LAN uses", pool, a, name, i.Name)
					return
				}
			}
		}
	}
}

// remoteAccess reports whether a connection uses any remote-access setting.
func (c *IPsecConn) remoteAccess() bool {
	if c.Auth.Method.XAuth() || len(c.Initiators) > 1 || c.Remote != "" {
		return true
	}
	for _, s := range c.sides("") {
		if s.p.XAuth != nil {
			return true
		}
		for _, f := range s.p.modeCfgFields() {
			if f.set {
				return true
			}
		}
	}
	return false
}

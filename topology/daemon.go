package topology

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"reflect"
	"sort"

	"gopkg.in/yaml.v3"
)

// DaemonConfig configures `ipseclab daemon`: ipseclab's IPsec stack running on
// its own, outside a lab, in the network namespace where it is started. It
// holds one node's connections in the same vocabulary as a lab's ipsec: block,
// seen from this node.
type DaemonConfig struct {
	Node        string                 `yaml:"node"`   // name used in events; default: the host name
	Socket      string                 `yaml:"socket"` // control socket; default /run/ipseclab/daemon-<node>.sock
	PublishKeys bool                   `yaml:"keys"`   // publish derived keys (teaching, Wireshark)
	Connections map[string]*DaemonConn `yaml:"connections" lab:"required"`

	File string `yaml:"-"`
	pos  map[string]Pos
}

// DaemonConn is one connection of a standalone daemon.
type DaemonConn struct {
	Role   string       `yaml:"role"` // initiator (default) or responder
	Local  DaemonLocal  `yaml:"local" lab:"required"`
	Remote DaemonPeer   `yaml:"remote"`
	Auth   Auth         `yaml:"auth" lab:"required"`
	IKE    IKEOptions   `yaml:"ike"`
	Child  ChildOptions `yaml:"child" lab:"required"`

	// Side is the connection from this node, as a lab node's connections
	// are (Lab.SidesOf): filled by validation.
	Side Side `yaml:"-"`
}

// DaemonPeer is one end of a daemon's connection.
type DaemonPeer struct {
	Address Addr   `yaml:"address"` // required locally; remotely, empty accepts any (responder)
	ID      string `yaml:"id"`
}

// DaemonLocal is a daemon connection's own end: with certificate
// authentication, its files too (a daemon has no lab PKI).
type DaemonLocal struct {
	DaemonPeer `yaml:",inline"`
	Cert       string `yaml:"cert"`
	Key        string `yaml:"key"`
	CACert     string `yaml:"cacert"`
	PeerCert   string `yaml:"peer-cert"` // the peer's certificate (rsa-encryption)
}

// ParseDaemon decodes and validates a daemon configuration.
func ParseDaemon(file string, data []byte) (*DaemonConfig, error) {
	if err := tooLarge(file, data); err != nil {
		return nil, err
	}
	var root yaml.Node
	if err := yaml.NewDecoder(bytes.NewReader(data)).Decode(&root); err != nil {
		return nil, Errors{syntaxError(file, data, err)}
	}
	d := &decoder{file: file, pos: map[string]Pos{}}
	cfg := &DaemonConfig{File: file}
	d.decode(&root, reflect.ValueOf(cfg).Elem(), "")
	cfg.pos = d.pos
	cfg.validate(&d.errs)
	if err := d.errs.sorted(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// LoadDaemon reads a daemon configuration file.
func LoadDaemon(path string) (*DaemonConfig, error) {
	data, err := readBounded(path)
	if err != nil {
		return nil, err
	}
	return ParseDaemon(path, data)
}

// validate checks each connection the way a lab's are checked: the shared
// checks take a connection written from its initiator, as a lab writes it,
// and the daemon gets it back as its own side.
func (c *DaemonConfig) validate(errs *Errors) {
	if c.Node == "" {
		if h, err := os.Hostname(); err == nil {
			c.Node = h
		} else {
			c.Node = "daemon"
		}
	}
	if c.Socket == "" {
		c.Socket = "/run/ipseclab/daemon-" + c.Node + ".sock"
	}
	// The shared checks run on a lab that holds just these connections.
	lab := &Lab{File: c.File, pos: c.pos, IPsec: map[string]*IPsecConn{}}
	v := &labChecker{lab: lab, errs: errs}
	names := make([]string, 0, len(c.Connections))
	for n := range c.Connections {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		dc := c.Connections[name]
		path := "connections." + name
		if dc.Role == "" {
			dc.Role = "initiator"
		}
		if dc.Role != "initiator" && dc.Role != "responder" {
			v.errorf(path+".role", "role %q is neither initiator nor responder", dc.Role)
		}
		if !dc.Local.Address.IsValid() {
			v.errorf(path+".local", "the local address is required (the address IKE and ESP use here)")
		}
		if dc.Role == "initiator" && !dc.Remote.Address.IsValid() {
			v.errorf(path+".remote", "an initiator needs the remote address")
		}
		local := Peer{Node: c.Node, Address: dc.Local.Address, ID: dc.Local.ID, idGiven: dc.Local.ID != "",
			Cert: dc.Local.Cert, Key: dc.Local.Key, CACert: dc.Local.CACert, PeerCert: dc.Local.PeerCert}
		remote := Peer{Node: "peer", Address: dc.Remote.Address, ID: dc.Remote.ID}
		conn := &IPsecConn{Auth: dc.Auth, IKE: dc.IKE, Child: dc.Child, Name: name}
		// Lab connections write traffic selectors from the initiator's side.
		if dc.Role == "initiator" {
			conn.Initiator, conn.Responder = local, remote
		} else {
			conn.Initiator, conn.Responder = remote, local
			conn.Child.LocalTS, conn.Child.RemoteTS = dc.Child.RemoteTS, dc.Child.LocalTS
		}
		v.connSettings(path, conn)
		if conn.Auth.Method.XAuth() {
			v.errorf(path+".auth.method", "the daemon does not take remote access (%s) yet: it is a lab's (xauth, pool on the sides of a connection)", conn.Auth.Method)
		}
		lp := &conn.Initiator
		if dc.Role != "initiator" {
			lp = &conn.Responder
		}
		for _, p := range []struct{ key, id string }{{"local", dc.Local.ID}, {"remote", dc.Remote.ID}} {
			if _, _, err := ParseID(p.id, netip.IPv4Unspecified()); p.id != "" && err != nil {
				v.errorf(path+"."+p.key+".id", "%s", err)
			}
		}
		v.sideCerts(conn, certSide{path: path + ".local", p: lp})
		if dc.Role == "initiator" {
			dc.Side = sideOf(conn, &conn.Initiator)
		} else {
			// A responder accepts its peer from anywhere, and expects it at
			// the remote address given, to tell its peers apart.
			dc.Side = sideOf(conn, nil)
			dc.Side.RemoteFrom = dc.Remote.Address.Addr
		}
	}
	if len(c.Connections) == 0 {
		errs.add(Pos{File: c.File, Line: 1, Col: 1}, "the daemon has no connections")
	}
}

// String describes the configuration in one line.
func (c *DaemonConfig) String() string {
	return fmt.Sprintf("daemon %s: %d connections, control socket %s", c.Node, len(c.Connections), c.Socket)
}

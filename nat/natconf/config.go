package natconf

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Config is a NAT node's behaviour, the value of the `nat:` key of a `kind: nat`
// node in a lab file:
//
//	home-nat: {kind: nat, nat: {outside: eth1, udp-timeout: 30s, ports: random, esp: drop,
//	           ike-port: remap, forward: [{proto: udp, port: 500, to: 192.168.1.10}]}}
//
// The zero value is a plain home router: masquerade on the interface of the
// default route, ports preserved, ESP passed, the kernel's UDP timeouts.
type Config struct {
	// Outside is the interface that faces the outside world. Traffic from the
	// inside is masqueraded to this interface's address. Empty means the
	// interface that holds the node's default route (see
	// nat.DefaultRouteInterface), looked up when the box starts.
	Outside string `yaml:"outside,omitempty"`

	// UDPTimeout is how long an idle UDP mapping lives. When it passes
	// without a packet, the NAT forgets the mapping: the next packet from
	// the inside gets a new one (in ports: random mode, a new port), and
	// packets from the peer to the old one are dropped.
	//
	// Lesson: NAT-T keepalives (RFC 3948 section 4: a one-byte 0xFF
	// datagram; strongSwan sends one every 20 s) exist to keep this from
	// happening in the quiet between IKE and ESP packets. Set the timeout
	// below the keepalive interval to watch a tunnel break, and DPD (RFC
	// 3706) notice it.
	//
	// It sets conntrack's nf_conntrack_udp_timeout in the node's namespace,
	// and also nf_conntrack_udp_timeout_stream unless UDPStreamTimeout is set,
	// so a mapping lives this long whether or not the peer has answered.
	// Zero keeps the kernel's defaults (30 s before a reply, 120 s for a
	// stream). Whole seconds, 1s to 24h.
	UDPTimeout Duration `yaml:"udp-timeout,omitempty"`

	// UDPStreamTimeout, when set, is the idle timeout of UDP mappings that
	// have seen an answer and are still in use two seconds after their
	// first packet (conntrack's "stream", nf_conntrack_udp_timeout_stream);
	// UDPTimeout then covers the others, above all mappings whose first
	// packet was never answered.
	//
	// Lesson: many NATs keep one-way "probe" mappings briefly and established
	// flows longer, so an IKE SA survives where a first unanswered packet
	// does not.
	UDPStreamTimeout Duration `yaml:"udp-stream-timeout,omitempty"`

	// Ports chooses a new mapping's external port: preserve (the default) or
	// random.
	Ports Ports `yaml:"ports,omitempty"`

	// ESP says whether raw ESP (IP protocol 50) crosses the NAT: pass (the
	// default) or drop.
	ESP ESP `yaml:"esp,omitempty"`

	// IKEPort says what happens to source port 500 on the way out: preserve
	// (the default) or remap.
	IKEPort IKEPort `yaml:"ike-port,omitempty"`

	// Forward lists port forwards (DNAT): packets that arrive on the outside
	// interface for the given protocol and port are sent to a host inside.
	//
	// Lesson: a responder behind a NAT is reachable only through forwards,
	// typically UDP 500 and 4500 to the gateway (RFC 3947 section 4 explains
	// why both ports matter).
	Forward []Forward `yaml:"forward,omitempty"`

	// pos records where each key's value sat in the lab file, so that Validate
	// can point at it. Keys of Forward entries live in Forward.pos.
	pos map[string]Pos
}

// Ports is the port-allocation behaviour of a NAT.
type Ports string

const (
	// PortsPreserve keeps the inside host's source port when no other mapping
	// on the outside already uses it, as most home routers do. A gateway
	// that sends IKE from UDP 500 is still seen from port 500, but from the
	// NAT's address: NAT-D (RFC 3947 section 3.2) still detects the NAT,
	// because the hash covers the address too. Two hosts behind the same NAT
	// talking to the same peer from the same port cannot both keep it; the
	// second gets another port.
	PortsPreserve Ports = "preserve"

	// PortsRandom gives every new UDP or TCP mapping a random unprivileged
	// external port (1024-65535, fully random), whatever port the inside
	// host used, as carrier-grade NATs and many firewalls do. The peer sees
	// a port the host never chose, so it must answer to the address and port
	// each packet came from, never to the ones it configured; and after a
	// mapping expires or the NAT reboots, the same host reappears from a
	// different port.
	PortsRandom Ports = "random"
)

// ESP is whether a NAT carries raw ESP.
type ESP string

const (
	// ESPPass lets ESP (IP protocol 50) through, with its source address
	// rewritten. ESP has no ports, so conntrack can tell its flows apart only
	// by address: one inside host at a time can use ESP with a given peer,
	// the "IPsec passthrough" of home routers.
	ESPPass ESP = "pass"

	// ESPDrop discards ESP in both directions, as many NATs do because they
	// cannot map a protocol without ports. IKE on UDP still works, the
	// tunnel comes up, and then no data passes, unless NAT-T moved ESP into
	// UDP 4500 (RFC 3948). Lesson: this is why NAT traversal exists.
	ESPDrop ESP = "drop"
)

// IKEPort is what a NAT does to IKE's well-known source port.
type IKEPort string

const (
	// IKEPortPreserve treats UDP 500 like any other port (see Ports).
	IKEPortPreserve IKEPort = "preserve"

	// IKEPortRemap rewrites source port 500 to a high port (1024-65535) on the
	// way out, as NATs do that keep low ports for themselves. The peer then
	// sees IKE arrive from, say, 198.51.100.2:31874, and must answer there,
	// not to port 500. Lesson: it makes NAT-T's port handling matter (RFC
	// 3947 section 4): behind a port-preserving NAT, a peer that answers
	// port 500 works by accident; behind this one it never reaches the
	// initiator.
	IKEPortRemap IKEPort = "remap"
)

// Proto is a forwardable transport protocol.
type Proto string

// The protocols a forward can carry.
const (
	UDP Proto = "udp"
	TCP Proto = "tcp"
)

// Forward is one port forward (DNAT): packets for Proto/Port arriving on the
// outside interface go to To.
type Forward struct {
	Proto Proto  `yaml:"proto"`
	Port  uint16 `yaml:"port"`
	// To is the inside host, as an IPv4 address with an optional port
	// ("192.168.1.10" or "192.168.1.10:4500"). Without a port, the
	// destination port is kept.
	To Target `yaml:"to"`

	pos map[string]Pos
}

// Target is a forward's destination: an IPv4 address and, optionally, a port
// (zero when the destination port is kept).
type Target netip.AddrPort

// ParseTarget parses "192.168.1.10" or "192.168.1.10:4500".
func ParseTarget(s string) (Target, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		if ap.Port() == 0 {
			return Target{}, fmt.Errorf("%q: port 0 cannot be forwarded to (leave the port out to keep the original one)", s)
		}
		if !ap.Addr().Is4() {
			return Target{}, fmt.Errorf("%q: the NAT translates IPv4 only", s)
		}
		return Target(ap), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return Target{}, fmt.Errorf("%q is not an IPv4 address or address:port", s)
	}
	if !a.Is4() {
		return Target{}, fmt.Errorf("%q: the NAT translates IPv4 only", s)
	}
	return Target(netip.AddrPortFrom(a, 0)), nil
}

// Addr is the inside host's address.
func (t Target) Addr() netip.Addr { return netip.AddrPort(t).Addr() }

// Port is the destination port on the inside host, or 0 to keep the original.
func (t Target) Port() uint16 { return netip.AddrPort(t).Port() }

// String renders the target as it is written in a lab file.
func (t Target) String() string {
	if t.Port() == 0 {
		return t.Addr().String()
	}
	return netip.AddrPort(t).String()
}

// MarshalYAML writes the target as it is written in a lab file.
func (t Target) MarshalYAML() (any, error) { return t.String(), nil }

// UnmarshalYAML reads "address" or "address:port".
func (t *Target) UnmarshalYAML(n *yaml.Node) error {
	s, err := scalar(n, "an IPv4 address, optionally with :port")
	if err != nil {
		return err
	}
	*t, err = ParseTarget(s)
	return err
}

// Duration is a timeout written as a Go duration ("30s", "2m").
type Duration time.Duration

// MaxTimeout bounds the timeouts a lab may set; conntrack keeps them in jiffies
// in a 32-bit int, and a day is already far beyond any real NAT.
const MaxTimeout = 24 * time.Hour

// UnmarshalYAML parses a duration; a bare number is refused because the unit
// would be a guess.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	s, err := scalar(n, `a duration such as "30s"`)
	if err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		if _, nerr := strconv.ParseFloat(s, 64); nerr == nil {
			return fmt.Errorf("%q has no unit: write e.g. %ss", s, s)
		}
		return fmt.Errorf("%q is not a duration (e.g. 30s, 2m)", s)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration as Go prints it ("30s").
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// String prints the duration as Go does.
func (d Duration) String() string { return time.Duration(d).String() }

// Pos is a place in the lab file (1-based; zero when unknown).
type Pos struct{ Line, Column int }

// FieldError is a problem with one field of a NAT node's configuration. It
// satisfies topology.FieldError (the Field method) and carries the position of
// the offending value, so the lab file's error can read
// "lab.yaml:5:30: nat.udp-timeout: "3O s" is not a duration (e.g. 30s, 2m)".
type FieldError struct {
	// Path is the offending key below the nat: block, such as "udp-timeout"
	// or "forward[1].to" (list indexes count from 0); empty for the block
	// itself.
	Path string
	// Pos is where the offending value is in the lab file, when the
	// configuration was decoded from YAML.
	Pos Pos
	Err error
}

// Field is the offending key below the nat: block ("udp-timeout", "forward[1].to").
func (e *FieldError) Field() string { return e.Path }

// Position is the line and column of the offending value (0, 0 when unknown).
func (e *FieldError) Position() (line, column int) { return e.Pos.Line, e.Pos.Column }

// Error names the field from the node's point of view ("nat.udp-timeout: ...");
// the caller that knows the file and line prefixes them.
func (e *FieldError) Error() string {
	if e.Path == "" {
		return fmt.Sprintf("nat: %v", e.Err)
	}
	return fmt.Sprintf("nat.%s: %v", e.Path, e.Err)
}

func (e *FieldError) Unwrap() error { return e.Err }

// configKeys are the keys of the nat: mapping, in the order the docs list them.
var configKeys = []string{"outside", "udp-timeout", "udp-stream-timeout", "ports", "esp", "ike-port", "forward"}

// UnmarshalYAML decodes the nat: mapping. Unknown keys and values of the wrong
// shape are errors (*FieldError, joined) that name the key and point at the
// value; semantic checks are left to Validate, which uses the positions
// recorded here.
func (c *Config) UnmarshalYAML(n *yaml.Node) error {
	n = resolve(n)
	if n.Kind != yaml.MappingNode {
		return &FieldError{Pos: posOf(n), Err: fmt.Errorf("want a mapping of %s", strings.Join(configKeys, ", "))}
	}
	*c = Config{pos: map[string]Pos{}}
	var errs []error
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], resolve(n.Content[i+1])
		field := k.Value
		if _, dup := c.pos[k.Value]; dup {
			errs = append(errs, &FieldError{Path: field, Pos: posOf(k), Err: errors.New("given twice")})
			continue
		}
		c.pos[k.Value] = posOf(v)
		if isNull(v) {
			continue
		}
		var err error
		switch k.Value {
		case "outside":
			c.Outside, err = scalar(v, "an interface name")
		case "udp-timeout":
			err = v.Decode(&c.UDPTimeout)
		case "udp-stream-timeout":
			err = v.Decode(&c.UDPStreamTimeout)
		case "ports":
			err = v.Decode(&c.Ports)
		case "esp":
			err = v.Decode(&c.ESP)
		case "ike-port":
			err = v.Decode(&c.IKEPort)
		case "forward":
			if v.Kind != yaml.SequenceNode {
				err = errors.New("want a list of {proto, port, to}")
				break
			}
			c.Forward = make([]Forward, len(v.Content))
			for j, item := range v.Content {
				if ferr := item.Decode(&c.Forward[j]); ferr != nil {
					errs = append(errs, within(fmt.Sprintf("%s[%d]", field, j), posOf(resolve(item)), ferr))
				}
			}
		default:
			err = fmt.Errorf("unknown key (known: %s)", strings.Join(configKeys, ", "))
			c.pos[k.Value] = posOf(k)
		}
		if err != nil {
			errs = append(errs, within(field, c.pos[k.Value], err))
		}
	}
	return errors.Join(errs...)
}

var forwardKeys = []string{"proto", "port", "to"}

// UnmarshalYAML decodes one forward, {proto: udp, port: 500, to: 192.168.1.10}.
// Errors are *FieldError with a Path relative to the forward ("to").
func (f *Forward) UnmarshalYAML(n *yaml.Node) error {
	n = resolve(n)
	if n.Kind != yaml.MappingNode {
		return errors.New("want a mapping {proto, port, to}")
	}
	*f = Forward{pos: map[string]Pos{"": posOf(n)}} // "": the forward itself, for missing keys
	var errs []error
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], resolve(n.Content[i+1])
		if seen[k.Value] {
			errs = append(errs, &FieldError{Path: k.Value, Pos: posOf(k), Err: errors.New("given twice")})
			continue
		}
		seen[k.Value] = true
		f.pos[k.Value] = posOf(v)
		var err error
		switch k.Value {
		case "proto":
			var s string
			if s, err = scalar(v, "udp or tcp"); err == nil {
				f.Proto = Proto(s)
				err = f.Proto.check()
			}
		case "port":
			var s string
			if s, err = scalar(v, "a port number"); err == nil {
				f.Port, err = parsePort(s)
			}
		case "to":
			err = v.Decode(&f.To)
		default:
			err = fmt.Errorf("unknown key (known: %s)", strings.Join(forwardKeys, ", "))
			f.pos[k.Value] = posOf(k)
		}
		if err != nil {
			errs = append(errs, &FieldError{Path: k.Value, Pos: f.pos[k.Value], Err: err})
		}
	}
	return errors.Join(errs...)
}

// UnmarshalYAML accepts only the known values, so a typo is caught where it is.
func (p *Ports) UnmarshalYAML(n *yaml.Node) error { return decodeEnum(n, p, Ports.check) }

// UnmarshalYAML accepts only the known values.
func (e *ESP) UnmarshalYAML(n *yaml.Node) error { return decodeEnum(n, e, ESP.check) }

// UnmarshalYAML accepts only the known values.
func (i *IKEPort) UnmarshalYAML(n *yaml.Node) error { return decodeEnum(n, i, IKEPort.check) }

func (p Ports) check() error { return oneOf(string(p), string(PortsPreserve), string(PortsRandom)) }
func (e ESP) check() error   { return oneOf(string(e), string(ESPPass), string(ESPDrop)) }
func (i IKEPort) check() error {
	return oneOf(string(i), string(IKEPortPreserve), string(IKEPortRemap))
}
func (p Proto) check() error { return oneOf(string(p), string(UDP), string(TCP)) }

// oneOf accepts "" (the default) or one of the values.
func oneOf(v string, values ...string) error {
	if v == "" || slices.Contains(values, v) {
		return nil
	}
	return fmt.Errorf("unknown value %q (want %s)", v, strings.Join(values, " or "))
}

func decodeEnum[T ~string](n *yaml.Node, out *T, check func(T) error) error {
	s, err := scalar(n, "a word")
	if err != nil {
		return err
	}
	v := T(s)
	if err := check(v); err != nil {
		return err
	}
	*out = v
	return nil
}

func parsePort(s string) (uint16, error) {
	p, err := strconv.ParseUint(s, 10, 16)
	if err != nil || p == 0 {
		return 0, fmt.Errorf("%q is not a port (1-65535)", s)
	}
	return uint16(p), nil
}

// Validate checks the whole configuration, including what decoding cannot see
// (a Config built in Go, timeouts out of range, duplicate forwards). It returns
// nil or *FieldError values joined with errors.Join.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key string, err error) {
		errs = append(errs, &FieldError{Path: key, Pos: c.pos[key], Err: err})
	}
	if c.Outside != "" {
		if err := checkIfName(c.Outside); err != nil {
			bad("outside", err)
		}
	}
	if err := checkTimeout(c.UDPTimeout); err != nil {
		bad("udp-timeout", err)
	}
	if err := checkTimeout(c.UDPStreamTimeout); err != nil {
		bad("udp-stream-timeout", err)
	}
	if err := c.Ports.check(); err != nil {
		bad("ports", err)
	}
	if err := c.ESP.check(); err != nil {
		bad("esp", err)
	}
	if err := c.IKEPort.check(); err != nil {
		bad("ike-port", err)
	}
	seen := map[string]int{}
	for i, f := range c.Forward {
		path := fmt.Sprintf("forward[%d]", i)
		fbad := func(key string, err error) {
			p, ok := f.pos[key]
			if !ok {
				p = f.pos[""]
			}
			errs = append(errs, &FieldError{Path: path + "." + key, Pos: p, Err: err})
		}
		switch {
		case f.Proto == "":
			fbad("proto", errors.New("missing (udp or tcp)"))
		case f.Proto.check() != nil:
			fbad("proto", f.Proto.check())
		}
		if f.Port == 0 {
			fbad("port", errors.New("missing (1-65535)"))
		}
		switch {
		case !f.To.Addr().IsValid():
			fbad("to", errors.New("missing (the inside host's IPv4 address)"))
		case !f.To.Addr().Is4():
			fbad("to", errors.New("the NAT translates IPv4 only"))
		}
		key := fmt.Sprintf("%s/%d", f.Proto, f.Port)
		if j, dup := seen[key]; dup && f.Port != 0 {
			fbad("port", fmt.Errorf("%s is already forwarded by forward[%d]", key, j))
		}
		seen[key] = i
	}
	return errors.Join(errs...)
}

// CheckInterfaces checks that the outside interface is one of the node's
// interfaces (names as in the lab file's links). The topology layer calls it,
// because only it knows the node's links. An empty Outside passes: the
// default route decides at run time.
func (c *Config) CheckInterfaces(names []string) error {
	if c.Outside == "" || slices.Contains(names, c.Outside) {
		return nil
	}
	have := "it has none"
	if len(names) > 0 {
		have = "it has " + strings.Join(names, ", ")
	}
	return &FieldError{Path: "outside", Pos: c.pos["outside"],
		Err: fmt.Errorf("the node has no interface %q (%s)", c.Outside, have)}
}

func checkTimeout(d Duration) error {
	v := time.Duration(d)
	switch {
	case v == 0:
		return nil
	case v < time.Second:
		return fmt.Errorf("%v is below 1s, the resolution of conntrack's timeouts", v)
	case v%time.Second != 0:
		return fmt.Errorf("%v is not a whole number of seconds, the resolution of conntrack's timeouts", v)
	case v > MaxTimeout:
		return fmt.Errorf("%v is above the %v limit", v, MaxTimeout)
	}
	return nil
}

// checkIfName applies the kernel's rules for interface names (dev_valid_name).
func checkIfName(s string) error {
	if len(s) > 15 || s == "." || s == ".." || strings.ContainsAny(s, "/: \t\n\x00") {
		return fmt.Errorf("%q is not a valid interface name", s)
	}
	return nil
}

// within prefixes the fields of errors from a nested decoder with path, and
// wraps any other error as a problem of path itself.
func within(path string, pos Pos, err error) error {
	var out []error
	for _, e := range flatten(err) {
		if fe, ok := e.(*FieldError); ok {
			out = append(out, &FieldError{Path: path + "." + fe.Path, Pos: fe.Pos, Err: fe.Err})
		} else {
			out = append(out, &FieldError{Path: path, Pos: pos, Err: e})
		}
	}
	return errors.Join(out...)
}

func flatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}

// scalar returns a scalar node's text, or an error saying what was wanted.
func scalar(n *yaml.Node, want string) (string, error) {
	n = resolve(n)
	if n.Kind != yaml.ScalarNode {
		return "", fmt.Errorf("want %s", want)
	}
	return n.Value, nil
}

func resolve(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.Tag == "!!null" }

func posOf(n *yaml.Node) Pos { return Pos{Line: n.Line, Column: n.Column} }

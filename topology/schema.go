package topology

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"

	"github.com/ipseclab/ipseclab/impair/netem"
)

// Schema returns a JSON Schema (draft 2020-12) of the lab file format as it is
// written: durations, rates and percentages as text with their units, the
// words each setting takes, kebab-case keys. It is built from the Go types the
// decoder fills, so that the two cannot drift apart; where a type reads its
// own YAML (an address, a duration, a NAT box, an impairment) its written form
// comes from the type's package, never from its Go fields. Editors use it to
// complete and check lab files (for VS Code's YAML extension:
// `# yaml-language-server: $schema=ipseclab.schema.json`).
//
// The reflection is this package's own rather than
// github.com/invopop/jsonschema's: that one decides what is required from
// `jsonschema:"required"` tags or from omitempty, so every struct would carry
// a second tag beside the decoder's `lab:"required"`, which could then drift
// apart; and the written forms (special, written, selfDescribing) would still
// be spelled out type by type, as they are here.
func Schema() ([]byte, error) {
	s, err := schemaOf(reflect.TypeOf(Lab{}))
	if err != nil {
		return nil, err
	}
	defs := obj{}
	for t, d := range special {
		defs[defName(t)] = d
	}
	s["$defs"] = defs
	s["$schema"] = "https://json-schema.org/draft/2020-12/schema"
	s["$id"] = "https://ipseclab.dev/schema/lab.json"
	s["title"] = "ipseclab lab file"
	return json.MarshalIndent(s, "", "  ")
}

type obj = map[string]any

// selfDescribing is implemented by section types of other packages that read
// their own YAML (natconf.Config): they say how it is written.
type selfDescribing interface {
	JSONSchema() map[string]any
}

var selfDescribingType = reflect.TypeOf((*selfDescribing)(nil)).Elem()

// goDurationPattern is what time.ParseDuration reads without a sign, which is
// what Duration accepts, or 0.
const goDurationPattern = `^(0|(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$`

var (
	durationSchema = obj{"type": "string", "pattern": goDurationPattern, "description": "a duration with a unit: 30s, 500ms, 1h, 1m30s"}
	addrSchema     = obj{"type": "string", "description": "an IP address, e.g. 10.0.0.1", "anyOf": []obj{{"format": "ipv4"}, {"format": "ipv6"}}}
	prefixSchema   = obj{"type": "string", "description": "a prefix like 10.1.0.0/24, an address, or default", "pattern": `^(default|[0-9a-fA-F.:]+(/[0-9]{1,3})?)$`}
	ifAddrSchema   = obj{"type": "string", "description": "an interface address with prefix length, e.g. 10.0.0.1/24", "pattern": `^[0-9a-fA-F.:]+/[0-9]{1,3}$`}
	// The decoder takes the text of any scalar for a string (`secret: 1234`
	// is the secret "1234"), and so does the schema.
	textSchema = obj{"type": []string{"string", "number", "boolean"}}
)

// special maps the value types that read their YAML themselves to their
// written form. Each is defined once, under $defs, and referred to where used.
var special = map[reflect.Type]obj{
	reflect.TypeOf(Duration{}):   durationSchema,
	reflect.TypeOf(Keepalive{}):  {"description": "NAT-T keepalive interval (at least 1s), or off", "anyOf": []obj{durationSchema, {"enum": []any{"off", false}}}},
	reflect.TypeOf(Addr{}):       addrSchema,
	reflect.TypeOf(Prefix{}):     prefixSchema,
	reflect.TypeOf(Endpoint{}):   {"type": "string", "pattern": `^[^:\s]+:[^:/\s]{1,15}$`, "description": "node:interface, e.g. gw1:eth0"},
	reflect.TypeOf(AddrList{}):   {"description": "the endpoint's address(es), or null for none", "anyOf": []obj{{"type": "null"}, ifAddrSchema, {"type": "array", "items": ifAddrSchema}}},
	reflect.TypeOf(PrefixList{}): {"description": "one prefix or a list", "anyOf": []obj{prefixSchema, {"type": "array", "items": prefixSchema}}},
	reflect.TypeOf(Size(0)):      {"description": "bytes: 1000, 64kb, 10mb, 1gb, 64KiB (any case)", "anyOf": []obj{{"type": "integer", "minimum": 0}, {"type": "string", "pattern": `^[0-9]+ *([kKmMgG]([iI][bB]|[bB])?|[bB])?$`}}},
	reflect.TypeOf(Percent(0)):   {"description": "a percentage: 80% or 80", "anyOf": []obj{{"type": "number", "minimum": 0, "maximum": 100}, {"type": "string", "pattern": `^ *([0-9]+(\.[0-9]*)?|\.[0-9]+) *%? *$`}}},
	reflect.TypeOf(Kind("")):     {"type": "string", "enum": kindList(), "description": kindDoc()},
	reflect.TypeOf(netem.Params{}): impairSchema("a link's impairments, in tc netem's words; top-level settings apply to both directions, " +
		"a-to-b: and b-to-a: blocks override them (a-to-b runs from the first endpoint)"),
	reflect.TypeOf(netem.Change{}): impairSchema("the settings to change, with the keys of a link's impair block"),
	reflect.TypeOf(netem.Netem{}):  netemSchema(),
}

// defName names a special type under $defs: "Duration", "impair.Params". The
// types of package netem keep the names they had as package impair's, which
// is also the lab file's word for them, so that the schema stays the same.
func defName(t reflect.Type) string {
	name := strings.TrimPrefix(t.String(), "topology.")
	if rest, ok := strings.CutPrefix(name, "netem."); ok {
		return "impair." + rest
	}
	return name
}

func ref(t reflect.Type) obj { return obj{"$ref": "#/$defs/" + defName(t)} }

// impairValues is the written form of each impairment setting.
var impairValues = map[netem.Field]obj{
	netem.FieldLimit:        {"type": "integer", "minimum": 0},
	netem.FieldDelay:        impairUnit(netem.DurationPattern),
	netem.FieldJitter:       impairUnit(netem.DurationPattern),
	netem.FieldDistribution: {"type": "string", "enum": []string{string(netem.Uniform), string(netem.Normal)}},
	netem.FieldLoss:         lossSchema(),
	netem.FieldDuplicate:    impairUnit(netem.PercentPattern),
	netem.FieldReorder:      impairUnit(netem.PercentPattern),
	netem.FieldCorrupt:      impairUnit(netem.PercentPattern),
	netem.FieldRate:         impairUnit(netem.RatePattern),
	netem.FieldGap:          {"type": "integer", "minimum": 0},
	netem.FieldMTU:          {"type": "integer", "minimum": 0},
	netem.FieldDown:         {"type": "boolean"},
}

// impairUnit is a value with a unit, or a bare 0 (which YAML reads as a number).
func impairUnit(pattern string) obj {
	return obj{"anyOf": []obj{{"type": "string", "pattern": pattern}, {"const": 0}}}
}

func lossSchema() obj {
	pct := impairUnit(netem.PercentPattern)
	return obj{"anyOf": []obj{
		{"type": "string", "pattern": netem.LossPattern},
		{"const": 0},
		{"type": "object", "additionalProperties": false, "minProperties": 1, "maxProperties": 1, "properties": obj{
			"random": pct,
			"gemodel": obj{"anyOf": []obj{
				{"type": "string"},
				{"type": "object", "additionalProperties": false, "required": []string{"p"},
					"properties": obj{"p": pct, "r": pct, "1-h": pct, "1-k": pct}},
			}},
		}},
	}}
}

// impairSetting is the schema of one setting of netem.Flags.
func impairSetting(f netem.Flag) obj {
	v, ok := impairValues[f.Field]
	if !ok {
		panic(fmt.Sprintf("topology: no schema for impairment setting %q", f.Name))
	}
	return withDescription(v, f.Usage)
}

// isLinkSetting reports the settings that belong to a link as a whole, which
// a direction block may not hold.
func isLinkSetting(f netem.Flag) bool { return f.Field&(netem.FieldMTU|netem.FieldDown) != 0 }

// netemSchema is one direction's settings, an a-to-b: or b-to-a: block.
func netemSchema() obj {
	props := obj{}
	for _, f := range netem.Flags() {
		if !isLinkSetting(f) {
			props[f.Name] = impairSetting(f)
		}
	}
	return obj{"type": "object", "additionalProperties": false, "properties": props}
}

// impairSchema is an impair block: every setting of netem.Flags for both
// directions and the link, and a-to-b/b-to-a blocks for one direction.
func impairSchema(doc string) obj {
	props := obj{}
	for _, f := range netem.Flags() {
		props[f.Name] = impairSetting(f)
	}
	for _, d := range []netem.Dir{netem.AtoB, netem.BtoA} {
		end := map[netem.Dir]string{netem.AtoB: "first", netem.BtoA: "second"}[d]
		props[d.String()] = withDescription(ref(reflect.TypeOf(netem.Netem{})), "settings for the frames sent by the link's "+end+" endpoint")
	}
	return obj{"type": "object", "additionalProperties": false, "properties": props, "description": doc}
}

func withDescription(s obj, doc string) obj {
	out := obj{"description": doc}
	for k, v := range s {
		out[k] = v
	}
	return out
}

func kindDoc() string {
	var parts []string
	for _, k := range Kinds {
		parts = append(parts, string(k.Kind)+": "+k.Doc)
	}
	return strings.Join(parts, "; ")
}

// pathSchema is a file named relative to the lab file (as text: the decoder
// takes any scalar's text).
func pathSchema(doc string) obj {
	return withDescription(textSchema, doc+"; a path relative to the lab file")
}

func words[W ~string](list []W, doc string) obj {
	return obj{"type": "string", "enum": list, "description": doc}
}

// written is the schema of a field whose Go type says less than the lab file
// does: a word from a fixed list, a rate kept as text, the names of nodes and
// connections. Nil when the Go type says it all.
func written(t reflect.Type, field string) (obj, error) {
	named := func(elem reflect.Type, what string) (obj, error) {
		s, err := schemaOf(elem)
		if err != nil {
			return nil, err
		}
		return obj{"type": "object", "additionalProperties": s, "description": what,
			"propertyNames": obj{"pattern": nodeNameRE.String()}}, nil
	}
	switch t {
	case reflect.TypeOf(Lab{}):
		switch field {
		case "name":
			return obj{"type": "string", "pattern": labNameRE.String(), "description": "the lab's name: it prefixes its namespaces, ipseclab-NAME.NODE"}, nil
		case "ipsec":
			return named(reflect.TypeOf(IPsecConn{}), "IPsec connections by name, in swanctl's vocabulary")
		}
	case reflect.TypeOf(Topology{}):
		if field == "nodes" {
			return named(reflect.TypeOf(Node{}), "the nodes by name; each is a network namespace")
		}
	case reflect.TypeOf(Auth{}):
		switch field {
		case "method":
			return words(authMethods, "how the peers authenticate in phase 1: psk (pre-shared key), pubkey (RSA or ECDSA signatures, "+
				"as the key is), rsa-encryption or rsa-encryption-revised (RFC 2409 public-key encryption); remote access: "+
				"xauth-psk (a group key, then XAUTH), xauth-pubkey (certificates, then XAUTH), hybrid (the gateway's certificate, the client's XAUTH alone)"), nil
		case "secret":
			return withDescription(textSchema, "the pre-shared key (psk, xauth-psk)"), nil
		}
	case reflect.TypeOf(IPsecConn{}):
		switch field {
		case "key-type":
			return words(keyTypes, "the key of the lab PKI's certificates for this connection (when a side names no cert files)"), nil
		case "initiators":
			s, err := schemaOf(reflect.TypeOf(Peer{}))
			if err != nil {
				return nil, err
			}
			return obj{"type": "array", "items": s, "minItems": 1, "description": "the clients of a remote-access gateway (the responder), each a side as initiator: is"}, nil
		case "remote":
			return words(remotePeers, "any: the responder serves any peer, from any address and with any identity (implied by several initiators or a pool)"), nil
		}
	case reflect.TypeOf(XAuth{}):
		switch field {
		case "users":
			return obj{"type": "object", "additionalProperties": textSchema, "propertyNames": obj{"minLength": 1, "pattern": `^[^:\r\n]+$`},
				"description": "the gateway: who may log in, name: password"}, nil
		case "users-file":
			return pathSchema("the gateway: who may log in, as name:password lines (# comments)"), nil
		case "user":
			return withDescription(textSchema, "a client: its XAUTH user name"), nil
		case "password":
			return withDescription(textSchema, "a client: its XAUTH password"), nil
		}
	case reflect.TypeOf(Peer{}):
		switch field {
		case "xauth":
			s, err := schemaOf(reflect.TypeOf(XAuth{}))
			if err != nil {
				return nil, err
			}
			return withDescription(s, "XAUTH (xauth-psk, xauth-pubkey, hybrid): on the responder users or users-file, on an initiator user and password"), nil
		case "pool":
			return withDescription(ref(reflect.TypeOf(Prefix{})), "the responder: the IPv4 prefix Mode Config lends clients their addresses from (network and broadcast excluded), e.g. 10.9.0.0/24"), nil
		case "dns", "nbns":
			return obj{"type": "array", "items": ref(reflect.TypeOf(Addr{})), "description": "the responder: the " + strings.ToUpper(field) + " servers Mode Config hands out"}, nil
		case "split-include":
			return withDescription(ref(reflect.TypeOf(PrefixList{})), "the responder: the networks clients send into the tunnel (Cisco Unity split include); none: everything"), nil
		case "modecfg":
			return words(modeCfgModes, "the responder: pull (the client asks for its address; the default) or push (the gateway sets it)"), nil
		case "banner":
			return withDescription(textSchema, "the responder: a banner for the clients (Cisco Unity)"), nil
		case "default-domain":
			return withDescription(textSchema, "the responder: the clients' default DNS domain (Cisco Unity)"), nil
		case "id":
			return withDescription(textSchema, "the identity: an address (the default; with cert:, the certificate's subject), "+
				"dn:CN=..., fqdn:..., email:... or keyid:..."), nil
		case "cert":
			return pathSchema("this side's certificate (then any intermediate CAs), PEM or DER; without cert and key the lab PKI issues one"), nil
		case "key":
			return pathSchema("this side's private key, PEM or DER (PKCS#1, PKCS#8 or SEC1)"), nil
		case "cacert":
			return pathSchema("the CA certificate(s) the peer's chain must lead to; default: the lab PKI's CA"), nil
		case "peer-cert":
			return pathSchema("the peer's certificate, known beforehand (rsa-encryption encrypts to it); default: the lab's"), nil
		}
	case reflect.TypeOf(IKEOptions{}):
		if field == "mode" {
			return words(ikeModes, "the phase 1 exchange"), nil
		}
	case reflect.TypeOf(NATTConfig{}):
		if field == "mode" {
			return words(nattModes, "NAT traversal (RFC 3947)"), nil
		}
	case reflect.TypeOf(DPD{}):
		if field == "action" {
			return words(dpdActions, "what to do with a dead peer's SAs"), nil
		}
	case reflect.TypeOf(ChildOptions{}):
		switch field {
		case "mode":
			return words(childModes, "the IPsec SAs' mode"), nil
		case "start":
			return words(startActions, "trap: the first packet starts it; start: at deploy; none: by hand"), nil
		}
	case reflect.TypeOf(TrafficStep{}):
		switch field {
		case "proto":
			return words(protos, "a numbered UDP stream or a checksummed TCP transfer"), nil
		case "rate":
			return withDescription(impairUnit(netem.RatePattern), "udp: pace the packets to this bit rate, e.g. 10mbit"), nil
		}
	case reflect.TypeOf(EventMatch{}):
		if field == "event" {
			return words(eventKinds(), "an event kind"), nil
		}
	case reflect.TypeOf(ExpectStep{}):
		if field == "counter" {
			return words(saCounters, "the SA counter to check"), nil
		}
	}
	return nil, nil
}

// schemaOf describes how a value of type t is written.
func schemaOf(t reflect.Type) (obj, error) {
	if t.Kind() == reflect.Pointer {
		return schemaOf(t.Elem())
	}
	if _, ok := special[t]; ok {
		return ref(t), nil
	}
	if t.Implements(selfDescribingType) {
		return reflect.Zero(t).Interface().(selfDescribing).JSONSchema(), nil
	}
	// A type that reads its own YAML is written as it reads it, which its Go
	// fields do not tell: it must be described above.
	if reflect.PointerTo(t).Implements(unmarshalerType) || reflect.PointerTo(t).Implements(textUnmarshaler) {
		return nil, fmt.Errorf("topology: the schema does not know how %s is written", t)
	}
	var s obj
	switch t.Kind() {
	case reflect.String:
		s = textSchema
	case reflect.Bool:
		s = obj{"type": "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		s = obj{"type": "integer"}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		s = obj{"type": "integer", "minimum": 0}
	case reflect.Float32, reflect.Float64:
		s = obj{"type": "number"}
	case reflect.Slice:
		items, err := schemaOf(t.Elem())
		if err != nil {
			return nil, err
		}
		s = obj{"type": "array", "items": items}
	case reflect.Map:
		values, err := schemaOf(t.Elem())
		if err != nil {
			return nil, err
		}
		s = obj{"type": "object", "additionalProperties": values}
	case reflect.Struct:
		props := obj{}
		var required []string
		if err := addStructProps(t, props, &required); err != nil {
			return nil, err
		}
		s = obj{"type": "object", "properties": props, "additionalProperties": false}
		if len(required) > 0 {
			s["required"] = required
		}
		if t == reflect.TypeOf(IPsecConn{}) {
			// One client (initiator:) or several (initiators:).
			s["oneOf"] = []obj{{"required": []string{"initiator"}}, {"required": []string{"initiators"}}}
		}
		if t == reflect.TypeOf(Step{}) {
			// One action per step (its time, at:, is inside the action).
			s["minProperties"], s["maxProperties"] = 1, 1
		}
	default:
		return nil, fmt.Errorf("topology: the schema cannot describe %s", t)
	}
	if reflect.PointerTo(t).Implements(shorthandType) {
		short := textSchema
		switch t {
		case reflect.TypeOf(WaitStep{}):
			short = ref(reflect.TypeOf(Duration{}))
		case reflect.TypeOf(NATTConfig{}):
			short = words(nattModes, "NAT traversal (RFC 3947)")
		}
		return obj{"anyOf": []obj{short, s}}, nil
	}
	return s, nil
}

func addStructProps(t reflect.Type, props obj, required *[]string) error {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("yaml")
		if !f.IsExported() || tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if opts == "inline" {
			if err := addStructProps(f.Type, props, required); err != nil {
				return err
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		s, err := written(t, name)
		if err == nil && s == nil {
			s, err = schemaOf(f.Type)
		}
		if err != nil {
			return err
		}
		props[name] = s
		if f.Tag.Get("lab") == requiredTagValue {
			*required = append(*required, name)
		}
	}
	return nil
}

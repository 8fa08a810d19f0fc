package topology

import (
	"encoding/json"
	"reflect"
	"strings"

	"gopkg.in/yaml.v3"
)

// Schema returns a JSON Schema (draft 2020-12) of the lab file format, built
// from the same Go types the decoder fills, so the two cannot drift apart.
// Editors use it to complete and check lab files (for VS Code's YAML
// extension: `# yaml-language-server: $schema=ipseclab.schema.json`).
func Schema() ([]byte, error) {
	s := schemaOf(reflect.TypeOf(Lab{}))
	s["$schema"] = "https://json-schema.org/draft/2020-12/schema"
	s["$id"] = "https://ipseclab.dev/schema/lab.json"
	s["title"] = "ipseclab lab file"
	return json.MarshalIndent(s, "", "  ")
}

type obj = map[string]any

var (
	durationSchema = obj{"type": "string", "pattern": `^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`, "description": "a duration with a unit: 30s, 500ms, 1h"}
	addrSchema     = obj{"type": "string", "description": "an IP address, e.g. 10.0.0.1", "anyOf": []obj{{"format": "ipv4"}, {"format": "ipv6"}}}
	prefixSchema   = obj{"type": "string", "description": "a prefix like 10.1.0.0/24, or default", "pattern": `^(default|[0-9a-fA-F.:]+(/[0-9]{1,3})?)$`}
	ifAddrSchema   = obj{"type": "string", "description": "an interface address with prefix length, e.g. 10.0.0.1/24", "pattern": `^[0-9a-fA-F.:]+/[0-9]{1,3}$`}
)

// special maps topology's own value types to their written form.
var special = map[reflect.Type]obj{
	reflect.TypeOf(Duration{}):   durationSchema,
	reflect.TypeOf(Addr{}):       addrSchema,
	reflect.TypeOf(Prefix{}):     prefixSchema,
	reflect.TypeOf(Endpoint{}):   {"type": "string", "pattern": `^[A-Za-z][A-Za-z0-9_-]*:[^:/\s]{1,15}$`, "description": "node:interface, e.g. gw1:eth0"},
	reflect.TypeOf(AddrList{}):   {"description": "the endpoint's address(es), or null for none", "anyOf": []obj{{"type": "null"}, ifAddrSchema, {"type": "array", "items": ifAddrSchema}}},
	reflect.TypeOf(PrefixList{}): {"description": "one prefix or a list", "anyOf": []obj{prefixSchema, {"type": "array", "items": prefixSchema}}},
	reflect.TypeOf(Size(0)):      {"description": "bytes: 1000, 64kb, 10mb, 1gb, 64KiB", "anyOf": []obj{{"type": "integer", "minimum": 0}, {"type": "string", "pattern": `^[0-9]+\s*([kmg]i?b?|b)?$`}}},
	reflect.TypeOf(Percent(0)):   {"description": "a percentage: 80% or 80", "anyOf": []obj{{"type": "number", "minimum": 0, "maximum": 100}, {"type": "string", "pattern": `^[0-9.]+%$`}}},
	reflect.TypeOf(Kind("")):     {"type": "string", "enum": kindList(), "description": kindDoc()},
	reflect.TypeOf(yaml.Node{}):  {"type": "object", "description": "settings decoded by the section's own package"},
}

func kindDoc() string {
	var parts []string
	for _, k := range Kinds {
		parts = append(parts, string(k.Kind)+": "+k.Doc)
	}
	return strings.Join(parts, "; ")
}

func schemaOf(t reflect.Type) obj {
	if t.Kind() == reflect.Pointer {
		return schemaOf(t.Elem())
	}
	if s, ok := special[t]; ok {
		return s
	}
	var s obj
	switch t.Kind() {
	case reflect.String:
		s = obj{"type": "string"}
	case reflect.Bool:
		s = obj{"type": "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		s = obj{"type": "integer"}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		s = obj{"type": "integer", "minimum": 0}
	case reflect.Float32, reflect.Float64:
		s = obj{"type": "number"}
	case reflect.Slice:
		s = obj{"type": "array", "items": schemaOf(t.Elem())}
	case reflect.Map:
		s = obj{"type": "object", "additionalProperties": schemaOf(t.Elem())}
	case reflect.Struct:
		props := obj{}
		var required []string
		addStructProps(t, props, &required)
		s = obj{"type": "object", "properties": props, "additionalProperties": false}
		if len(required) > 0 {
			s["required"] = required
		}
	default:
		s = obj{}
	}
	if reflect.PointerTo(t).Implements(shorthandType) {
		short := obj{"type": "string"}
		if t == reflect.TypeOf(WaitStep{}) {
			short = durationSchema
		}
		return obj{"anyOf": []obj{short, s}}
	}
	return s
}

func addStructProps(t reflect.Type, props obj, required *[]string) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("yaml")
		if !f.IsExported() || tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if opts == "inline" {
			addStructProps(f.Type, props, required)
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		props[name] = schemaOf(f.Type)
		if f.Tag.Get("lab") == requiredTagValue {
			*required = append(*required, name)
		}
	}
}

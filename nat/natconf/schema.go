package natconf

import "fmt"

// JSONSchema describes the nat: block of a lab file as it is written, for
// `ipseclab schema`: the keys UnmarshalYAML reads, timeouts as durations with
// their unit, and the words each behaviour takes.
func (Config) JSONSchema() map[string]any {
	type obj = map[string]any
	words := func(doc string, values ...string) obj {
		return obj{"type": "string", "enum": values, "description": doc}
	}
	timeout := func(doc string) obj {
		return obj{"type": "string", "pattern": durationPattern,
			"description": fmt.Sprintf("%s: a duration such as 30s or 2m, whole seconds from 1s to %v", doc, MaxTimeout)}
	}
	forward := obj{
		"type": "object", "additionalProperties": false, "required": forwardKeys,
		"properties": obj{
			"proto": words("the forwarded protocol", string(UDP), string(TCP)),
			"port":  obj{"type": "integer", "minimum": 1, "maximum": 65535, "description": "the port on the NAT's outside address"},
			"to": obj{"type": "string", "pattern": `^[0-9]{1,3}(\.[0-9]{1,3}){3}(:[0-9]{1,5})?$`,
				"description": "the inside host's IPv4 address, with :port to change the port"},
		},
	}
	props := obj{
		"outside":            obj{"type": "string", "pattern": `^[^/:\s]{1,15}$`, "description": "the interface facing the outside world; default: the interface of the default route"},
		"udp-timeout":        timeout("how long an idle UDP mapping lives"),
		"udp-stream-timeout": timeout("the same for mappings that have seen an answer"),
		"ports":              words("a new mapping's outside port: kept when free, or random from 1024-65535", string(PortsPreserve), string(PortsRandom)),
		"esp":                words("whether raw ESP (protocol 50) crosses the NAT", string(ESPPass), string(ESPDrop)),
		"ike-port":           words("whether source port 500 is kept or moved to 1024-65535", string(IKEPortPreserve), string(IKEPortRemap)),
		"forward":            obj{"type": "array", "items": forward, "description": "port forwards (DNAT) to inside hosts"},
	}
	return obj{"type": "object", "additionalProperties": false, "properties": props,
		"description": "the NAT box's behaviour (kind nat only)"}
}

// durationPattern is what time.ParseDuration reads, unsigned: the form of
// Duration.
const durationPattern = `^(0|(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$`

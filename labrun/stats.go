package labrun

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
)

// NodeStats is one IPsec node's counters outside its SAs, as `ipseclab stats`
// shows them: what IKE, the data plane and the stack around them counted.
type NodeStats struct {
	Node     string        `json:"node"`
	Impl     string        `json:"impl"` // ipseclab or strongswan
	Counters CounterGroups `json:"counters"`
	// Note says what the implementation does not count, where that is not
	// obvious from the counters (strongSwan's).
	Note string `json:"note,omitempty"`
}

// A CounterGroup is the counters of one part of a node, named as the JSON of
// the struct that keeps them names them.
type CounterGroup struct {
	Name     string
	Counters []Counter
}

// A Counter is one value of a group. Its value is kept as the JSON it came
// as, so that whatever a part counts passes through unchanged.
type Counter struct {
	Name  string
	Value json.RawMessage
}

// CounterGroups marshal as a JSON object of objects,
// {"ike": {"received": 4, ...}, ...}, which jq reads by name; unlike a map,
// they keep the order of the structs they came from, which puts related
// counters side by side in the table.
type CounterGroups []CounterGroup

// MarshalJSON writes the groups as an object of objects, in order.
func (gs CounterGroups) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, g := range gs {
		if i > 0 {
			b.WriteByte(',')
		}
		writeKey(&b, g.Name)
		b.WriteByte('{')
		for j, c := range g.Counters {
			if j > 0 {
				b.WriteByte(',')
			}
			writeKey(&b, c.Name)
			b.Write(c.Value)
		}
		b.WriteByte('}')
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

func writeKey(b *bytes.Buffer, k string) {
	kb, _ := json.Marshal(k) // a string always marshals
	b.Write(kb)
	b.WriteByte(':')
}

// UnmarshalJSON reads what MarshalJSON writes, keeping the order.
func (gs *CounterGroups) UnmarshalJSON(data []byte) error {
	groups, err := groupsOf(data, "")
	*gs = groups
	return err
}

// CountersOf turns a struct of counters into groups through its JSON: every
// field that is an object is a group of its own, named by its key, and the
// other fields together make up the group named rest. A counter added to
// one of those structs therefore shows, with no change here or in the CLI.
func CountersOf(v any, rest string) (CounterGroups, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return groupsOf(data, rest)
}

// groupsOf reads a JSON object as counter groups; a value at the top that is
// not an object goes to the group named rest, or is an error when rest is
// "".
func groupsOf(data []byte, rest string) (CounterGroups, error) {
	top, err := orderedObject(data)
	if err != nil {
		return nil, err
	}
	var groups CounterGroups
	var loose []Counter
	for _, f := range top {
		inner, err := orderedObject(f.Value)
		if err != nil {
			if rest == "" {
				return nil, fmt.Errorf("counter group %q: %w", f.Name, err)
			}
			loose = append(loose, f)
			continue
		}
		groups = append(groups, CounterGroup{Name: f.Name, Counters: flatten("", inner)})
	}
	if len(loose) > 0 {
		groups = append(groups, CounterGroup{Name: rest, Counters: loose})
	}
	return groups, nil
}

// flatten names the members of an object inside a group by their path
// ("by_exchange.main"), so that a group stays one column of values however
// its struct nests them.
func flatten(prefix string, cs []Counter) []Counter {
	var out []Counter
	for _, c := range cs {
		if inner, err := orderedObject(c.Value); err == nil {
			out = append(out, flatten(prefix+c.Name+".", inner)...)
			continue
		}
		out = append(out, Counter{Name: prefix + c.Name, Value: c.Value})
	}
	return out
}

// orderedObject reads a JSON object's members in the order they come.
func orderedObject(data []byte) ([]Counter, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, errors.New("not a JSON object")
	}
	var out []Counter
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, err
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		out = append(out, Counter{Name: t.(string), Value: v})
	}
	return out, nil
}

// Stats returns the counters of one node, or of every IPsec node when node
// is "".
func (r *Runtime) Stats(ctx context.Context, node string) ([]NodeStats, error) {
	var out []NodeStats
	err := r.eachIPsecNode(node, func(name string, n IPsecNode) error {
		st, err := n.Stats(ctx)
		if err == nil {
			out = append(out, st)
		}
		return err
	})
	return out, err
}

func (r *Runtime) handleStats(w http.ResponseWriter, req *http.Request) {
	st, err := r.Stats(req.Context(), req.URL.Query().Get("node"))
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	writeJSON(w, st)
}

// Stats asks the lab process (or a daemon) for node counters (of one node,
// or all when node is "").
func (c *Client) Stats(ctx context.Context, node string) ([]NodeStats, error) {
	var out []NodeStats
	return out, c.Do(ctx, "GET", "/v1/stats?node="+url.QueryEscape(node), nil, &out)
}

package topology

import (
	"encoding"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// decoder turns a yaml.Node tree into Go values strictly: unknown keys, wrong
// types and duplicate keys are errors with their position, and decoding goes on
// after an error so that every problem in the file is reported at once.
//
// It records the position of every value it visits under a path such as
// "topology.links[2].endpoints[0]", so that validation, which runs on the Go
// values afterwards, can still say where a problem is.
type decoder struct {
	file string
	errs Errors
	pos  map[string]Pos
}

var (
	shorthandType    = reflect.TypeOf((*shorthand)(nil)).Elem()
	unmarshalerType  = reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()
	textUnmarshaler  = reflect.TypeOf((*encoding.TextUnmarshaler)(nil)).Elem()
	yamlNodeType     = reflect.TypeOf(yaml.Node{})
	validatorType    = reflect.TypeOf((*validator)(nil)).Elem()
	kindNames        = map[yaml.Kind]string{yaml.MappingNode: "a mapping", yaml.SequenceNode: "a list", yaml.ScalarNode: "a single value"}
	tagNames         = map[string]string{"!!str": "a string", "!!int": "an integer", "!!float": "a number", "!!bool": "true or false", "!!null": "nothing (null)", "!!timestamp": "a timestamp"}
	requiredTagValue = "required"
)

// shorthand is implemented by mapping types that may also be written as one
// value: a connection's peer as just its node name, `wait: 5s`.
type shorthand interface {
	fromScalar(n *yaml.Node) error
}

// validator is implemented by section types of other packages (impair/netem,
// nat/natconf) to check their values after decoding. Errors implementing
// FieldError are placed at that field.
type validator interface {
	Validate() error
}

func (d *decoder) at(n *yaml.Node) Pos { return Pos{File: d.file, Line: n.Line, Col: n.Column} }

func (d *decoder) errorf(n *yaml.Node, format string, args ...any) {
	d.errs.add(d.at(n), format, args...)
}

func describe(n *yaml.Node) string {
	if n.Kind == yaml.ScalarNode {
		if s, ok := tagNames[n.ShortTag()]; ok {
			if n.ShortTag() == "!!null" {
				return s
			}
			return fmt.Sprintf("%s (%q)", s, n.Value)
		}
	}
	if s, ok := kindNames[n.Kind]; ok {
		return s
	}
	return "something else"
}

// decode fills v (addressable) from n.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	for n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			return
		}
		d.decode(n.Content[0], v, path)
		return
	}
	d.pos[path] = d.at(n)

	if v.Type() == yamlNodeType {
		v.Set(reflect.ValueOf(*n))
		return
	}
	if v.Kind() == reflect.Pointer {
		if n.ShortTag() == "!!null" {
			return
		}
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.decode(n, v.Elem(), path)
		return
	}
	if v.CanAddr() && v.Addr().Type().Implements(unmarshalerType) {
		if err := v.Addr().Interface().(yaml.Unmarshaler).UnmarshalYAML(n); err != nil {
			d.place(n, path, err)
			return
		}
		d.validate(n, v, path)
		return
	}
	if v.CanAddr() && v.Addr().Type().Implements(textUnmarshaler) {
		if n.Kind != yaml.ScalarNode {
			d.errorf(n, "%s must be a single value, not %s", lastKey(path), describe(n))
			return
		}
		if err := v.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(n.Value)); err != nil {
			d.errorf(n, "%s: %s", lastKey(path), err)
		}
		return
	}
	if n.Kind == yaml.ScalarNode && v.CanAddr() && v.Addr().Type().Implements(shorthandType) {
		if err := v.Addr().Interface().(shorthand).fromScalar(n); err != nil {
			d.errorf(n, "%s", err)
			return
		}
		d.validate(n, v, path)
		return
	}

	switch v.Kind() {
	case reflect.String:
		if n.Kind != yaml.ScalarNode || n.ShortTag() == "!!null" {
			d.errorf(n, "%s must be a string, not %s", lastKey(path), describe(n))
			return
		}
		v.SetString(n.Value)
	case reflect.Bool:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" {
			d.errorf(n, "%s must be true or false, not %s", lastKey(path), describe(n))
			return
		}
		b, _ := strconv.ParseBool(n.Value)
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		i, err := strconv.ParseInt(n.Value, 0, v.Type().Bits())
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" || err != nil {
			d.errorf(n, "%s must be an integer, not %s", lastKey(path), describe(n))
			return
		}
		v.SetInt(i)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		u, err := strconv.ParseUint(n.Value, 0, v.Type().Bits())
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" || err != nil {
			d.errorf(n, "%s must be a non-negative integer that fits in %d bits, not %s", lastKey(path), v.Type().Bits(), describe(n))
			return
		}
		v.SetUint(u)
	case reflect.Float32, reflect.Float64:
		f, err := strconv.ParseFloat(n.Value, 64)
		if n.Kind != yaml.ScalarNode || (n.ShortTag() != "!!int" && n.ShortTag() != "!!float") || err != nil {
			d.errorf(n, "%s must be a number, not %s", lastKey(path), describe(n))
			return
		}
		v.SetFloat(f)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.errorf(n, "%s must be a list, not %s", lastKey(path), describe(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, c := range n.Content {
			d.decode(c, s.Index(i), fmt.Sprintf("%s[%d]", path, i))
			if d.emptyEntry(c, s.Index(i), singular(lastKey(path))) {
				s.Index(i).Set(reflect.New(s.Index(i).Type().Elem()))
			}
		}
		v.Set(s)
	case reflect.Map:
		d.decodeMap(n, v, path)
	case reflect.Struct:
		d.decodeStruct(n, v, path)
		d.validate(n, v, path)
	default:
		panic(fmt.Sprintf("topology: decoder cannot handle %s", v.Type()))
	}
}

// validate runs a section type's own Validate and places its errors.
func (d *decoder) validate(n *yaml.Node, v reflect.Value, path string) {
	if !v.CanAddr() || !v.Addr().Type().Implements(validatorType) {
		return
	}
	if err := v.Addr().Interface().(validator).Validate(); err != nil {
		d.place(n, path, err)
	}
}

// flattenErrors expands errors.Join lists, nested ones too.
func flattenErrors(err error) []error {
	j, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return []error{err}
	}
	var out []error
	for _, e := range j.Unwrap() {
		out = append(out, flattenErrors(e)...)
	}
	return out
}

// positioned is implemented by errors of section packages that know where in
// the file they are (they decode from the same yaml.Node tree).
type positioned interface {
	Position() (line, col int)
}

// place records an error from a section's own decoding or validation: each of
// a joined list separately, at the error's own position if it has one, else at
// the field it names, else at the section.
func (d *decoder) place(n *yaml.Node, path string, err error) {
	for _, e := range flattenErrors(err) {
		p := d.at(n)
		if pe, ok := e.(positioned); ok {
			if line, col := pe.Position(); line > 0 {
				p = Pos{File: d.file, Line: line, Col: col}
			}
		} else if fe, ok := e.(FieldError); ok && fe.Field() != "" {
			if q, ok := d.pos[path+"."+fe.Field()]; ok {
				p = q
			}
		}
		d.errs.add(p, "%s", e)
	}
}

// emptyEntry reports a list entry or map value written as nothing (a bare
// "name:"), which would otherwise leave a nil pointer for validation to trip on.
func (d *decoder) emptyEntry(n *yaml.Node, v reflect.Value, what string) bool {
	if v.Kind() != reflect.Pointer || !v.IsNil() {
		return false
	}
	d.errorf(n, "%s is empty; give its settings", what)
	return true
}

// mappingPairs returns the key/value pairs of a mapping, with YAML merge keys
// ("<<: *defaults") expanded, keys that are given explicitly winning.
func (d *decoder) mappingPairs(n *yaml.Node) [][2]*yaml.Node {
	var pairs, merged [][2]*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Value == "<<" && k.ShortTag() == "!!merge" {
			for val.Kind == yaml.AliasNode {
				val = val.Alias
			}
			srcs := []*yaml.Node{val}
			if val.Kind == yaml.SequenceNode {
				srcs = val.Content
			}
			for _, src := range srcs {
				for src.Kind == yaml.AliasNode {
					src = src.Alias
				}
				if src.Kind != yaml.MappingNode {
					d.errorf(val, "a merge key (<<) must refer to a mapping")
					continue
				}
				merged = append(merged, d.mappingPairs(src)...)
			}
			continue
		}
		pairs = append(pairs, [2]*yaml.Node{k, val})
	}
	explicit := map[string]bool{}
	for _, p := range pairs {
		explicit[p[0].Value] = true
	}
	for _, p := range merged {
		if !explicit[p[0].Value] {
			pairs = append(pairs, p)
			explicit[p[0].Value] = true
		}
	}
	return pairs
}

func (d *decoder) decodeMap(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.errorf(n, "%s must be a mapping (key: value), not %s", lastKey(path), describe(n))
		return
	}
	if v.Type().Key().Kind() != reflect.String {
		panic("topology: map keys must be strings")
	}
	if v.IsNil() {
		v.Set(reflect.MakeMap(v.Type()))
	}
	seen := map[string]*yaml.Node{}
	for _, kv := range d.mappingPairs(n) {
		k, val := kv[0], kv[1]
		if k.Kind != yaml.ScalarNode {
			d.errorf(k, "keys of %s must be plain names", lastKey(path))
			continue
		}
		if first, dup := seen[k.Value]; dup {
			d.errorf(k, "%s %q is defined twice (first at line %d); names must be unique", singular(lastKey(path)), k.Value, first.Line)
			continue
		}
		seen[k.Value] = k
		elem := reflect.New(v.Type().Elem()).Elem()
		sub := path + "." + k.Value
		d.pos[sub+"#key"] = d.at(k)
		d.decode(val, elem, sub)
		if d.emptyEntry(val, elem, fmt.Sprintf("%s %q", singular(lastKey(path)), k.Value)) {
			continue
		}
		v.SetMapIndex(reflect.ValueOf(k.Value).Convert(v.Type().Key()), elem)
	}
}

type fieldInfo struct {
	index    []int
	required bool
}

// structFields maps YAML keys to fields: the `yaml:"name"` tag (or the lowered
// field name), `yaml:",inline"` for embedded structs, `yaml:"-"` to skip, and
// `lab:"required"` for keys that must be present.
func structFields(t reflect.Type) (map[string]fieldInfo, []string) {
	fields := map[string]fieldInfo{}
	var order []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if opts == "inline" {
			sub, subOrder := structFields(f.Type)
			for _, k := range subOrder {
				fi := sub[k]
				fi.index = append([]int{i}, fi.index...)
				fields[k] = fi
				order = append(order, k)
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		fields[name] = fieldInfo{index: []int{i}, required: f.Tag.Get("lab") == requiredTagValue}
		order = append(order, name)
	}
	return fields, order
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.errorf(n, "%s must be a mapping (key: value), not %s", orTop(lastKey(path)), describe(n))
		return
	}
	fields, order := structFields(v.Type())
	seen := map[string]*yaml.Node{}
	for _, kv := range d.mappingPairs(n) {
		k, val := kv[0], kv[1]
		if first, dup := seen[k.Value]; dup {
			d.errorf(k, "%q is given twice in %s (first at line %d)", k.Value, orTop(lastKey(path)), first.Line)
			continue
		}
		seen[k.Value] = k
		fi, ok := fields[k.Value]
		if !ok {
			d.errorf(k, "unknown field %q in %s%s", k.Value, orTop(lastKey(path)), suggest(k.Value, order))
			continue
		}
		sub := joinPath(path, k.Value)
		d.pos[sub+"#key"] = d.at(k)
		d.decode(val, v.FieldByIndex(fi.index), sub)
	}
	for _, name := range order {
		if fields[name].required && seen[name] == nil {
			d.errorf(n, "%s needs %q", orTop(lastKey(path)), name)
		}
	}
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func orTop(s string) string {
	if s == "" {
		return "the lab file"
	}
	return s
}

// lastKey is the last element of a path, for messages: "topology.links[2].mtu" → "mtu".
func lastKey(path string) string {
	if i := strings.LastIndexByte(path, '.'); i >= 0 {
		path = path[i+1:]
	}
	if i := strings.IndexByte(path, '['); i > 0 {
		return path[:i] + " entry"
	}
	return path
}

func singular(s string) string {
	switch s {
	case "nodes":
		return "node"
	case "ipsec":
		return "connection"
	}
	return strings.TrimSuffix(s, "s")
}

// suggest proposes the closest allowed key, and lists them all.
func suggest(got string, allowed []string) string {
	if len(allowed) == 0 {
		return ""
	}
	best, bestD := "", 1<<30
	for _, a := range allowed {
		if dd := editDistance(got, a); dd < bestD {
			best, bestD = a, dd
		}
	}
	list := append([]string(nil), allowed...)
	sort.Strings(list)
	s := "; allowed: " + strings.Join(list, ", ")
	if bestD <= 2 || (bestD <= 3 && len(got) > 6) {
		return fmt.Sprintf(" (did you mean %q? allowed: %s)", best, strings.Join(list, ", "))
	}
	return " (" + strings.TrimPrefix(s, "; ") + ")"
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

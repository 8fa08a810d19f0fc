package netem

import (
	"errors"
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"
)

// A link's `impair:` block in a lab file is a mapping of the settings of
// Flags. Direction settings given at the top apply to both directions; blocks
// `a-to-b:` and `b-to-a:` hold settings for one direction, which win over the
// top-level ones (the merge rule of Change, applied in that order):
//
//	impair: {delay: 30ms, jitter: 5ms, loss: 1%}
//	impair:
//	  delay: 10ms
//	  mtu: 1400
//	  b-to-a: {loss: "gemodel 1% 30% 100% 0%", rate: 10mbit}
//
// Loss may also be written as a mapping: {gemodel: {p: 1%, r: 30%, 1-h: 100%, 1-k: 0%}}.

// UnmarshalYAML decodes a link's impair block and validates it. Every problem
// is reported, each as a *FieldError carrying the position of the node at
// fault, combined with errors.Join.
func (p *Params) UnmarshalYAML(n *yaml.Node) error {
	c, pos, errs := decodeChange(n)
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	v := c.Apply(Params{})
	if err := v.Validate(); err != nil {
		return placeErrors(err, pos)
	}
	*p = v
	return nil
}

// UnmarshalYAML decodes a run-time change written with the keys of an impair
// block (a script step's `set:`). Values are checked; whether the merged
// result is valid can only be known when it is applied.
func (c *Change) UnmarshalYAML(n *yaml.Node) error {
	v, _, errs := decodeChange(n)
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	*c = v
	return nil
}

// UnmarshalYAML reads a loss as a scalar (see ParseLoss) or as a mapping
// {random: 1%} or {gemodel: {p: 1%, r: 30%, 1-h: 100%, 1-k: 0%}}.
func (l *Loss) UnmarshalYAML(n *yaml.Node) error {
	n = resolve(n)
	if n.Kind == yaml.ScalarNode {
		return scalarYAML(n, "", func(s string) error { return l.UnmarshalText([]byte(s)) })
	}
	if n.Kind != yaml.MappingNode || len(n.Content) != 2 {
		return &FieldError{Line: n.Line, Column: n.Column, Msg: `needs a value such as 1% or "gemodel 1% 30%", or a mapping {gemodel: {p: 1%, r: 30%}}`}
	}
	k, v := n.Content[0], resolve(n.Content[1])
	switch k.Value {
	case "random":
		var p Percent
		if err := scalarYAML(v, "random", func(s string) error { return p.UnmarshalText([]byte(s)) }); err != nil {
			return err
		}
		*l = Loss{Random: p}
		return nil
	case "gemodel":
		if v.Kind == yaml.ScalarNode {
			return scalarYAML(v, "gemodel", func(s string) error { return l.UnmarshalText([]byte("gemodel " + s)) })
		}
		if v.Kind != yaml.MappingNode {
			return &FieldError{Name: "gemodel", Line: v.Line, Column: v.Column, Msg: "needs a mapping {p: 1%, r: 30%, 1-h: 100%, 1-k: 0%}"}
		}
		ge := GEModel(0, 100, 100, 0)
		fields := map[string]*Percent{"p": &ge.P, "r": &ge.R, "1-h": &ge.BadLoss, "1-k": &ge.GoodLoss}
		var errs []error
		sawP := false
		for i := 0; i+1 < len(v.Content); i += 2 {
			name, val := v.Content[i], v.Content[i+1]
			dst, ok := fields[name.Value]
			if !ok {
				errs = append(errs, &FieldError{Name: "gemodel." + name.Value, Line: name.Line, Column: name.Column, Msg: "is not a gemodel parameter (p, r, 1-h, 1-k)"})
				continue
			}
			sawP = sawP || name.Value == "p"
			if err := scalarYAML(val, "gemodel."+name.Value, func(s string) error { return dst.UnmarshalText([]byte(s)) }); err != nil {
				errs = append(errs, err)
			}
		}
		if !sawP && len(errs) == 0 {
			errs = append(errs, &FieldError{Name: "gemodel", Line: v.Line, Column: v.Column, Msg: "needs at least p"})
		}
		if len(errs) > 0 {
			return errors.Join(errs...)
		}
		*l = ge
		return nil
	default:
		return &FieldError{Name: k.Value, Line: k.Line, Column: k.Column, Msg: "is not a loss model (random or gemodel)"}
	}
}

func resolve(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		return resolve(n.Content[0])
	}
	return n
}

// decodeChange reads an impair mapping. pos records where each setting was
// written, by its dotted name, for placing later validation errors.
func decodeChange(n *yaml.Node) (Change, map[string]*yaml.Node, []error) {
	var c Change
	pos := map[string]*yaml.Node{}
	var errs []error
	n = resolve(n)
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return c, pos, nil
	}
	if n.Kind != yaml.MappingNode {
		return c, pos, []error{&FieldError{Line: n.Line, Column: n.Column, Msg: "impair needs a mapping of settings, e.g. {delay: 30ms, loss: 1%}"}}
	}
	var dirBlocks [][2]*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], resolve(n.Content[i+1])
		if k.Value == AtoB.String() || k.Value == BtoA.String() {
			dirBlocks = append(dirBlocks, [2]*yaml.Node{k, v})
			continue
		}
		errs = c.setNode("", k, v, pos, errs)
	}
	// Direction blocks come last so they win over the top-level settings.
	for _, b := range dirBlocks {
		k, v := b[0], b[1]
		if v.Kind != yaml.MappingNode {
			errs = append(errs, &FieldError{Name: k.Value, Line: v.Line, Column: v.Column, Msg: "needs a mapping of settings, e.g. {loss: 5%}"})
			continue
		}
		for i := 0; i+1 < len(v.Content); i += 2 {
			errs = c.setNode(k.Value+".", v.Content[i], resolve(v.Content[i+1]), pos, errs)
		}
	}
	return c, pos, errs
}

// setNode applies one key: value of an impair mapping to c.
func (c *Change) setNode(prefix string, k, v *yaml.Node, pos map[string]*yaml.Node, errs []error) []error {
	name := prefix + k.Value
	if _, dup := pos[name]; dup {
		return append(errs, &FieldError{Name: name, Line: k.Line, Column: k.Column, Msg: "is given twice"})
	}
	pos[name] = v
	f, known := fieldByName(k.Value)
	if !known {
		return append(errs, &FieldError{Name: name, Line: k.Line, Column: k.Column, Msg: fmt.Sprintf("is not an impairment setting (known: %s, and a-to-b:/b-to-a: blocks)", knownNames())})
	}
	if prefix != "" && f&linkFields != 0 {
		return append(errs, &FieldError{Name: name, Line: k.Line, Column: k.Column, Msg: "belongs to the link: write it outside the direction block"})
	}
	if f == FieldLoss && v.Kind == yaml.MappingNode {
		var l Loss
		if err := l.UnmarshalYAML(v); err != nil {
			return append(errs, prefixErrors(err, name)...)
		}
		sub := Change{}
		sub.Value = Both(Netem{Loss: l})
		sub.AtoB, sub.BtoA = FieldLoss, FieldLoss
		if d, _, ok := cutDir(name); ok {
			sub = sub.Only(d)
		}
		c.merge(sub)
		return errs
	}
	if v.Kind != yaml.ScalarNode {
		return append(errs, &FieldError{Name: name, Line: v.Line, Column: v.Column, Msg: "needs a single value, not a list or mapping"})
	}
	if err := c.Set(name, v.Value); err != nil {
		var fe *FieldError
		if errors.As(err, &fe) {
			fe.Line, fe.Column = v.Line, v.Column
		}
		return append(errs, err)
	}
	return errs
}

// merge adds d's named settings to c.
func (c *Change) merge(d Change) {
	c.Value = d.Apply(c.Value)
	c.AtoB |= d.AtoB
	c.BtoA |= d.BtoA
	c.Link |= d.Link
}

// prefixErrors puts name in front of the field of each FieldError in err.
func prefixErrors(err error, name string) []error {
	list := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		list = j.Unwrap()
	}
	for _, e := range list {
		var fe *FieldError
		if errors.As(e, &fe) {
			fe.Name = strings.TrimSuffix(name+"."+fe.Name, ".")
		}
	}
	return list
}

// placeErrors gives validation errors the position of the setting they name,
// or of the nearest enclosing one that was written ("loss" for
// "loss.gemodel.p"; the top-level "reorder" for "b-to-a.reorder").
func placeErrors(err error, pos map[string]*yaml.Node) error {
	list := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		list = j.Unwrap()
	}
	for _, e := range list {
		var fe *FieldError
		if !errors.As(e, &fe) {
			continue
		}
		for name := fe.Name; name != ""; {
			if n, ok := pos[name]; ok {
				fe.Line, fe.Column = n.Line, n.Column
				break
			}
			if _, rest, ok := cutDir(name); ok {
				if n, ok := pos[rest]; ok {
					fe.Line, fe.Column = n.Line, n.Column
					break
				}
			}
			i := strings.LastIndexByte(name, '.')
			if i < 0 {
				break
			}
			name = name[:i]
		}
	}
	return errors.Join(list...)
}

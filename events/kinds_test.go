package events

import (
	"go/ast"
	"go/parser"
	"go/token"
	"testing"
)

// Every Kind constant declared in events.go must be listed by KnownKinds, or
// lab files could not expect it.
func TestKnownKindsListsEveryConstant(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "events.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for _, k := range KnownKinds() {
		if listed[string(k)] {
			t.Errorf("kind %q listed twice", k)
		}
		listed[string(k)] = true
	}
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, s := range g.Specs {
			vs := s.(*ast.ValueSpec)
			if id, ok := vs.Type.(*ast.Ident); !ok || id.Name != "Kind" {
				continue
			}
			for _, v := range vs.Values {
				lit := v.(*ast.BasicLit).Value
				if !listed[lit[1:len(lit)-1]] {
					t.Errorf("kind %s is declared but missing from KnownKinds", lit)
				}
			}
		}
	}
}

package resman_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestAliasDocsNameEverything keeps the root package's aliases of package
// messages' types readable with go doc, which shows an alias's own comment
// and nothing of its target: each alias's comment must name every exported
// field and method of the target, and each constant of the target's type
// must be re-declared in the root package, so that StateRunning and the like
// show up there too. A field added in messages fails here until the alias's
// comment lists it.
func TestAliasDocsNameEverything(t *testing.T) {
	root, msgs := parseDir(t, "."), parseDir(t, "messages")

	aliases := map[string]string{} // root alias name -> messages type name
	docs := map[string]string{}    // root alias name -> its comment
	rootConsts := map[string]bool{}
	for _, f := range root {
		for _, d := range f.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok {
				continue
			}
			for _, spec := range g.Specs {
				switch s := spec.(type) {
				case *ast.TypeSpec:
					sel, ok := s.Type.(*ast.SelectorExpr)
					if !s.Assign.IsValid() || !ok || sel.X.(*ast.Ident).Name != "messages" {
						continue
					}
					aliases[s.Name.Name] = sel.Sel.Name
					docs[s.Name.Name] = g.Doc.Text()
				case *ast.ValueSpec:
					if g.Tok == token.CONST {
						for _, n := range s.Names {
							rootConsts[n.Name] = true
						}
					}
				}
			}
		}
	}
	if len(aliases) == 0 {
		t.Fatal("no alias of a messages type found in the root package")
	}

	want := map[string][]string{} // messages type -> the names its alias's comment must hold
	consts := map[string][]string{}
	for _, f := range msgs {
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				if d.Recv == nil || !d.Name.IsExported() {
					continue
				}
				recv := d.Recv.List[0].Type
				if star, ok := recv.(*ast.StarExpr); ok {
					recv = star.X
				}
				typ := recv.(*ast.Ident).Name
				want[typ] = append(want[typ], d.Name.Name)
			case *ast.GenDecl:
				var typ string // a const block's type carries on to the untyped specs after it
				for _, spec := range d.Specs {
					switch s := spec.(type) {
					case *ast.TypeSpec:
						if st, ok := s.Type.(*ast.StructType); ok {
							for _, fld := range st.Fields.List {
								for _, n := range fld.Names {
									if n.IsExported() {
										want[s.Name.Name] = append(want[s.Name.Name], n.Name)
									}
								}
							}
						}
					case *ast.ValueSpec:
						if d.Tok != token.CONST {
							continue
						}
						if id, ok := s.Type.(*ast.Ident); ok {
							typ = id.Name
						}
						for _, n := range s.Names {
							if typ != "" && n.IsExported() {
								consts[typ] = append(consts[typ], n.Name)
							}
						}
					}
				}
			}
		}
	}

	for alias, target := range aliases {
		doc := docs[alias]
		if !strings.Contains(doc, "[messages."+target+"]") {
			t.Errorf("the comment of %s does not link [messages.%s]", alias, target)
		}
		for _, name := range append(want[target], consts[target]...) {
			if !regexp.MustCompile(`\b` + name + `\b`).MatchString(doc) {
				t.Errorf("the comment of %s does not name %s of messages.%s", alias, name, target)
			}
		}
		for _, c := range consts[target] {
			if !rootConsts[c] {
				t.Errorf("messages.%s (of type %s) is not re-declared in the root package", c, target)
			}
		}
	}
}

func parseDir(t *testing.T, dir string) []*ast.File {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	var files []*ast.File
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	return files
}

// Package internal_test holds repository-wide lint rules that are tests:
// the dependency direction between layers (DESIGN.md) and package docs.
package internal_test

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const module = "github.com/gregor-streaming/gregor/"

// layers is DESIGN.md's dependency direction: a package imports only
// packages of its own level or below. Packages missing here fail the
// test, so a new package gets a level on purpose.
var layers = map[string]int{
	"internal/clock": 0, "internal/vfs": 0, "internal/batch": 0, "internal/config": 0, "internal/wire": 0,
	"internal/metrics": 0, "internal/coord": 0,
	"internal/partlog": 1, "internal/metadata": 1, "internal/auth": 1, "internal/raftnode": 1,
	"internal/purgatory": 2, "internal/replica": 2, "internal/group": 2, "internal/txn": 2,
	"internal/controller": 3,
	"internal/broker":     4,
	"internal/server":     5, "internal/console": 5, "internal/cli": 5, "internal/admin": 5, "internal/ktest": 5,
	"internal/crashtest": 6,
	"cmd/gregor":         6,
}

func TestLayering(t *testing.T) {
	root := ".."
	for _, dir := range packageDirs(t, root) {
		rel := filepath.ToSlash(dir)
		level, ok := layers[rel]
		if !ok {
			t.Errorf("%s: no layer assigned in layers_test.go (see DESIGN.md)", rel)
			continue
		}
		for _, imp := range imports(t, filepath.Join(root, dir), false) {
			if !strings.HasPrefix(imp, module) {
				continue
			}
			dep := strings.TrimPrefix(imp, module)
			if strings.HasPrefix(dep, "stream") && strings.HasPrefix(rel, "internal") {
				continue
			}
			depLevel, ok := layers[dep]
			if !ok {
				continue // reported on its own
			}
			if depLevel > level {
				t.Errorf("%s (level %d) imports %s (level %d): dependencies point down", rel, level, dep, depLevel)
			}
		}
	}
}

func TestStreamDoesNotImportInternal(t *testing.T) {
	if _, err := os.Stat("../stream"); err != nil {
		t.Skip("no stream package yet")
	}
	for _, imp := range imports(t, "../stream", true) {
		if strings.HasPrefix(imp, module+"internal") {
			t.Errorf("stream imports %s: the public library must use only a Kafka client", imp)
		}
	}
}

func TestPackageDocs(t *testing.T) {
	for _, dir := range packageDirs(t, "..") {
		fset := token.NewFileSet()
		pkgs, err := parser.ParseDir(fset, filepath.Join("..", dir), func(fi os.FileInfo) bool {
			return !strings.HasSuffix(fi.Name(), "_test.go")
		}, parser.ParseComments|parser.PackageClauseOnly)
		if err != nil {
			t.Fatal(err)
		}
		for name, p := range pkgs {
			documented := false
			for _, f := range p.Files {
				if f.Doc != nil && strings.TrimSpace(f.Doc.Text()) != "" {
					documented = true
				}
			}
			if !documented {
				t.Errorf("%s: package %s has no doc comment", dir, name)
			}
		}
	}
}

// packageDirs lists directories under internal/ and cmd/ holding
// non-test Go files, relative to root.
func packageDirs(t *testing.T, root string) []string {
	t.Helper()
	var dirs []string
	for _, top := range []string{"internal", "cmd"} {
		filepath.WalkDir(filepath.Join(root, top), func(path string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) {
				return filepath.SkipDir
			}
			if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return nil
			}
			rel, _ := filepath.Rel(root, filepath.Dir(path))
			if len(dirs) == 0 || dirs[len(dirs)-1] != rel {
				dirs = append(dirs, rel)
			}
			return nil
		})
	}
	return dirs
}

func imports(t *testing.T, dir string, recursive bool) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != dir && !recursive {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			out = append(out, strings.Trim(imp.Path.Value, `"`))
		}
		return nil
	})
	return out
}

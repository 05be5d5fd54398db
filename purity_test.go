package highway_test

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The deterministic cores must give the same output for the same input on
// every machine, forever: the chain re-verifies PoC and replays the
// matching log. So market/ and poc/ may not read a clock, the network, the
// disk or a random source, and may not use floating point. golangci-lint's
// depguard says the same about imports; this test also catches floats and
// runs in every `make test`.

var pureDirs = []string{"market", "poc"}

// forbiddenImports are denied as a path or a path prefix ("net" denies
// "net/http" too).
var forbiddenImports = []string{
	"time", "math/rand", "net", "os", "io/ioutil", "syscall", "log", "database/sql", "unsafe",
	"crypto/rand", "runtime/debug", "plugin", "embed",
	"github.com/gin-gonic", "gorm.io", "github.com/cosmos", "cosmossdk.io", "github.com/cometbft",
	"github.com/NVIDIA",
}

// allowedMath are the math identifiers that are integer constants.
var allowedMath = map[string]bool{
	"MaxInt": true, "MinInt": true, "MaxInt8": true, "MinInt8": true, "MaxInt16": true, "MinInt16": true,
	"MaxInt32": true, "MinInt32": true, "MaxInt64": true, "MinInt64": true, "MaxUint": true,
	"MaxUint8": true, "MaxUint16": true, "MaxUint32": true, "MaxUint64": true,
}

func TestPureCores(t *testing.T) {
	for _, dir := range pureDirs {
		if _, err := os.Stat(dir); os.IsNotExist(err) {
			continue
		}
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && d.Name() == "testdata" {
				return filepath.SkipDir
			}
			if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return nil
			}
			for _, problem := range impurities(t, path) {
				t.Error(problem)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestPurityCheckCatches proves the check is not vacuous.
func TestPurityCheckCatches(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.go")
	src := "package bad\nimport (\n\"time\"\n\"math\"\n\"net/http\"\n)\nvar _ = http.StatusOK\nvar x float64 = 1.5\nvar y = math.Sqrt(2)\nvar z = math.MaxInt64\nvar _ = time.Now\n"
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	got := impurities(t, path)
	want := []string{`"time"`, `"net/http"`, "uses float64", "float literal 1.5", "math.Sqrt"}
	if len(got) != len(want) {
		t.Fatalf("found %d problems, want %d: %q", len(got), len(want), got)
	}
	for i, w := range want {
		if !strings.Contains(got[i], w) {
			t.Errorf("problem %d = %q, want it to mention %s", i, got[i], w)
		}
	}
}

func impurities(t *testing.T, path string) []string {
	t.Helper()
	var out []string
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	mathName := ""
	for _, imp := range f.Imports {
		p := strings.Trim(imp.Path.Value, `"`)
		for _, bad := range forbiddenImports {
			if p == bad || strings.HasPrefix(p, bad+"/") {
				out = append(out, fmt.Sprintf("%s imports %q: market/ and poc/ must stay free of clocks, I/O, randomness and frameworks", fset.Position(imp.Pos()), p))
			}
		}
		if p == "math" {
			mathName = "math"
			if imp.Name != nil {
				mathName = imp.Name.Name
			}
		}
	}
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.Ident:
			if n.Name == "float32" || n.Name == "float64" || n.Name == "complex64" || n.Name == "complex128" {
				out = append(out, fmt.Sprintf("%s uses %s: the deterministic cores use integers only", fset.Position(n.Pos()), n.Name))
			}
		case *ast.BasicLit:
			if n.Kind == token.FLOAT || n.Kind == token.IMAG {
				out = append(out, fmt.Sprintf("%s has float literal %s: the deterministic cores use integers only", fset.Position(n.Pos()), n.Value))
			}
		case *ast.SelectorExpr:
			if x, ok := n.X.(*ast.Ident); ok && mathName != "" && x.Name == mathName && !allowedMath[n.Sel.Name] {
				out = append(out, fmt.Sprintf("%s uses math.%s: only integer constants of math are allowed here", fset.Position(n.Pos()), n.Sel.Name))
			}
		}
		return true
	})
	return out
}

// TestDomainImportsStdlibOnly: the root package is the vocabulary every
// layer speaks, the pure cores included, so it may import nothing but the
// standard library (an import path whose first element has no dot).
func TestDomainImportsStdlibOnly(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, path := range files {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatalf("parse %s: %v", path, err)
		}
		for _, imp := range f.Imports {
			p := strings.Trim(imp.Path.Value, `"`)
			if first, _, _ := strings.Cut(p, "/"); strings.Contains(first, ".") {
				t.Errorf("%s imports %q: the domain package uses the standard library only", fset.Position(imp.Pos()), p)
			}
		}
	}
}

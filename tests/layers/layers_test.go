package layers

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
)

const (
	module   = "github.com/operate/realtime"
	root     = "../.."
	archPage = root + "/docs/architecture.md"
)

// serverLibraries are third-party modules only a server needs: a shared or
// client package that depends on one links the server's weight into every
// publisher (issue 13: importing httpapi for its client pulled in the JWT
// libraries).
var serverLibraries = []string{
	"github.com/golang-jwt/jwt",
	"github.com/MicahParks/jwkset",
	"github.com/redis/rueidis",
	"github.com/prometheus/",
}

// pkg is a package of the module as `go list` reports it; paths are
// relative to the module ("gateway/httpapi", "." for the root).
type pkg struct {
	path    string
	imports []string // the module's packages it imports (not its tests)
}

// row is a row of the page's package table.
type row struct {
	pattern string // "gateway/httpapi", or "internal/testutil/..." for a subtree
	kind    string // shared, server, client, tool, test
}

func (r row) matches(path string) bool {
	if base, ok := strings.CutSuffix(r.pattern, "/..."); ok {
		return path == base || strings.HasPrefix(path, base+"/")
	}
	return path == r.pattern
}

// goList runs the go command in the module's root and returns its output.
func goList(t *testing.T, args ...string) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to list the packages: %v", err)
	}
	cmd := exec.Command(goBin, append([]string{"list"}, args...)...)
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list %s: %v\n%s", strings.Join(args, " "), err, stderr.Bytes())
	}
	return string(out)
}

func relative(importPath string) (string, bool) {
	if importPath == module {
		return ".", true
	}
	rel, ok := strings.CutPrefix(importPath, module+"/")
	return rel, ok
}

// modulePackages lists the module's packages and their imports of each other.
func modulePackages(t *testing.T) []pkg {
	t.Helper()
	var pkgs []pkg
	sc := bufio.NewScanner(strings.NewReader(goList(t, "-f", "{{.ImportPath}} {{join .Imports \" \"}}", "./...")))
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		path, ok := relative(fields[0])
		if !ok {
			t.Fatalf("go list: %s is not in module %s", fields[0], module)
		}
		p := pkg{path: path}
		for _, imp := range fields[1:] {
			if rel, ok := relative(imp); ok {
				p.imports = append(p.imports, rel)
			}
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) < 10 {
		t.Fatalf("go list found %d packages: is the test running in tests/layers?", len(pkgs))
	}
	return pkgs
}

// pageSection returns the lines of the page from the line starting with
// start up to the first line starting with end (excluded).
func pageSection(t *testing.T, page []string, start, end string) []string {
	t.Helper()
	for i, l := range page {
		if !strings.HasPrefix(l, start) {
			continue
		}
		for j := i + 1; j < len(page); j++ {
			if strings.HasPrefix(page[j], end) {
				return page[i+1 : j]
			}
		}
		t.Fatalf("%s: no %q after %q", archPage, end, start)
	}
	t.Fatalf("%s: no line starting with %q", archPage, start)
	return nil
}

func readPage(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(archPage)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(string(b), "\n")
}

var kinds = []string{"shared", "server", "client", "tool", "test"}

// table parses the page's package table: | `package` | kind | job |.
func table(t *testing.T) []row {
	t.Helper()
	var rows []row
	for _, l := range pageSection(t, readPage(t), "| package | kind | job |", "Node packages") {
		if strings.HasPrefix(l, "|---") || strings.TrimSpace(l) == "" {
			continue
		}
		cells := strings.Split(l, "|")
		if len(cells) < 4 {
			t.Fatalf("%s: table line %q has no package and kind", archPage, l)
		}
		r := row{pattern: strings.Trim(strings.TrimSpace(cells[1]), "`"), kind: strings.TrimSpace(cells[2])}
		if !slices.Contains(kinds, r.kind) {
			t.Fatalf("%s: %s has kind %q, want one of %v", archPage, r.pattern, r.kind, kinds)
		}
		rows = append(rows, r)
	}
	return rows
}

// rowOf returns the index of the row of path: its own row, else the
// longest subtree row holding it; -1 when none does.
func rowOf(rows []row, path string) int {
	best, bestLen := -1, -1
	for i, r := range rows {
		if !r.matches(path) {
			continue
		}
		if r.pattern == path {
			return i
		}
		if len(r.pattern) > bestLen {
			best, bestLen = i, len(r.pattern)
		}
	}
	return best
}

// TestPackageTableOrder: every package has a row, every row a package, and
// a package imports only packages of earlier rows (or of its own subtree
// row).
func TestPackageTableOrder(t *testing.T) {
	rows := table(t)
	pkgs := modulePackages(t)
	used := make([]bool, len(rows))
	for _, p := range pkgs {
		i := rowOf(rows, p.path)
		if i < 0 {
			t.Errorf("%s has no row in the package table of docs/architecture.md: add one, in layer order", p.path)
			continue
		}
		used[i] = true
		for _, imp := range p.imports {
			j := rowOf(rows, imp)
			switch {
			case j < 0:
				// reported as a package without a row
			case j > i:
				t.Errorf("%s imports %s, which comes after it in docs/architecture.md's layer order (rows %q then %q)",
					p.path, imp, rows[i].pattern, rows[j].pattern)
			case j == i && !strings.HasSuffix(rows[i].pattern, "/..."):
				t.Errorf("%s imports %s of the same row %q", p.path, imp, rows[i].pattern)
			}
		}
	}
	for i, r := range rows {
		if !used[i] {
			t.Errorf("docs/architecture.md lists %s, which matches no package: remove or rename the row", r.pattern)
		}
	}
}

// TestNoServerInSharedOrClientPackages: what publishers and clients link
// (shared and client rows) depends on no server package and no server-only
// library, directly or through other packages.
func TestNoServerInSharedOrClientPackages(t *testing.T) {
	rows := table(t)
	pkgs := modulePackages(t)
	checked := 0
	for _, p := range pkgs {
		i := rowOf(rows, p.path)
		if i < 0 || (rows[i].kind != "shared" && rows[i].kind != "client") {
			continue
		}
		checked++
		for _, dep := range strings.Fields(goList(t, "-deps", "-f", "{{.ImportPath}}", "./"+p.path)) {
			if rel, ok := relative(dep); ok {
				if j := rowOf(rows, rel); j >= 0 && rows[j].kind == "server" {
					t.Errorf("%s (%s) depends on the server package %s: `go list -deps ./%s`", p.path, rows[i].kind, rel, p.path)
				}
				continue
			}
			for _, lib := range serverLibraries {
				if strings.HasPrefix(dep, lib) {
					t.Errorf("%s (%s) depends on %s, a server-only library: `go list -deps ./%s`", p.path, rows[i].kind, dep, p.path)
				}
			}
		}
	}
	if checked < 4 {
		t.Errorf("checked %d shared and client packages; the table has more", checked)
	}
}

// TestPublisherPackagesAreLight: a Go service that publishes links the
// catalog and the HTTP client, the pure Socket.IO codec the catalog's
// validation scans JSON with, and the standard library, nothing else
// (docs/gateway.md says so).
func TestPublisherPackagesAreLight(t *testing.T) {
	allowed := []string{module + "/gateway/events", module + "/gateway/apiclient", module + "/protocol/sio"}
	out := goList(t, "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", "./gateway/apiclient")
	for _, dep := range strings.Fields(out) {
		if !slices.Contains(allowed, dep) {
			t.Errorf("gateway/apiclient depends on %s; a publisher should link %v and the standard library only", dep, allowed)
		}
	}
}

var (
	nodeDef   = regexp.MustCompile(`^\s*(\w+)\["([^"]+)"\]\s*$`)
	edgeLine  = regexp.MustCompile(`^\s*(\w+)\s*-->\s*(\w+(?:\s*&\s*\w+)*)\s*$`)
	edgeSplit = regexp.MustCompile(`\s*&\s*`)
)

// TestDiagramIsTheImports: the page's diagram has an arrow from a to b
// exactly when package a imports package b, for the packages it shows.
func TestDiagramIsTheImports(t *testing.T) {
	lines := pageSection(t, readPage(t), "```mermaid", "```")
	ids := map[string]string{} // node id → package
	drawn := map[string]bool{} // "a b": a imports b
	for _, l := range lines {
		if m := nodeDef.FindStringSubmatch(l); m != nil {
			ids[m[1]] = m[2]
			continue
		}
		m := edgeLine.FindStringSubmatch(l)
		if m == nil {
			if text := strings.TrimSpace(l); text != "" && !strings.HasPrefix(text, "flowchart ") {
				t.Fatalf("%s: diagram line %q is neither a node (id[\"package\"]) nor arrows (a --> b & c)", archPage, l)
			}
			continue
		}
		from, ok := ids[m[1]]
		if !ok {
			t.Fatalf("%s: the diagram uses node %q before defining it", archPage, m[1])
		}
		for _, id := range edgeSplit.Split(m[2], -1) {
			to, ok := ids[id]
			if !ok {
				t.Fatalf("%s: the diagram uses node %q before defining it", archPage, id)
			}
			drawn[from+" "+to] = true
		}
	}
	if len(ids) < 5 || len(drawn) < 5 {
		t.Fatalf("%s: read %d nodes and %d arrows from the diagram; is it a ```mermaid flowchart with one node or arrow per line?", archPage, len(ids), len(drawn))
	}

	shown := map[string]bool{}
	for _, p := range ids {
		shown[p] = true
	}
	actual := map[string]bool{}
	found := map[string]bool{}
	for _, p := range modulePackages(t) {
		if !shown[p.path] {
			continue
		}
		found[p.path] = true
		for _, imp := range p.imports {
			if shown[imp] {
				actual[p.path+" "+imp] = true
			}
		}
	}
	var problems []string
	for p := range shown {
		if !found[p] {
			problems = append(problems, fmt.Sprintf("the diagram shows %s, which is not a package", p))
		}
	}
	for e := range actual {
		if !drawn[e] {
			a, b, _ := strings.Cut(e, " ")
			problems = append(problems, fmt.Sprintf("%s imports %s: the diagram has no arrow %s --> %s", a, b, a, b))
		}
	}
	for e := range drawn {
		if !actual[e] {
			a, b, _ := strings.Cut(e, " ")
			problems = append(problems, fmt.Sprintf("the diagram draws %s --> %s, but %s does not import %s", a, b, a, b))
		}
	}
	sort.Strings(problems)
	for _, p := range problems {
		t.Errorf("docs/architecture.md: %s", p)
	}
}

package scale

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/partnerops/entitlement-operator/internal/testcluster"
)

// figure is one measured figure and its baseline from the same run (0 when
// the target is absolute, such as zero writes).
type figure struct {
	Name     string  `json:"name"`
	Operator float64 `json:"operator"`
	Baseline float64 `json:"baseline"`
	Ratio    float64 `json:"ratio,omitempty"`
}

type report struct {
	// Title replaces the first line of the table when set.
	Title             string   `json:"title,omitempty"`
	N                 int      `json:"partners"`
	Date              string   `json:"date"`
	Figures           []figure `json:"figures"`
	GrantMsPerPartner float64  `json:"grantMsPerPartner"`
	Notes             []string `json:"notes,omitempty"`
}

func (r *report) add(name string, operator, baseline float64) {
	f := figure{Name: name, Operator: operator, Baseline: baseline}
	if baseline > 0 {
		f.Ratio = operator / baseline
	}
	r.Figures = append(r.Figures, f)
}

const (
	docsBegin = "<!-- scale:begin (written by test/scale, `make bench`) -->"
	docsEnd   = "<!-- scale:end -->"
)

// table is the report as a Markdown table.
func (r *report) table() string {
	var sb strings.Builder
	policy := "the finalizer policy installed (the chart's default on Kubernetes ≥ 1.36)"
	if !finalizerPolicy {
		policy = "no finalizer policy (SCALE_FINALIZER_POLICY=off, as before Kubernetes 1.36)"
	}
	title := fmt.Sprintf("N = %d partners, one namespace each; manager binary with default flags; %s", r.N, policy)
	if r.Title != "" {
		title = r.Title
	}
	fmt.Fprintf(&sb, "%s; %s.\n\n", title, r.Date)
	sb.WriteString("| figure | operator | bare client (same run) | ratio |\n|---|---:|---:|---:|\n")
	for _, f := range r.Figures {
		base, ratio := "—", "—"
		if f.Baseline > 0 {
			base, ratio = fmt.Sprintf("%.3g", f.Baseline), fmt.Sprintf("%.2f×", f.Ratio)
		}
		fmt.Fprintf(&sb, "| %s | %.3g | %s | %s |\n", f.Name, f.Operator, base, ratio)
	}
	return sb.String()
}

// notes are the run's diagnostics (where the requests and the CPU went),
// printed and kept in the JSON, not in the docs' table.
func (r *report) notes() string {
	var sb strings.Builder
	for _, n := range r.Notes {
		fmt.Fprintf(&sb, "%s.\n", n)
	}
	return sb.String()
}

// publish prints the table and the JSON, writes the JSON file and, when
// SCALE_DOCS names docs/benchmarks.md, the table between its markers.
func (r *report) publish(b *testing.B) {
	for _, f := range r.Figures {
		b.Logf("%s: %.4g (baseline %.4g)", f.Name, f.Operator, f.Baseline)
	}
	fmt.Println(r.table())
	fmt.Println(r.notes())
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		b.Fatal(err)
	}
	fmt.Println(string(data))
	out := os.Getenv("SCALE_JSON")
	if out == "" {
		root, err := testcluster.RepoRoot()
		if err != nil {
			b.Fatal(err)
		}
		out = filepath.Join(root, "bin", "bench", fmt.Sprintf("scale-%d.json", r.N))
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(out, append(data, '\n'), 0o644); err != nil {
		b.Fatal(err)
	}
	if docs := os.Getenv("SCALE_DOCS"); docs != "" {
		// go test runs in the package's directory; a relative path is
		// the repository's, as typed at its root.
		if !filepath.IsAbs(docs) {
			root, err := testcluster.RepoRoot()
			if err != nil {
				b.Fatal(err)
			}
			docs = filepath.Join(root, docs)
		}
		if err := writeBetweenMarkers(docs, r.table()); err != nil {
			b.Fatal(err)
		}
	}
}

func writeBetweenMarkers(path, text string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	s := string(data)
	i, j := strings.Index(s, docsBegin), strings.Index(s, docsEnd)
	if i < 0 || j < i {
		return fmt.Errorf("%s has no %q … %q block", path, docsBegin, docsEnd)
	}
	s = s[:i+len(docsBegin)] + "\n" + text + "\n" + s[j:]
	return os.WriteFile(path, []byte(s), 0o644)
}

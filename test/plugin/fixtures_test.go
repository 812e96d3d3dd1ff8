package plugin_test

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/partnerops/entitlement-operator/internal/plugin"
)

// The diff fixtures (testdata/diff/README.md): a contracts repository and
// changes to it, each with what the diff must say at fixtureAt.
const fixtures = "testdata/diff"

var fixtureAt = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)

type want struct {
	Exit     int                    `json:"exit"`
	Partners map[string]wantPartner `json:"partners"`
}

type wantPartner struct {
	Outcome string `json:"outcome"`
	At      string `json:"at"`
	From    string `json:"from"`
	To      string `json:"to"`
}

// fixtureChanges are the names of the changes, with what each must give.
func fixtureChanges(t *testing.T) map[string]want {
	t.Helper()
	entries, err := os.ReadDir(fixtures)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]want{}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(fixtures, e.Name(), "want.yaml"))
		if !e.IsDir() || os.IsNotExist(err) {
			continue
		}
		var w want
		if err == nil {
			err = yaml.UnmarshalStrict(b, &w)
		}
		if err != nil {
			t.Fatalf("%s: %v", e.Name(), err)
		}
		out[e.Name()] = w
	}
	if len(out) != 5 {
		t.Fatalf("%d changes in %s, want 5", len(out), fixtures)
	}
	return out
}

// assemble writes the change's two sets: base, and base with the change.
func assemble(t *testing.T, change string) (before, after string) {
	t.Helper()
	root := t.TempDir()
	before, after = filepath.Join(root, "before"), filepath.Join(root, "after")
	copyDir(t, filepath.Join(fixtures, "base"), before)
	copyDir(t, filepath.Join(fixtures, "base"), after)
	if _, err := os.Stat(filepath.Join(fixtures, change, "after")); err == nil {
		copyDir(t, filepath.Join(fixtures, change, "after"), after)
	}
	if b, err := os.ReadFile(filepath.Join(fixtures, change, "deleted")); err == nil {
		for _, f := range strings.Fields(string(b)) {
			if err := os.Remove(filepath.Join(after, f)); err != nil {
				t.Fatal(err)
			}
		}
	}
	return before, after
}

// copyDir copies src's files into dst, replacing those there.
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(path string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dst, rel)), 0o755); err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// gitRepo is a repository with two commits: before, then after.
func gitRepo(t *testing.T, before, after string) string {
	t.Helper()
	repo := t.TempDir()
	git := func(args ...string) {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-c", "user.name=test", "-c", "user.email=test@example.com", "-c", "commit.gpgsign=false"}, args...)...)
		cmd.Dir = repo
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %s: %v\n%s", args, err, out)
		}
	}
	git("init", "-q", "-b", "main")
	copyDir(t, before, repo)
	git("add", "-A")
	git("commit", "-q", "-m", "base")
	git("rm", "-r", "-q", ".")
	copyDir(t, after, repo)
	git("add", "-A")
	git("commit", "-q", "-m", "change")
	return repo
}

func runIn(dir string, args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	code := plugin.Run(context.Background(), args, &out, &errOut, plugin.Options{Dir: dir, Now: func() time.Time { return fixtureAt }})
	return code, out.String(), errOut.String()
}

// checkDiff compares a diff with what the fixture wants, partner by
// partner.
func checkDiff(t *testing.T, how string, code int, out string, w want) *plugin.Diff {
	t.Helper()
	var d plugin.Diff
	if err := yaml.Unmarshal([]byte(out), &d); err != nil {
		t.Fatalf("%s: %v\n%s", how, err, out)
	}
	if code != w.Exit {
		t.Errorf("%s: exit %d, want %d", how, code, w.Exit)
	}
	if len(d.Partners) != len(w.Partners) {
		t.Errorf("%s: %d partners, want %d", how, len(d.Partners), len(w.Partners))
	}
	for _, p := range d.Partners {
		wp, ok := w.Partners[p.Name]
		at := ""
		if p.At != nil {
			at = p.At.UTC().Format(time.RFC3339)
		}
		if got := (wantPartner{p.Outcome, at, p.From, p.To}); !ok || got != wp {
			t.Errorf("%s: %s: got %+v, want %+v", how, p.Name, got, wp)
		}
	}
	return &d
}

// TestDiffFixtures: every change, as two directories and as a git range,
// gives the outcome, instant and exit code the fixture wants; no cluster.
func TestDiffFixtures(t *testing.T) {
	at := fixtureAt.Format(time.RFC3339)
	for change, w := range fixtureChanges(t) {
		t.Run(change, func(t *testing.T) {
			before, after := assemble(t, change)
			code, out, errOut := runIn("", "diff", before, after, "--at", at, "-o", "json")
			checkDiff(t, "two directories", code, out, w)
			if w.Exit == plugin.ExitRevocations && !strings.Contains(errOut, "--allow-revocations") {
				t.Errorf("exit 3 without saying how to accept it: %q", errOut)
			}
			repo := gitRepo(t, before, after)
			for _, rng := range []string{"main~1..main", "main~1...HEAD", "HEAD~1"} {
				code, out, _ := runIn(repo, "diff", "--git", rng, "-o", "yaml")
				checkDiff(t, "git "+rng, code, out, w)
			}
			code, md, _ := runIn(repo, "diff", "--git", "main~1..main", "--allow-revocations", "-o", "markdown")
			if code != 0 {
				t.Errorf("--allow-revocations: exit %d", code)
			}
			for name, p := range w.Partners {
				row := "| " + name + " | "
				if p.Outcome == "Unchanged" {
					if strings.Contains(md, row) {
						t.Errorf("markdown lists unchanged %s:\n%s", name, md)
					}
				} else if !strings.Contains(md, row) || !strings.Contains(md, p.At) {
					t.Errorf("markdown: no row for %s at %s:\n%s", name, p.At, md)
				}
			}
		})
	}
}

// TestDiffGitErrors: a bad revision says what git said, exit 1.
func TestDiffGitErrors(t *testing.T) {
	before, after := assemble(t, "end-earlier")
	repo := gitRepo(t, before, after)
	code, _, errOut := runIn(repo, "diff", "--git", "no-such-branch..main")
	if code != plugin.ExitError || !strings.Contains(errOut, "no-such-branch") {
		t.Errorf("want exit 1 naming the revision, got %d: %s", code, errOut)
	}
	// Only the contracts: partners are in another directory.
	code, out, _ := runIn(repo, "diff", "--git", "main~1..main", "contracts", "-o", "json")
	if d := checkDiff(t, "pathspec", code, out, want{}); len(d.Contracts) != 1 {
		t.Errorf("pathspec contracts: want bytec-de changed, got %+v", d.Contracts)
	}
}

package main

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/partnerops/entitlement-operator/internal/crdschema"
)

// TestAPIDocsAreCurrent fails when docs/api.md is not what the CRDs in
// config/crd/bases generate: run `make generate`.
func TestAPIDocsAreCurrent(t *testing.T) {
	crds, err := crdschema.Read("../../config/crd/bases")
	if err != nil {
		t.Fatal(err)
	}
	got := render(crds)
	if again := render(crds); !bytes.Equal(got, again) {
		t.Fatal("two renders of the same CRDs differ")
	}
	want, err := os.ReadFile("../../docs/api.md")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Error("docs/api.md is stale: run `go run ./hack/apidocs -crds config/crd/bases -out docs/api.md` (make generate)")
	}
	// Every kind, every rule message and every default is in it.
	for _, s := range []string{"## DistributorContract", "## Partner", "## Subscription",
		"endsAt must be after startsAt", "contracts must not list a contract twice",
		"`720h`", "`0s`", "`Reseller`", "`Retain`", "[architecture.md](architecture.md)"} {
		if !strings.Contains(string(got), s) {
			t.Errorf("docs/api.md lacks %q", s)
		}
	}
}

func TestCodeSpanInTable(t *testing.T) {
	for in, want := range map[string]string{
		"a|b":         "`a\\|b`",
		"x `y` z":     "``x `y` z``",
		"`edge`":      "`` `edge` ``",
		"multi\nline": "`multi line`",
	} {
		if got := code(in); got != want {
			t.Errorf("code(%q) = %q, want %q", in, got, want)
		}
	}
}

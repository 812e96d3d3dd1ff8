package plugin

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/partnerops/entitlement-operator/internal/version"
)

// TestTemplateFormats: kubectl's template formats, chosen as kubectl's
// PrintFlags choose them; a template that does not parse is a usage error.
func TestTemplateFormats(t *testing.T) {
	defer func(v string) { version.Version = v }(version.Version)
	version.Version = "v9.8.7"
	dir := t.TempDir()
	gotmpl, jp := filepath.Join(dir, "t.tmpl"), filepath.Join(dir, "t.jsonpath")
	if os.WriteFile(gotmpl, []byte("{{.kind}} {{.version}}"), 0o600) != nil || os.WriteFile(jp, []byte("{.kind}"), 0o600) != nil {
		t.Fatal("writing templates")
	}
	for format, want := range map[string]string{
		"JSON":                           `"version": "v9.8.7"`,
		"kyaml":                          `version: "v9.8.7"`,
		"go-template={{.version}}":       "v9.8.7",
		"template={{.kind}}":             "Version",
		"go-template-file=" + gotmpl:     "Version v9.8.7",
		"templatefile=" + gotmpl:         "Version v9.8.7",
		"jsonpath-file=" + jp:            "Version",
		"jsonpath-as-json={.version}":    `"v9.8.7"`,
		"jsonpath={.nothing}":            "",
		"jsonpath={.kind}/{.apiVersion}": "Version/" + ReportVersion.String(),
	} {
		code, out, errOut := run("version", "-o", format)
		if code != ExitOK || !strings.Contains(out, want) {
			t.Errorf("-o %s: want %q, got %d %q %s", format, want, code, out, errOut)
		}
	}
	for format, want := range map[string]string{
		"jsonpath":                          `--output "jsonpath": want one of`,
		"jsonpath=":                         "no template given",
		"go-template={{":                    "error parsing template",
		"jsonpath={.a":                      "error parsing jsonpath",
		"go-template-file=" + dir + "/none": "error reading --template",
		"csv":                               `--output "csv": want one of table, wide, json, yaml, name, jsonpath=, go-template=`,
	} {
		if code, _, errOut := run("version", "-o", format); code != ExitUsage || !strings.Contains(errOut, want) {
			t.Errorf("-o %s: want exit 2 saying %q, got %d %s", format, want, code, errOut)
		}
	}
}

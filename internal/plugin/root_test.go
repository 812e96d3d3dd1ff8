package plugin

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/partnerops/entitlement-operator/internal/version"
)

func run(args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	code := Run(context.Background(), args, &out, &errOut, Options{})
	return code, out.String(), errOut.String()
}

// TestHelpIsDistinctPerCommand: each command's --help is its own, with
// examples, under the name kubectl users type.
func TestHelpIsDistinctPerCommand(t *testing.T) {
	seen := map[string]string{}
	for _, cmd := range []string{"status", "forecast", "why", "history", "diff", "version", "completion"} {
		code, out, errOut := run(cmd, "--help")
		if code != ExitOK {
			t.Fatalf("%s --help: exit %d: %s", cmd, code, errOut)
		}
		if !strings.Contains(out, "Examples:") || !strings.Contains(out, "kubectl entitlements "+cmd) {
			t.Errorf("%s --help: want examples and the usage line `kubectl entitlements %s`:\n%s", cmd, cmd, out)
		}
		own, _, _ := strings.Cut(out, "Global Flags:")
		if other, dup := seen[own]; dup {
			t.Errorf("%s --help is the same as %s --help", cmd, other)
		}
		seen[own] = cmd
	}
	if code, out, _ := run(); code != ExitOK || !strings.Contains(out, "Available Commands:") {
		t.Errorf("no arguments: want the help and exit 0, got %d:\n%s", code, out)
	}
}

func TestUsageErrorsExit2(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"foo"}, `unknown command "foo"`},
		{[]string{"stauts"}, `did you mean "status"`},
		{[]string{"status", "--bogus"}, "unknown flag: --bogus"},
		{[]string{"status", "extra"}, "want no arguments"},
		{[]string{"status", "-o", "jsn"}, `--output "jsn": want one of table, wide, json`},
		{[]string{"status", "-o", "markdown"}, `--output "markdown"`},
		{[]string{"why"}, "want one PARTNER"},
		{[]string{"history", "a", "b"}, "want one PARTNER, got 2 arguments"},
		{[]string{"forecast", "--end", "nonsense"}, "want CONTRACT=TIME"},
		{[]string{"forecast", "--end", "bytec-de=tomorrow"}, "want an RFC 3339 time"},
		{[]string{"forecast", "--at", "2026-01-01T00:00:00Z", "--in", "1h"}, "--at and --in exclude each other"},
		{[]string{"diff"}, "want BEFORE AFTER"},
		{[]string{"diff", "a", "b", "c"}, "want BEFORE AFTER"},
		{[]string{"diff", "a", "b", "--prune"}, "--prune applies to the cluster"},
		{[]string{"diff", "a", "b", "--at", "monday"}, "--at"},
		{[]string{"completion", "tcsh"}, `invalid argument "tcsh"`},
	} {
		code, _, errOut := run(tc.args...)
		if code != ExitUsage || !strings.Contains(errOut, tc.want) || !strings.Contains(errOut, "--help' for usage") {
			t.Errorf("%q: want exit 2 saying %q and where help is, got %d: %s", tc.args, tc.want, code, errOut)
		}
	}
}

// TestNoClusterIsAnError: exit 1 and the reason, no usage hint.
func TestNoClusterIsAnError(t *testing.T) {
	code, _, errOut := run("status", "--server", "http://127.0.0.1:1", "--request-timeout", "5s")
	if code != ExitError || !strings.Contains(errOut, "connection refused") || strings.Contains(errOut, "for usage") {
		t.Errorf("want exit 1 saying connection refused, got %d: %s", code, errOut)
	}
}

func TestVersionIsStamped(t *testing.T) {
	defer func(v string) { version.Version = v }(version.Version)
	version.Version = "v9.8.7"
	_, out, _ := run("version")
	if !strings.Contains(out, "kubectl-entitlements v9.8.7") {
		t.Errorf("version: %q", out)
	}
	for _, format := range []string{"json", "yaml"} {
		_, out, _ := run("version", "-o", format)
		var v Version
		if err := yaml.Unmarshal([]byte(out), &v); err != nil {
			t.Fatal(err)
		}
		if v.Version != "v9.8.7" || v.Kind != "Version" || v.APIVersion != ReportVersion.String() || v.Platform == "" {
			t.Errorf("version -o %s: %+v", format, v)
		}
	}
	if code, out, _ := run("version", "-o", "name"); code != ExitOK || out != "" {
		t.Errorf("version -o name: want nothing (it is about no object), got %d %q", code, out)
	}
	if _, out, _ := run("version", "-o", "jsonpath={.version}"); out != "v9.8.7" {
		t.Errorf("version -o jsonpath: %q", out)
	}
	var raw map[string]any
	if _, out, _ := run("version", "-o", "json"); json.Unmarshal([]byte(out), &raw) != nil || raw["goVersion"] == nil {
		t.Errorf("version -o json: %s", out)
	}
}

package node_test

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestKrewManifest: krew accepts the release's manifest and installs the
// plugin from the release's archive for this machine, and kubectl finds it.
func TestKrewManifest(t *testing.T) {
	e := setup(t)
	if e.krew == "" {
		t.Skip("NODE_KREW not set")
	}
	manifest := filepath.Join(e.release, "entitlements.krew.yaml")
	archive := filepath.Join(e.release, "kubectl-entitlements_"+runtime.GOOS+"_"+runtime.GOARCH+".tar.gz")
	root := t.TempDir()
	t.Setenv("KREW_ROOT", root)
	t.Setenv("HOME", root)
	out := run(t, "", e.krew, "install", "--manifest="+manifest, "--archive="+archive)
	t.Log(out)
	bin := filepath.Join(root, "bin", "kubectl-entitlements")
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("krew installed no kubectl-entitlements: %v", err)
	}
	t.Setenv("PATH", filepath.Join(root, "bin")+":"+os.Getenv("PATH"))
	plugins := run(t, "", "kubectl", "plugin", "list")
	if !strings.Contains(plugins, bin) {
		t.Errorf("kubectl plugin list does not show %s:\n%s", bin, plugins)
	}
	// The binary carries the release's version (-ldflags -X; go version -m
	// does not show -ldflags of a -trimpath build).
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(e.version)) {
		t.Errorf("%s is not stamped with %s", bin, e.version)
	}
}

// TestNoRouteOff: the node's network namespace (where the test runs, and
// where Pods' traffic ends up) has no route off the machine, so a Pod can
// reach the node and the Services and nothing else.
func TestNoRouteOff(t *testing.T) {
	setup(t)
	for _, dst := range []string{"203.0.113.1", "198.51.100.1"} {
		if out, err := try("", "ip", "-4", "route", "get", dst); err == nil {
			t.Errorf("the node has a route to %s: %s", dst, out)
		}
	}
}

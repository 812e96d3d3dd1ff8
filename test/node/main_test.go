// Package node_test installs the operator the way a platform team does, on
// a real node (kubelet, containerd, kube-proxy; hack/tools/cmd/node), with
// the images and the release the project builds, and drives it with the
// kubectl and helm CLIs:
//
//   - config/default with the image just built (what `make deploy IMG=...`
//     applies): 2 Pods Ready under the restricted Pod Security Standard,
//     one leader, a Partner granted and then revoked when its contract
//     ends, the leader deleted and the next transition still on time,
//     metrics scraped from a Pod with and without the metrics-reader
//     binding, logs and events;
//   - the release's install.yaml (image pinned by digest): 2/2 Ready and a
//     Partner granted;
//   - the release's packaged chart: install, helm test, a Partner granted,
//     upgrade to the working tree's chart, uninstall keeping the partner's
//     namespace and Subscriptions;
//   - the image against the Dockerfile, and the krew manifest with krew.
//
// `make test-node` builds everything, brings the node up, runs this package
// inside the node's network namespace and takes the node down; without it
// (plain `go test ./...`) the tests skip.
package node_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/partnerops/entitlement-operator/internal/testcluster"
)

// env is what make test-node passes.
type env struct {
	release string // the release directory (hack/release.sh)
	version string // its version: the images' tag
	repo    string // the manager image's repository
	helm    string
	krew    string
	root    string // the repository
}

func setup(t *testing.T) env {
	t.Helper()
	e := env{
		release: os.Getenv("NODE_RELEASE"),
		version: os.Getenv("NODE_VERSION"),
		repo:    os.Getenv("NODE_IMAGE_REPO"),
		helm:    os.Getenv("NODE_HELM"),
		krew:    os.Getenv("NODE_KREW"),
	}
	if e.release == "" || e.version == "" || e.repo == "" {
		t.Skip("runs on a real node: make test-node (root, Linux)")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	e.root = root
	return e
}

// figure logs a measured figure in a form make test-node collects.
func figure(t *testing.T, name string, d time.Duration) {
	t.Helper()
	t.Logf("FIGURE %s: %.1fs", name, d.Seconds())
}

// run runs a command and returns its standard output; a failure fails the
// test with the command's output.
func run(t *testing.T, stdin string, name string, args ...string) string {
	t.Helper()
	out, err := try(stdin, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v", name, strings.Join(args, " "), err)
	}
	return out
}

// try runs a command; the error carries its standard error.
func try(stdin string, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%w: %s%s", err, stderr.String(), stdout.String())
	}
	return stdout.String(), nil
}

func kubectl(t *testing.T, args ...string) string {
	t.Helper()
	return run(t, "", "kubectl", args...)
}

func apply(t *testing.T, manifest string) {
	t.Helper()
	run(t, manifest, "kubectl", "apply", "--server-side", "--field-manager", "node-test", "-f", "-")
}

// getJSON reads an object (or a list) into v.
func getJSON(t *testing.T, v any, args ...string) error {
	t.Helper()
	out, err := try("", "kubectl", append([]string{"get", "-o", "json"}, args...)...)
	if err != nil {
		return err
	}
	return json.Unmarshal([]byte(out), v)
}

// eventually polls check (every 250 ms: each check runs kubectl) until it
// returns nil or the time is up, and says how long that took: the figures
// this package reports.
func eventually(t *testing.T, limit time.Duration, what string, check func() error) time.Duration {
	t.Helper()
	start := time.Now()
	if err := testcluster.PollEvery(250*time.Millisecond, limit, check); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return time.Since(start)
}

// Package e2e_test runs the real manager binary against the local control
// plane (internal/testcluster) and drives it like a user would: the story
// of internal/demo (the same `make demo` shows), and the demo program
// itself, interrupted, leaving no process behind.
package e2e_test

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/partnerops/entitlement-operator/internal/demo"
	"github.com/partnerops/entitlement-operator/internal/testcluster"
)

// needCluster skips under -short and fails when the control-plane binaries
// are missing (`make k8s-bins`).
func needCluster(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("needs the local control plane (internal/testcluster) and builds the manager binary")
	}
	if err := testcluster.Available(); err != nil {
		t.Fatal(err)
	}
	root, err := testcluster.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// TestDemoStory builds the manager binary, runs it against a fresh control
// plane with the real tier ClusterRoles, plays the demo's story and asserts
// that every one of its checks holds.
func TestDemoStory(t *testing.T) {
	root := needCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	cl := testcluster.StartForTest(t, testcluster.Options{TierRoles: true})
	dir := t.TempDir()
	bin := filepath.Join(dir, "manager")
	if err := testcluster.BuildManager(ctx, root, bin); err != nil {
		t.Fatal(err)
	}
	m, err := testcluster.StartManager(ctx, testcluster.ManagerOptions{Binary: bin, Kubeconfig: cl.KubeconfigPath,
		LogPath: filepath.Join(dir, "manager.log")})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Stop() // before the control plane stops (t.Cleanup)

	// The story's own narration stops with storyCtx, before the manager.
	out := &syncBuffer{}
	storyCtx, stopStory := context.WithCancel(ctx)
	res, err := demo.Run(storyCtx, cl.Config, demo.NewNarrator(out))
	stopStory()
	t.Logf("timeline:\n%s", out.String())
	if err != nil {
		t.Fatalf("the story could not be played: %v\nmanager log:\n%s", err, m.Logs())
	}
	if len(res.Checks) == 0 {
		t.Fatal("the story checked nothing")
	}
	for _, c := range res.Checks {
		if !c.OK {
			t.Errorf("FAIL %s: %s", c.Name, c.Detail)
		}
	}
	if !res.Passed() {
		t.Logf("manager log (end):\n%s", m.Logs())
	}
	if err := m.Exited(); err != nil {
		t.Errorf("the manager exited during the story: %v", err)
	}
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.TrimRight(b.buf.String(), "\n")
}

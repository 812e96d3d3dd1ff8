package testcluster

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// fakeManagerEnv makes this test binary a stand-in for the manager: it
// serves /readyz on --health-probe-bind-address, failing the first answers
// as controller-runtime does while its caches sync, until SIGTERM.
const fakeManagerEnv = "TESTCLUSTER_FAKE_MANAGER"

func init() {
	// Before the testing package parses flags: the manager's flags are not
	// the test binary's.
	if os.Getenv(fakeManagerEnv) != "" {
		os.Exit(fakeManager(os.Args[1:]))
	}
}

func fakeManager(args []string) int {
	var addr string
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, "--health-probe-bind-address="); ok {
			addr = v
		}
	}
	var asked atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if asked.Add(1) < 3 {
			http.Error(w, "[-]caches failed: reason withheld", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok"))
	})
	mux.HandleFunc("/readyz/caches", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("waiting for Partners"))
	})
	os.Stderr.WriteString("fake manager serving " + addr + "\n")
	// Killed by Stop's SIGTERM (the default action): nothing to clean up.
	if err := http.ListenAndServe(addr, mux); err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		return 1
	}
	return 0
}

// TestStartManagerWaitsUntilReadyAndStops: StartManager returns only once
// /readyz answers OK, with the manager's output in its log file, and Stop
// leaves no process.
func TestStartManagerWaitsUntilReadyAndStops(t *testing.T) {
	t.Setenv(fakeManagerEnv, "1")
	log := filepath.Join(t.TempDir(), "manager.log")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, err := StartManager(ctx, ManagerOptions{Binary: os.Args[0], Kubeconfig: "/nonexistent/kubeconfig", LogPath: log})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + p.ProbeAddr + "/readyz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("StartManager returned before /readyz answered OK: %v %v", resp, err)
	}
	_ = resp.Body.Close()
	p.Stop()
	select {
	case <-p.Done():
	default:
		t.Fatal("Stop returned with the manager running")
	}
	raw, err := os.ReadFile(log)
	if err != nil || !strings.Contains(string(raw), "fake manager serving "+p.ProbeAddr) {
		t.Errorf("log file %s: %q, %v", log, raw, err)
	}
}

// TestStartManagerReportsAnEarlyExit: a manager that exits while starting
// ends the wait at once with how it exited and what it printed, not after
// the readiness timeout.
func TestStartManagerReportsAnEarlyExit(t *testing.T) {
	script := filepath.Join(t.TempDir(), "manager")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho \"no luck with $*\" >&2\nexit 3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := StartManager(ctx, ManagerOptions{Binary: script, Kubeconfig: "/k", ExtraArgs: []string{"--leader-elect"}})
	if err == nil {
		t.Fatal("StartManager succeeded with a manager that exits")
	}
	if errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "exit status 3") {
		t.Errorf("error does not say how the manager exited: %v", err)
	}
	if !strings.Contains(err.Error(), "no luck with --kubeconfig=/k --metrics-bind-address=0 --health-probe-bind-address=127.0.0.1:") ||
		!strings.Contains(err.Error(), "--leader-elect") {
		t.Errorf("error does not show the manager's output with its command line: %v", err)
	}
}

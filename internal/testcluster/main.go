package testcluster

import (
	"fmt"
	"os"
	"testing"
)

// logTail is how much of the control-plane logs a failing test binary prints.
const logTail = 20000

// LogTail returns at most the last n bytes of the control-plane logs.
func (c *Cluster) LogTail(n int) string {
	logs := c.Logs()
	if len(logs) > n {
		logs = logs[len(logs)-n:]
	}
	return logs
}

// RunTests is the body of a TestMain whose tests share one control plane:
// it starts the cluster, runs setup, runs the tests, prints the tail of the
// control-plane logs when something failed and always stops the cluster
// (a failure to stop fails the run). It returns the exit code. When
// enabled is false (under -short, or a benchmark-only package run without
// -bench) it only runs the tests, which skip themselves.
//
//	func TestMain(m *testing.M) {
//		flag.Parse()
//		os.Exit(testcluster.RunTests(m, !testing.Short(), testcluster.Options{}, setup))
//	}
func RunTests(m *testing.M, enabled bool, opts Options, setup func(*Cluster) error) int {
	if !enabled {
		return m.Run()
	}
	c, err := Start(opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	code := 1
	if setup != nil {
		err = setup(c)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "setting up the control plane for the tests:", err)
	} else {
		code = m.Run()
	}
	if code != 0 {
		fmt.Fprintln(os.Stderr, "---- control plane logs (tail) ----")
		fmt.Fprintln(os.Stderr, c.LogTail(logTail))
	}
	if err := c.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stopping the control plane:", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// StartForTest starts a control plane of the test's own: it skips the test
// under -short, fails it when the cluster cannot start, and at cleanup
// logs the tail of the control-plane logs if the test failed and stops
// every process (a failure to stop fails the test).
func StartForTest(t testing.TB, opts Options) *Cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("needs the local control plane (internal/testcluster)")
	}
	c, err := Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Log("control plane logs (tail):\n" + c.LogTail(logTail))
		}
		if err := c.Stop(); err != nil {
			t.Error(err)
		}
	})
	return c
}

package testcluster

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// logTail is how much of the control-plane logs a failing test binary prints.
const logTail = 20000

// LogTail returns at most the last n bytes of the control-plane logs,
// preceded by which of etcd and kube-apiserver are no longer running and
// the last lines of each component the tail leaves out: one process's
// complaints (kube-apiserver's, retrying a dead etcd) can fill the tail
// and hide why another stopped.
func (c *Cluster) LogTail(n int) string {
	logs := c.Logs()
	tail := logs
	if len(tail) > n {
		tail = tail[len(tail)-n:]
	}
	var b strings.Builder
	running := runningChildren()
	for _, pid := range c.planePIDs {
		if !running[pid] {
			fmt.Fprintf(&b, "[testcluster] %s (pid %d) is not running\n", c.planeNames[pid], pid)
		}
	}
	b.WriteString(lastWords(logs, tail, lastWordsLines))
	b.WriteString(tail)
	return b.String()
}

// lastWordsLines is how many of its last lines LogTail shows of a
// component the tail leaves out.
const lastWordsLines = 10

// lastWords returns the last lines of each component ("[name] " prefix)
// in logs that has no line in tail, oldest component first, each line cut
// to 400 bytes.
func lastWords(logs, tail string, lines int) string {
	inTail := map[string]bool{}
	for line := range strings.Lines(tail) {
		if name, ok := component(line); ok {
			inTail[name] = true
		}
	}
	byName := map[string][]string{}
	var order []string
	for line := range strings.Lines(logs) {
		name, ok := component(line)
		if !ok || inTail[name] {
			continue
		}
		if _, seen := byName[name]; !seen {
			order = append(order, name)
		}
		if len(line) > 400 {
			line = line[:400] + "…\n"
		}
		byName[name] = append(byName[name], line)
		if len(byName[name]) > lines {
			byName[name] = byName[name][1:]
		}
	}
	var b strings.Builder
	for _, name := range order {
		fmt.Fprintf(&b, "---- last %d lines of %s, before the tail ----\n", len(byName[name]), name)
		for _, l := range byName[name] {
			b.WriteString(l)
			if !strings.HasSuffix(l, "\n") {
				b.WriteByte('\n')
			}
		}
	}
	if b.Len() > 0 {
		b.WriteString("---- tail ----\n")
	}
	return b.String()
}

// component is the name in a log line's "[name] " prefix.
func component(line string) (string, bool) {
	if !strings.HasPrefix(line, "[") {
		return "", false
	}
	end := strings.Index(line, "] ")
	if end < 2 || strings.ContainsAny(line[1:end], " \t") {
		return "", false
	}
	return line[1:end], true
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

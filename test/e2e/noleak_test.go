package e2e_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/partnerops/entitlement-operator/internal/testcluster"
)

// storyLine is a timeline line about one of the story's objects: the
// control plane and the manager are up and the story is under way.
var storyLine = regexp.MustCompile(`^\s*\+\d+\.\ds\s+(DistributorContract|Partner)/`)

// TestDemoInterruptedLeavesNoProcess runs the demo program, interrupts it
// (SIGINT, as Ctrl-C does) once its story is under way, and asserts that
// every process it started — etcd, kube-apiserver, kube-controller-manager,
// the manager — is gone afterwards. The processes are found by walking the
// demo's process tree in /proc while it runs (once it is gone, its orphans
// would belong to init).
func TestDemoInterruptedLeavesNoProcess(t *testing.T) {
	root := needCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	dir := t.TempDir()
	demoBin, managerBin := filepath.Join(dir, "demo"), filepath.Join(dir, "manager")
	build := exec.CommandContext(ctx, "go", "build", "-o", demoBin, "./cmd/demo")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/demo: %v\n%s", err, out)
	}
	if err := testcluster.BuildManager(ctx, root, managerBin); err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(demoBin, "--manager", managerBin)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "NO_COLOR=1")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	var output syncBuffer
	storyStarted := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		once := sync.Once{}
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(&output, line)
			if storyLine.MatchString(line) {
				once.Do(func() { close(storyStarted) })
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
		exited <- cmd.Wait()
	}()
	defer func() {
		// Whatever happened, the demo does not outlive the test.
		_ = cmd.Process.Kill()
	}()

	tracker := trackDescendants(cmd.Process.Pid)
	defer tracker.stop()

	select {
	case <-storyStarted:
	case err := <-exited:
		t.Fatalf("the demo exited before its story started: %v\n%s\n%s", err, output.String(), stderr.String())
	case <-time.After(3 * time.Minute):
		t.Fatalf("no story line from the demo within 3 minutes:\n%s\n%s", output.String(), stderr.String())
	}

	// Everything the demo starts is running now; make sure the tracker has
	// seen each of them before the interrupt.
	want := []string{"etcd", "kube-apiserver", "kube-controller", "manager"}
	if err := testcluster.Poll(10*time.Second, func() error {
		var missing []string
		for _, w := range want {
			if !tracker.saw(w) {
				missing = append(missing, w)
			}
		}
		if len(missing) > 0 {
			return fmt.Errorf("not seen among the demo's processes: %v (seen: %v)", missing, tracker.list())
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	t.Logf("the demo's processes before the interrupt: %v", tracker.list())

	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	var waitErr error
	select {
	case waitErr = <-exited:
	case <-time.After(60 * time.Second):
		t.Fatalf("the demo did not exit within 60s of SIGINT:\n%s\n%s", output.String(), stderr.String())
	}
	tracker.stop()
	t.Logf("demo output:\n%s", output.String())
	var ee *exec.ExitError
	if !errors.As(waitErr, &ee) || ee.ExitCode() != 130 {
		t.Errorf("the demo exited with %v after SIGINT, want exit code 130\nstderr:\n%s", waitErr, stderr.String())
	}
	if !strings.Contains(output.String(), "interrupted") {
		t.Errorf("the demo did not report the interruption")
	}

	if err := testcluster.Poll(30*time.Second, func() error {
		if alive := tracker.alive(); len(alive) > 0 {
			return fmt.Errorf("still running: %v", alive)
		}
		return nil
	}); err != nil {
		t.Errorf("processes the demo started outlived it: %v", err)
		for _, p := range tracker.aliveProcs() {
			_ = syscall.Kill(p.pid, syscall.SIGKILL)
		}
	}
}

// proc identifies a process across pid reuse: pid and start time.
type proc struct {
	pid   int
	start uint64
	comm  string
}

func (p proc) String() string { return fmt.Sprintf("%s(%d)", p.comm, p.pid) }

type procStat struct {
	comm  string
	state string
	ppid  int
	start uint64
}

// readStat parses /proc/<pid>/stat: pid (comm) state ppid ... starttime
// (field 22); comm may contain spaces and parentheses, so cut at the last ')'.
func readStat(pid int) (procStat, bool) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return procStat{}, false
	}
	s := string(b)
	open, closing := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || closing < open {
		return procStat{}, false
	}
	rest := strings.Fields(s[closing+1:])
	if len(rest) < 20 {
		return procStat{}, false
	}
	ppid, _ := strconv.Atoi(rest[1])
	start, _ := strconv.ParseUint(rest[19], 10, 64)
	return procStat{comm: s[open+1 : closing], state: rest[0], ppid: ppid, start: start}, true
}

// descendants lists the live processes below root.
func descendants(root int) []proc {
	entries, _ := os.ReadDir("/proc")
	children := map[int][]int{}
	stats := map[int]procStat{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, ok := readStat(pid)
		if !ok || st.state == "Z" {
			continue
		}
		stats[pid] = st
		children[st.ppid] = append(children[st.ppid], pid)
	}
	var out []proc
	queue := append([]int(nil), children[root]...)
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		st := stats[pid]
		out = append(out, proc{pid: pid, start: st.start, comm: st.comm})
		queue = append(queue, children[pid]...)
	}
	return out
}

// tracker collects the demo's descendants every 50ms while it runs.
type tracker struct {
	mu       sync.Mutex
	seen     map[proc]bool
	done     chan struct{}
	stopped  chan struct{}
	stopOnce sync.Once
}

func trackDescendants(root int) *tracker {
	tr := &tracker{seen: map[proc]bool{}, done: make(chan struct{}), stopped: make(chan struct{})}
	go func() {
		defer close(tr.stopped)
		for {
			for _, p := range descendants(root) {
				tr.mu.Lock()
				tr.seen[p] = true
				tr.mu.Unlock()
			}
			select {
			case <-tr.done:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	return tr
}

func (tr *tracker) stop() {
	tr.stopOnce.Do(func() { close(tr.done) })
	<-tr.stopped
}

// saw reports whether a process whose name starts with comm was seen.
func (tr *tracker) saw(comm string) bool {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	for p := range tr.seen {
		if strings.HasPrefix(p.comm, comm) {
			return true
		}
	}
	return false
}

func (tr *tracker) list() []string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	var out []string
	for p := range tr.seen {
		out = append(out, p.String())
	}
	sort.Strings(out)
	return out
}

// aliveProcs are the seen processes still running (same pid, same start
// time, not a zombie).
func (tr *tracker) aliveProcs() []proc {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	var out []proc
	for p := range tr.seen {
		if st, ok := readStat(p.pid); ok && st.start == p.start && st.state != "Z" {
			out = append(out, p)
		}
	}
	return out
}

func (tr *tracker) alive() []string {
	var out []string
	for _, p := range tr.aliveProcs() {
		out = append(out, p.String())
	}
	sort.Strings(out)
	return out
}

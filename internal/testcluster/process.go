package testcluster

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/runtime/schema"
	kerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/discovery"
)

// stopGrace is the grace period to use: the option, else
// KUBEBUILDER_CONTROLPLANE_STOP_TIMEOUT (envtest reads it when this is 0),
// else defaultStopGrace.
func stopGrace(opt time.Duration) time.Duration {
	if opt == 0 && os.Getenv("KUBEBUILDER_CONTROLPLANE_STOP_TIMEOUT") != "" {
		return 0
	}
	return cmp.Or(opt, defaultStopGrace)
}

// defaultStopGrace is how long Stop lets etcd and kube-apiserver shut down
// gracefully after SIGTERM before they are killed.
const defaultStopGrace = 15 * time.Second

// forcedOnly reports whether every error envtest returned from Stop is a
// plain grace-period timeout, after which it has sent SIGKILL (a failed
// kill is joined to the timeout and does not count).
func forcedOnly(err error) bool {
	errs := []error{err}
	if agg, ok := err.(kerrors.Aggregate); ok {
		errs = agg.Errors()
	}
	for _, e := range errs {
		if !stopTimeout.MatchString(e.Error()) {
			return false
		}
	}
	return len(errs) > 0
}

var stopTimeout = regexp.MustCompile(`^timeout waiting for process [^\s]+ to stop$`)

// planeGone reports (as an error) an etcd or kube-apiserver of this cluster
// still running.
func (c *Cluster) planeGone() error {
	running := runningChildren()
	for _, pid := range c.planePIDs {
		if running[pid] {
			return fmt.Errorf("pid %d still running", pid)
		}
	}
	return nil
}

// stopOnSignal stops the cluster on SIGINT or SIGTERM, then hands the
// signal back to its default action: Ctrl-C during a test run leaves
// nothing behind and ends the run as Ctrl-C would have, without this
// package deciding the process's exit. The returned func removes the
// handler (Stop calls it).
func (c *Cluster) stopOnSignal() func() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case s := <-ch:
			fmt.Fprintf(os.Stderr, "testcluster: %v: stopping the control plane\n", s)
			c.sigStop = nil
			_ = c.Stop()
			signal.Stop(ch)
			signal.Reset(s)
			if sig, ok := s.(syscall.Signal); ok {
				_ = syscall.Kill(os.Getpid(), sig)
			}
		case <-done:
		}
	}()
	return func() { signal.Stop(ch); close(done) }
}

// PIDs returns the process ids of this cluster's running etcd,
// kube-apiserver and kube-controller-manager: what a leak check compares
// before and after Stop.
func (c *Cluster) PIDs() []int {
	pids := append([]int(nil), c.planePIDs...)
	if c.kcm != nil {
		pids = append(pids, c.kcm.Pid())
	}
	running := runningChildren()
	return slices.DeleteFunc(pids, func(pid int) bool { return !running[pid] })
}

// runningChildren is the set of this process's running control-plane
// children.
func runningChildren() map[int]bool {
	running := map[int]bool{}
	for _, pid := range ChildPIDs(os.Getpid()) {
		running[pid] = true
	}
	return running
}

// ChildPIDs lists the running etcd, kube-apiserver and kube-controller-manager
// processes whose parent is ppid (any parent when ppid is 0).
func ChildPIDs(ppid int) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...; comm may hold spaces, so cut at ')'.
		st := string(b)
		open, closing := strings.IndexByte(st, '('), strings.LastIndexByte(st, ')')
		if open < 0 || closing < open {
			continue
		}
		comm := st[open+1 : closing]
		rest := strings.Fields(st[closing+1:])
		if len(rest) < 2 || rest[0] == "Z" {
			continue
		}
		parent, _ := strconv.Atoi(rest[1])
		if ppid != 0 && parent != ppid {
			continue
		}
		// comm is cut at 15 characters: kube-controller-manager -> kube-controller.
		if comm == "etcd" || comm == "kube-apiserver" || strings.HasPrefix(comm, "kube-controller") {
			pids = append(pids, pid)
		}
	}
	return pids
}

// CRDEstablished reports whether the API server serves a resource.
func (c *Cluster) CRDEstablished(ctx context.Context, gvr schema.GroupVersionResource) error {
	dc, err := discovery.NewDiscoveryClientForConfig(c.Config)
	if err != nil {
		return err
	}
	list, err := dc.ServerResourcesForGroupVersion(gvr.GroupVersion().String())
	if err != nil {
		return err
	}
	for _, r := range list.APIResources {
		if r.Name == gvr.Resource {
			return nil
		}
	}
	return fmt.Errorf("%s not served", gvr)
}

// TailBuffer keeps the last Max bytes written to it (4 MiB when Max is 0)
// and is safe for concurrent use: the control plane's log, a child's output.
type TailBuffer struct {
	Max int
	mu  sync.Mutex
	buf []byte
}

func (b *TailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if max := cmp.Or(b.Max, 4<<20); len(b.buf) > max {
		b.buf = append([]byte(nil), b.buf[len(b.buf)-max:]...)
	}
	return len(p), nil
}

// String is what the buffer holds, without trailing newlines.
func (b *TailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.TrimRight(string(b.buf), "\n")
}

// prefixed writes each line with "[name] " in front.
func prefixed(w io.Writer, name string) io.Writer {
	return &prefixWriter{w: w, prefix: []byte("[" + name + "] ")}
}

type prefixWriter struct {
	mu     sync.Mutex
	w      io.Writer
	prefix []byte
	mid    bool
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(b)
	var out []byte
	for len(b) > 0 {
		if !p.mid {
			out = append(out, p.prefix...)
		}
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			out = append(out, b...)
			p.mid = true
			break
		}
		out = append(out, b[:i+1]...)
		b = b[i+1:]
		p.mid = false
	}
	_, err := p.w.Write(out)
	return n, err
}

// Poll calls f every 50ms until it returns nil or timeout passes; then it
// returns f's last error.
func Poll(timeout time.Duration, f func() error) error {
	return PollContext(context.Background(), timeout, f)
}

// PollContext is Poll that also stops when ctx ends (returning its cause).
// It is wait.PollUntilContextTimeout (every 50 ms, at once first) that
// keeps the condition's last error for the message.
func PollContext(ctx context.Context, timeout time.Duration, f func() error) error {
	return pollEvery(ctx, 50*time.Millisecond, timeout, f)
}

// PollEvery is Poll at another interval.
func PollEvery(interval, timeout time.Duration, f func() error) error {
	return pollEvery(context.Background(), interval, timeout, f)
}

func pollEvery(ctx context.Context, interval, timeout time.Duration, f func() error) error {
	var last error
	err := wait.PollUntilContextTimeout(ctx, interval, timeout, true, func(context.Context) (bool, error) {
		last = f()
		return last == nil, nil
	})
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return context.Cause(ctx)
	case last != nil:
		return fmt.Errorf("after %s: %w", timeout, last)
	}
	return err
}

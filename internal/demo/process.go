package demo

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// startLocked starts cmd from a goroutine locked to its OS thread and
// waits for it there, so that Pdeathsig (which follows the thread that
// forked, not the process) fires only when this process dies. done is
// closed after Wait returned; *waitErr holds its error by then.
func startLocked(cmd *exec.Cmd, waitErr *error) (done chan struct{}, err error) {
	done = make(chan struct{})
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// Never unlocked: the thread exits with this goroutine, after the
		// child is gone.
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		*waitErr = cmd.Wait()
		close(done)
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return done, nil
}

// goTool is the go command: the one on PATH, or GOROOT's.
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(runtime.GOROOT(), "bin", "go")
}

// BuildManager runs `go build -o out ./cmd/manager` in the repository root.
// The build dies with this process (or when ctx ends).
func BuildManager(ctx context.Context, root, out string) error {
	return goBuild(ctx, root, out, "./cmd/manager")
}

func goBuild(ctx context.Context, root, out, pkg string) error {
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	cmd := exec.Command(goTool(), "build", "-o", out, pkg)
	cmd.Dir = root
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var werr error
	done, err := startLocked(cmd, &werr)
	if err != nil {
		return fmt.Errorf("go build %s: %w", pkg, err)
	}
	select {
	case <-done:
	case <-ctx.Done():
		_ = cmd.Process.Kill()
		<-done
		return fmt.Errorf("go build %s: %w", pkg, context.Cause(ctx))
	}
	if werr != nil {
		return fmt.Errorf("go build -o %s %s: %w\n%s", out, pkg, werr, buf.String())
	}
	return nil
}

// Process is the manager binary running as a child process.
type Process struct {
	// Args is the command line.
	Args []string
	// LogPath is the file its output goes to.
	LogPath string
	// ProbeAddr is its health-probe address (/healthz, /readyz).
	ProbeAddr string

	cmd      *exec.Cmd
	done     chan struct{}
	waitErr  error
	tail     *tailBuffer
	logFile  *os.File
	stopOnce sync.Once
	stopping chan struct{}
}

// ManagerOptions say how to run the manager binary.
type ManagerOptions struct {
	// Binary is the manager executable.
	Binary string
	// Kubeconfig the manager talks to the API server with.
	Kubeconfig string
	// LogPath receives its output (created; appended to).
	LogPath string
	// ExtraArgs are appended to the command line.
	ExtraArgs []string
}

// StartManager starts the manager binary against a kubeconfig with the
// metrics endpoint off and the health probes on a free loopback port, and
// waits until it answers /readyz. It gets SIGTERM when this process dies
// (Pdeathsig) and runs in its own process group, so that a terminal's
// Ctrl-C reaches only this process, which stops it in order.
func StartManager(ctx context.Context, o ManagerOptions) (*Process, error) {
	port, err := freePort()
	if err != nil {
		return nil, fmt.Errorf("finding a free port for the manager's probes: %w", err)
	}
	p := &Process{
		ProbeAddr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		LogPath:   o.LogPath,
		tail:      &tailBuffer{max: 64 << 10},
		stopping:  make(chan struct{}),
	}
	p.Args = append([]string{o.Binary,
		"--kubeconfig=" + o.Kubeconfig,
		"--metrics-bind-address=0",
		"--health-probe-bind-address=" + p.ProbeAddr,
	}, o.ExtraArgs...)
	var out io.Writer = p.tail
	if o.LogPath != "" {
		f, err := os.OpenFile(o.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nil, err
		}
		p.logFile = f
		out = io.MultiWriter(f, p.tail)
	}
	cmd := exec.Command(p.Args[0], p.Args[1:]...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+o.Kubeconfig)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM, Setpgid: true}
	p.cmd = cmd
	p.done, err = startLocked(cmd, &p.waitErr)
	if err != nil {
		p.closeLog()
		return nil, fmt.Errorf("starting the manager %s: %w", o.Binary, err)
	}
	if err := p.waitReady(ctx, 60*time.Second); err != nil {
		p.Stop()
		return nil, err
	}
	return p, nil
}

// Pid is the manager's process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Done is closed when the manager has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited describes how the manager exited, with the end of its log.
func (p *Process) Exited() error {
	select {
	case <-p.done:
	default:
		return nil
	}
	return fmt.Errorf("the manager (pid %d) exited: %v; its last output:\n%s", p.Pid(), p.waitErr, p.Logs())
}

// Logs is the end of the manager's output.
func (p *Process) Logs() string { return p.tail.String() }

// Stop sends SIGTERM, waits up to 20s, then SIGKILL. Safe to call twice.
func (p *Process) Stop() {
	p.stopOnce.Do(func() {
		close(p.stopping)
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(20 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		p.closeLog()
	})
}

// Kill sends SIGKILL (a crash: no graceful shutdown, no lease release) and
// waits until the process is gone. Safe after Stop or another Kill.
func (p *Process) Kill() {
	p.stopOnce.Do(func() {
		close(p.stopping)
		_ = p.cmd.Process.Kill()
		<-p.done
		p.closeLog()
	})
}

// Stopped reports whether Stop was called (an exit then is expected).
func (p *Process) Stopped() bool {
	select {
	case <-p.stopping:
		return true
	default:
		return false
	}
}

func (p *Process) closeLog() {
	if p.logFile != nil {
		_ = p.logFile.Close()
	}
}

func (p *Process) waitReady(ctx context.Context, timeout time.Duration) error {
	url := "http://" + p.ProbeAddr + "/readyz"
	hc := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(timeout)
	var last error
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := hc.Do(req)
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		last = err
		select {
		case <-p.done:
			return p.Exited()
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the manager did not become ready within %s: %v; its output:\n%s", timeout, last, p.Logs())
		}
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if len(b.buf) > b.max {
		b.buf = append([]byte(nil), b.buf[len(b.buf)-b.max:]...)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.TrimRight(string(b.buf), "\n")
}

package testcluster

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
	"strings"
	"time"
)

// BuildManager runs `go build -o out ./cmd/manager` in the repository root
// root, as a Child: the build dies with this process, or when ctx ends.
func BuildManager(ctx context.Context, root, out string) error {
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	gotool, err := exec.LookPath("go")
	if err != nil {
		gotool = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	cmd := exec.Command(gotool, "build", "-o", out, "./cmd/manager")
	cmd.Dir = root
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	build, err := StartChild(cmd)
	if err != nil {
		return fmt.Errorf("go build ./cmd/manager: %w", err)
	}
	select {
	case <-build.Done():
	case <-ctx.Done():
		build.Kill()
		return fmt.Errorf("go build ./cmd/manager: %w", context.Cause(ctx))
	}
	if err := build.Err(); err != nil {
		return fmt.Errorf("go build -o %s ./cmd/manager: %w\n%s", out, err, buf.String())
	}
	return nil
}

// BuildManagerInto builds the repository's manager binary into dir (for a
// test package's TestMain, within 5 minutes) and returns its path.
func BuildManagerInto(dir string) (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "manager")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	return bin, BuildManager(ctx, root, bin)
}

// ManagerOptions say how to run the manager binary.
type ManagerOptions struct {
	// Binary is the manager executable.
	Binary string
	// Kubeconfig the manager talks to the API server with.
	Kubeconfig string
	// LogPath receives its output (created; appended to); empty keeps
	// only the end of it in memory (Logs).
	LogPath string
	// ExtraArgs are appended to the command line.
	ExtraArgs []string
}

// ManagerProcess is the manager binary running as a Child: it cannot
// outlive this process.
type ManagerProcess struct {
	*Child
	// Args is the command line.
	Args []string
	// LogPath is the file its output goes to.
	LogPath string
	// ProbeAddr is its health-probe address (/healthz, /readyz).
	ProbeAddr string

	tail    TailBuffer
	logFile *os.File
}

// StartManager starts the manager binary against a kubeconfig with the
// metrics endpoint off and the health probes on a free loopback port (both
// can be overridden by ExtraArgs, the last flag wins), and waits until it
// answers /readyz.
func StartManager(ctx context.Context, o ManagerOptions) (*ManagerProcess, error) {
	addr, err := FreeAddr()
	if err != nil {
		return nil, fmt.Errorf("finding a free port for the manager's probes: %w", err)
	}
	p := &ManagerProcess{ProbeAddr: addr, LogPath: o.LogPath, tail: TailBuffer{Max: 64 << 10}}
	p.Args = append([]string{o.Binary, "--kubeconfig=" + o.Kubeconfig, "--metrics-bind-address=0",
		"--health-probe-bind-address=" + p.ProbeAddr}, o.ExtraArgs...)
	var out io.Writer = &p.tail
	if o.LogPath != "" {
		if p.logFile, err = os.OpenFile(o.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err != nil {
			return nil, err
		}
		out = io.MultiWriter(p.logFile, &p.tail)
	}
	cmd := exec.Command(p.Args[0], p.Args[1:]...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+o.Kubeconfig)
	cmd.Stdout, cmd.Stderr = out, out
	if p.Child, err = StartChild(cmd); err != nil {
		p.closeLog()
		return nil, fmt.Errorf("starting the manager %s: %w", o.Binary, err)
	}
	if err := p.waitReady(ctx, 60*time.Second); err != nil {
		p.Stop()
		return nil, err
	}
	return p, nil
}

// Exited describes how the manager exited, with the end of its output (nil
// while it runs).
func (p *ManagerProcess) Exited() error {
	select {
	case <-p.Done():
		return fmt.Errorf("the manager (pid %d) exited: %v; its last output:\n%s", p.Pid(), p.Err(), p.Logs())
	default:
		return nil
	}
}

// Logs is the end of the manager's output.
func (p *ManagerProcess) Logs() string { return p.tail.String() }

// Stop sends SIGTERM, waits up to 20s for the graceful shutdown (lease
// released), then SIGKILL. Safe to call twice.
func (p *ManagerProcess) Stop() {
	p.Child.Stop(20 * time.Second)
	p.closeLog()
}

// Kill sends SIGKILL (a crash: no graceful shutdown, no lease release) and
// waits until the process is gone.
func (p *ManagerProcess) Kill() {
	p.Child.Kill()
	p.closeLog()
}

func (p *ManagerProcess) closeLog() {
	if p.logFile != nil {
		_ = p.logFile.Close()
	}
}

func (p *ManagerProcess) waitReady(ctx context.Context, timeout time.Duration) error {
	url := "http://" + p.ProbeAddr + "/readyz"
	hc := &http.Client{Timeout: 2 * time.Second}
	// An exit ends the wait at once, with its cause.
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go func() {
		select {
		case <-p.Done():
			cancel(p.Exited())
		case <-ctx.Done():
		}
	}()
	err := PollContext(ctx, timeout, func() error {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s%s", url, resp.Status, failedChecks(ctx, hc, url, string(body)))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("the manager did not become ready: %w; its output:\n%s", err, p.Logs())
	}
	return nil
}

// failedChecks asks each check an aggregated /readyz answer marks failed
// ("[-]caches failed: reason withheld") for its reason, which only the
// check's own path gives (/readyz/caches).
func failedChecks(ctx context.Context, hc *http.Client, url, body string) string {
	var b strings.Builder
	for _, line := range strings.Split(body, "\n") {
		name, ok := strings.CutPrefix(line, "[-]")
		if !ok {
			continue
		}
		name, _, _ = strings.Cut(name, " ")
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url+"/"+name, nil)
		resp, err := hc.Do(req)
		if err != nil {
			fmt.Fprintf(&b, "; %s: %v", name, err)
			continue
		}
		reason, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		fmt.Fprintf(&b, "; %s: %s", name, strings.TrimSpace(string(reason)))
	}
	return b.String()
}

// FreeAddr is a loopback address whose port is free now: for the
// manager's probes, metrics or profiling endpoint.
func FreeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

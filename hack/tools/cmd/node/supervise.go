package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// supervise runs inside the node's network namespace and private mount
// namespace (started by up through nsenter): it starts the daemons
// as its children, reports the node Ready, and on SIGTERM stops the Pods,
// then the daemons, in reverse order. The control-plane binaries stop by
// themselves if it dies (hack/k8s-bins.sh builds them with
// PR_SET_PDEATHSIG); node down kills whatever is left.
func supervise(o options) error {
	log.SetFlags(log.Ltime | log.Lmicroseconds)
	start := time.Now()
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM, syscall.SIGINT)

	// Mounts made here (overlays, volumes, Pod netns files, the settings
	// below) stay in this mount namespace, which up created for the node,
	// and go with it.
	if err := syscall.Mount("", "/", "", syscall.MS_SLAVE|syscall.MS_REC, ""); err != nil {
		return fmt.Errorf("make / a slave mount: %w", err)
	}
	// Paths the kubelet, containerd's shims and the CNI library use
	// whatever they are configured with: a directory of the state bound
	// over each, so that nothing is written there (down removes the empty
	// directories it had to create as mount points).
	for _, p := range fixedPaths {
		src := filepath.Join(o.dir, "host", strings.ReplaceAll(strings.TrimPrefix(p, "/"), "/", "_"))
		if err := os.MkdirAll(src, 0o755); err != nil {
			return err
		}
		if err := os.MkdirAll(p, 0o755); err != nil {
			return err
		}
		if err := syscall.Mount(src, p, "", syscall.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind %s over %s: %w", src, p, err)
		}
	}
	// The kubelet's kernel settings, faked in this mount namespace only.
	for path := range kubeletSysctls {
		src := filepath.Join(o.dir, "sysctl", strings.ReplaceAll(path, "/", "."))
		if _, err := os.Stat("/proc/sys/" + path); err != nil {
			continue // not in this kernel: the kubelet cannot write it either
		}
		if err := syscall.Mount(src, "/proc/sys/"+path, "", syscall.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind %s over /proc/sys/%s: %w", src, path, err)
		}
	}
	// Forwarding between the bridge and the node address, in this
	// namespace only (net.ipv4.ip_forward is per namespace).
	if err := os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1"), 0o644); err != nil {
		return err
	}

	// The kubelet's cgroup root must exist in every hierarchy (node down
	// removes it); a v1 cpuset needs its parent's CPUs and memory nodes.
	for _, root := range cgroupRoots() {
		dir := filepath.Join(root, cgroupName)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("cgroup %s: %w", dir, err)
		}
		for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
			if b, err := os.ReadFile(filepath.Join(root, f)); err == nil {
				_ = os.WriteFile(filepath.Join(dir, f), b, 0o644)
			}
		}
	}

	s := &supervisor{o: o, exited: make(chan string, 16)}
	defer s.stopAll()
	ready := readyReport{}
	for _, d := range daemons(o) {
		if err := s.start(d); err != nil {
			return err
		}
		var err error
		switch d.name {
		case "kube-apiserver":
			err = s.waitFor(term, "the API server to be ready", 2*time.Minute, s.apiReady)
			ready.APIServerReady = time.Since(start).Seconds()
			log.Printf("API server ready after %.1fs", ready.APIServerReady)
		case "containerd":
			err = s.waitFor(term, "containerd's socket", time.Minute, func() error {
				_, err := os.Stat(containerdSock(o.dir))
				return err
			})
			if err == nil {
				err = load(o, []string{o.pause})
			}
		}
		if err != nil {
			return err
		}
	}
	if err := s.waitFor(term, "the node to be Ready", 4*time.Minute, s.nodeReady); err != nil {
		return err
	}
	ready.NodeReady = time.Since(start).Seconds()
	log.Printf("node Ready after %.1fs", ready.NodeReady)
	if err := writeJSON(filepath.Join(o.dir, "ready.json"), ready); err != nil {
		return err
	}
	for {
		select {
		case sig := <-term:
			log.Printf("%s: stopping the node", sig)
			return nil
		case name := <-s.exited:
			// Keep going: what the tests see of it is the finding.
			log.Printf("%s exited (log: %s/logs/%s.log)", name, o.dir, name)
		}
	}
}

// fixedPaths are written to by the kubelet (device plugins, container log
// links), containerd's shims (their sockets) and the CNI library (its
// result cache) whatever their configuration says.
var fixedPaths = []string{"/var/lib/kubelet", "/var/log/containers", "/run/containerd", "/var/lib/cni"}

type supervisor struct {
	o       options
	running []*proc
	exited  chan string
	client  *http.Client
}

type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
}

func (s *supervisor) start(d daemon) error {
	f, err := os.Create(filepath.Join(s.o.dir, "logs", d.name+".log"))
	if err != nil {
		return err
	}
	cmd := exec.Command(d.args[0], d.args[1:]...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(), d.env...)
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("start %s: %w", d.name, err)
	}
	log.Printf("started %s (pid %d)", d.name, cmd.Process.Pid)
	p := &proc{name: d.name, cmd: cmd, done: make(chan struct{})}
	go func() {
		err := cmd.Wait()
		f.Close()
		close(p.done)
		log.Printf("%s: %v", d.name, err)
		s.exited <- d.name
	}()
	s.running = append(s.running, p)
	return nil
}

// waitFor polls check until it passes, a signal arrives, a daemon exits
// or the time is up.
func (s *supervisor) waitFor(term chan os.Signal, what string, limit time.Duration, check func() error) error {
	deadline := time.Now().Add(limit)
	var last error
	for time.Now().Before(deadline) {
		if last = check(); last == nil {
			return nil
		}
		select {
		case sig := <-term:
			return fmt.Errorf("%s while waiting for %s", sig, what)
		case name := <-s.exited:
			return fmt.Errorf("%s exited while waiting for %s (log: %s/logs/%s.log)", name, what, s.o.dir, name)
		case <-time.After(250 * time.Millisecond):
		}
	}
	return fmt.Errorf("waited %s for %s: %v", limit, what, last)
}

func (s *supervisor) http() *http.Client {
	if s.client == nil {
		pool := x509.NewCertPool()
		ca, _ := os.ReadFile(filepath.Join(s.o.dir, "pki", "ca.crt"))
		pool.AppendCertsFromPEM(ca)
		cert, err := tls.LoadX509KeyPair(filepath.Join(s.o.dir, "pki", "admin.crt"), filepath.Join(s.o.dir, "pki", "admin.key"))
		if err != nil {
			log.Printf("admin certificate: %v", err)
		}
		s.client = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}}}}
	}
	return s.client
}

func (s *supervisor) get(path string, into any) error {
	resp, err := s.http().Get(fmt.Sprintf("https://%s:%d%s", nodeIP, apiPort, path))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	if into == nil {
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(into)
}

func (s *supervisor) apiReady() error { return s.get("/readyz", nil) }

func (s *supervisor) nodeReady() error {
	var node struct {
		Status struct {
			Conditions []struct{ Type, Status, Message string }
		}
	}
	if err := s.get("/api/v1/nodes/"+nodeName, &node); err != nil {
		return err
	}
	for _, c := range node.Status.Conditions {
		if c.Type == "Ready" {
			if c.Status == "True" {
				return nil
			}
			return fmt.Errorf("node not Ready: %s", c.Message)
		}
	}
	return fmt.Errorf("node has no Ready condition yet")
}

// stopAll stops the kubelet first (so that it restarts nothing), then
// every container process (found by the kubelet's cgroups), then
// containerd and its shims, then the control plane, newest first.
func (s *supervisor) stopAll() {
	stop := func(p *proc) {
		select {
		case <-p.done:
			return
		default:
		}
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			log.Printf("%s did not stop on SIGTERM within 10s: SIGKILL", p.name)
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
	byName := map[string]*proc{}
	for _, p := range s.running {
		byName[p.name] = p
	}
	if p := byName["kubelet"]; p != nil {
		stop(p)
	}
	killCgroupProcs(20 * time.Second)
	if p := byName["containerd"]; p != nil {
		stop(p)
	}
	killNetnsProcs(selfNetns(), map[int]bool{os.Getpid(): true}, s.pids(), 10*time.Second)
	for i := len(s.running) - 1; i >= 0; i-- {
		stop(s.running[i])
	}
	log.Printf("node stopped")
}

// pids of the daemons still running (they stop in order, not as strays).
func (s *supervisor) pids() map[int]bool {
	m := map[int]bool{}
	for _, p := range s.running {
		select {
		case <-p.done:
		default:
			m[p.cmd.Process.Pid] = true
		}
	}
	return m
}

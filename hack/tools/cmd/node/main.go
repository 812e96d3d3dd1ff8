// Command node runs a real single Kubernetes node on this machine for the
// project's install tests (make test-node): the pinned control plane
// (etcd, kube-apiserver, kube-controller-manager, kube-scheduler), Debian's
// containerd and runc with the bridge CNI plugin, kubelet and kube-proxy.
//
//	node up      [--dir DIR]              start it; prints how long it took
//	node load    FILE.tar...              import OCI image tarballs into its containerd
//	node exec    -- COMMAND [ARG...]      run a command where the node's network is (KUBECONFIG set)
//	node down                             stop it and check that nothing is left behind
//
// Everything runs inside a network namespace of its own (entitlement-node)
// and a mount namespace of its own: the node's
// address, the Pod bridge, the Pods' veths, kube-proxy's iptables rules and
// every listening port live there, so the machine's own network (its
// addresses, routes, firewall and the package registries it reaches) is
// never touched, and Pods have no route off the machine. Pod netns files,
// overlay mounts and volume mounts live in that mount namespace and go with
// it. The only host-wide state is the kubelet's cgroups (under one
// entitlement-node directory per hierarchy), which `down` removes. `down`
// compares the machine with a snapshot `up` took (processes, mounts,
// network namespaces, links, iptables rules, cgroups, sysctls, well-known
// runtime directories) and fails when anything differs.
//
// Needs root and Linux (make test-node skips otherwise), containerd >= 1.6,
// runc, containernetworking-plugins and iptables (make installs Debian's),
// and the binaries of hack/k8s-bins.sh.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// The node's fixed names and addresses. The node address sits on the
// namespace's loopback (this kernel may have no dummy interface); none of
// these ranges is routed outside the namespace.
const (
	netnsName   = "entitlement-node"
	nodeName    = "entitlement-node"
	nodeIP      = "10.250.0.1"
	podCIDR     = "10.244.0.0/24"
	clusterCIDR = "10.244.0.0/16"
	serviceCIDR = "10.96.0.0/16"
	kubeSvcIP   = "10.96.0.1"
	apiPort     = 6443
	cgroupName  = "entitlement-node"
	pauseRef    = "localhost/entitlement-node/pause:1"
)

type options struct {
	dir     string // state: PKI, configs, data, logs, sockets
	k8s     string // etcd, kube-apiserver, kube-controller-manager
	bins    string // kubelet, kube-scheduler, kube-proxy, kubectl
	pause   string // the sandbox image tarball
	timeout time.Duration
}

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	cmd, args := os.Args[1], os.Args[2:]
	fs := flag.NewFlagSet(cmd, flag.ExitOnError)
	o := options{}
	fs.StringVar(&o.dir, "dir", envOr("NODE_DIR", "/tmp/entitlement-node"), "state directory (NODE_DIR)")
	fs.StringVar(&o.k8s, "k8s", envOr("KUBEBUILDER_ASSETS", "bin/k8s"), "directory of etcd, kube-apiserver, kube-controller-manager (KUBEBUILDER_ASSETS)")
	fs.StringVar(&o.bins, "bins", envOr("NODE_BINS", "bin/node"), "directory of kubelet, kube-scheduler, kube-proxy, kubectl (NODE_BINS)")
	fs.StringVar(&o.pause, "pause", envOr("NODE_PAUSE", "bin/node/pause.tar"), "the Pod sandbox image tarball (NODE_PAUSE)")
	fs.DurationVar(&o.timeout, "timeout", 5*time.Minute, "how long up waits for the node to be Ready")
	_ = fs.Parse(args)
	for _, p := range []*string{&o.dir, &o.k8s, &o.bins, &o.pause} {
		if a, err := filepath.Abs(*p); err == nil {
			*p = a
		}
	}
	var err error
	switch cmd {
	case "up":
		err = up(o)
	case "down":
		err = down(o)
	case "exec":
		err = execIn(o, fs.Args())
	case "load":
		err = load(o, fs.Args())
	case "supervise":
		err = supervise(o)
	case "check":
		err = preflight(o)
	default:
		usage()
	}
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) && cmd == "exec" {
			os.Exit(ee.ExitCode())
		}
		fmt.Fprintln(os.Stderr, "node:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: node up|load|exec|down [--dir DIR] ...")
	os.Exit(2)
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// errSkip says the node cannot run on this machine at all (not Linux, not
// root): make test-node prints it and skips instead of failing.
var errSkip = errors.New("skip")

// preflight checks what the node needs and says what is missing.
func preflight(o options) error {
	if runtime.GOOS != "linux" {
		return fmt.Errorf("%w: the node harness runs on Linux only (this is %s)", errSkip, runtime.GOOS)
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("%w: the node harness needs root (network namespace, mounts, cgroups, containerd)", errSkip)
	}
	var missing []string
	for _, b := range []string{"ip", "nsenter", "containerd", "containerd-shim-runc-v2", "runc", "ctr", "iptables", "mount"} {
		if _, err := exec.LookPath(b); err != nil {
			missing = append(missing, b)
		}
	}
	for _, f := range []string{
		filepath.Join(o.k8s, "etcd"), filepath.Join(o.k8s, "kube-apiserver"), filepath.Join(o.k8s, "kube-controller-manager"),
		filepath.Join(o.bins, "kubelet"), filepath.Join(o.bins, "kube-scheduler"), filepath.Join(o.bins, "kube-proxy"), filepath.Join(o.bins, "kubectl"),
		o.pause, cniBinDir() + "/bridge", cniBinDir() + "/host-local", cniBinDir() + "/loopback",
	} {
		if _, err := os.Stat(f); err != nil {
			missing = append(missing, f)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing: %s (make node-deps installs Debian's containerd, runc, containernetworking-plugins and iptables; make node-bins builds the rest)", strings.Join(missing, ", "))
	}
	return nil
}

// cniBinDir is where Debian's containernetworking-plugins (or an upstream
// install) put the plugins.
func cniBinDir() string {
	for _, d := range []string{"/usr/lib/cni", "/opt/cni/bin"} {
		if _, err := os.Stat(filepath.Join(d, "bridge")); err == nil {
			return d
		}
	}
	return "/usr/lib/cni"
}

// up starts the supervisor inside the node's network namespace and waits
// until it reports the node Ready.
func up(o options) error {
	if err := preflight(o); err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join("/run/netns", netnsName)); err == nil {
		return fmt.Errorf("network namespace %s exists: the node is up (or was not taken down); run `node down` first", netnsName)
	}
	if _, err := os.Stat(o.dir); err == nil {
		return fmt.Errorf("%s exists: the node is up (or was not taken down); run `node down` first", o.dir)
	}
	start := time.Now()
	snap, err := takeSnapshot(o)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(o.dir, "logs"), 0o755); err != nil {
		return err
	}
	if err := writeJSON(filepath.Join(o.dir, "host-before.json"), snap); err != nil {
		return err
	}
	if err := writePKI(o.dir); err != nil {
		return fmt.Errorf("certificates: %w", err)
	}
	if err := writeConfigs(o); err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	for _, args := range [][]string{
		{"netns", "add", netnsName},
		{"-n", netnsName, "link", "set", "lo", "up"},
		{"-n", netnsName, "addr", "add", nodeIP + "/32", "dev", "lo"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	logf, err := os.Create(filepath.Join(o.dir, "logs", "supervisor.log"))
	if err != nil {
		return err
	}
	defer logf.Close()
	// One mount namespace for the whole node, so that every daemon shares
	// it (the kubelet's volume mounts must be what runc sees), in the
	// node's network namespace. Not `ip netns exec`: it remounts /sys,
	// which hides the cgroup hierarchies the kubelet needs.
	sup := exec.Command("nsenter", "--net=/run/netns/"+netnsName, "--", self, "supervise",
		"--dir", o.dir, "--k8s", o.k8s, "--bins", o.bins, "--pause", o.pause)
	sup.Stdout, sup.Stderr = logf, logf
	sup.SysProcAttr = &syscall.SysProcAttr{
		Setsid:     true, // outlives this command and its terminal
		Cloneflags: syscall.CLONE_NEWNS,
	}
	if err := sup.Start(); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(o.dir, "supervisor.pid"), []byte(fmt.Sprint(sup.Process.Pid)), 0o644); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- sup.Wait() }()
	deadline := time.After(o.timeout)
	for {
		var r readyReport
		if b, err := os.ReadFile(filepath.Join(o.dir, "ready.json")); err == nil && json.Unmarshal(b, &r) == nil {
			fmt.Printf("node: up in %.1fs (API server ready after %.1fs, node Ready after %.1fs); kubeconfig %s\n",
				time.Since(start).Seconds(), r.APIServerReady, r.NodeReady, filepath.Join(o.dir, "admin.kubeconfig"))
			fmt.Printf("node: use it with `%s exec -- kubectl get nodes` (its network is a namespace of its own)\n", self)
			return nil
		}
		select {
		case err := <-exited:
			tail(filepath.Join(o.dir, "logs", "supervisor.log"), 40)
			return fmt.Errorf("the node's supervisor exited while starting (%v); logs in %s/logs; run `node down`", err, o.dir)
		case <-deadline:
			tail(filepath.Join(o.dir, "logs", "supervisor.log"), 40)
			return fmt.Errorf("the node was not Ready within %s; logs in %s/logs; run `node down`", o.timeout, o.dir)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

type readyReport struct {
	APIServerReady float64 `json:"apiServerReadySeconds"`
	NodeReady      float64 `json:"nodeReadySeconds"`
}

// execIn runs a command in the node's network namespace with its
// kubeconfig, bin/node and the command's own directory first on PATH.
func execIn(o options, args []string) error {
	if len(args) == 0 {
		return errors.New("exec: no command")
	}
	if _, err := os.Stat(filepath.Join("/run/netns", netnsName)); err != nil {
		return errors.New("the node is not up (node up)")
	}
	cmd := exec.Command("ip", append([]string{"netns", "exec", netnsName}, args...)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(),
		"KUBECONFIG="+filepath.Join(o.dir, "admin.kubeconfig"),
		"PATH="+o.bins+":"+os.Getenv("PATH"),
		"NODE_DIR="+o.dir)
	return cmd.Run()
}

// load imports image tarballs (OCI layouts or docker archives) into the
// node's containerd, where the kubelet finds them: nothing is pulled.
func load(o options, files []string) error {
	for _, f := range files {
		out, err := exec.Command("ctr", "--address", containerdSock(o.dir), "-n", "k8s.io", "images", "import", f).CombinedOutput()
		if err != nil {
			return fmt.Errorf("import %s: %v: %s", f, err, out)
		}
		fmt.Printf("node: loaded %s\n%s", f, out)
	}
	return nil
}

func containerdSock(dir string) string { return filepath.Join(dir, "run", "containerd.sock") }

func writeJSON(file string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(file, b, 0o644)
}

func tail(file string, n int) {
	b, err := os.ReadFile(file)
	if err != nil {
		return
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	fmt.Fprintln(os.Stderr, strings.Join(lines, "\n"))
}

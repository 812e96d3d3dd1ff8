package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// down stops the node, removes what it made, and compares the machine with
// the snapshot up took: anything left behind is an error.
func down(o options) error {
	if err := preflight(o); err != nil && errors.Is(err, errSkip) {
		return err
	}
	var before *snapshot
	if b, err := os.ReadFile(filepath.Join(o.dir, "host-before.json")); err == nil {
		before = &snapshot{}
		if err := json.Unmarshal(b, before); err != nil {
			return err
		}
	}
	start := time.Now()
	// The supervisor stops Pods, containerd and the daemons in order.
	if b, err := os.ReadFile(filepath.Join(o.dir, "supervisor.pid")); err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && alive(pid) {
			_ = syscall.Kill(pid, syscall.SIGTERM)
			deadline := time.Now().Add(90 * time.Second)
			for alive(pid) && time.Now().Before(deadline) {
				time.Sleep(100 * time.Millisecond)
			}
			if alive(pid) {
				fmt.Fprintf(os.Stderr, "node: supervisor %d still running after 90s: killing what is left\n", pid)
			}
		}
	}
	// Whatever is left (a supervisor that died, a shim that outlived it).
	killCgroupProcs(20 * time.Second)
	if ino := netnsInode(filepath.Join("/run/netns", netnsName)); ino != "" {
		killNetnsProcs(ino, nil, nil, 20*time.Second)
	}
	var errs []error
	if err := removeCgroups(); err != nil {
		errs = append(errs, err)
	}
	if _, err := os.Stat(filepath.Join("/run/netns", netnsName)); err == nil {
		if out, err := exec.Command("ip", "netns", "delete", netnsName).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("ip netns delete %s: %v: %s", netnsName, err, out))
		}
	}
	if before != nil {
		if err := restoreNetnsDir(before); err != nil {
			errs = append(errs, err)
		}
		for _, p := range fixedPaths {
			if !before.Paths[p] {
				_ = os.Remove(p) // the mount point supervise made; the diff reports it if not empty
			}
		}
	}
	if err := os.RemoveAll(o.dir); err != nil {
		errs = append(errs, fmt.Errorf("remove %s: %w", o.dir, err))
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	fmt.Printf("node: down in %.1fs\n", time.Since(start).Seconds())
	if before == nil {
		fmt.Println("node: no snapshot from node up (was it up?): nothing to compare")
		return nil
	}
	after, err := takeSnapshot(o)
	if err != nil {
		return err
	}
	if diff := before.diff(after, o); len(diff) > 0 {
		return fmt.Errorf("left behind on this machine:\n  %s", strings.Join(diff, "\n  "))
	}
	fmt.Println("node: nothing left behind (processes, mounts, network namespaces, links, iptables rules, cgroups, sysctls, runtime directories as before node up)")
	return nil
}

// restoreNetnsDir undoes what the first `ip netns add` on a machine does
// to /run/netns (a shared bind mount of itself), when the node made it and
// no other namespace is there now.
func restoreNetnsDir(before *snapshot) error {
	ents, err := os.ReadDir("/run/netns")
	if err != nil || len(ents) > 0 {
		return nil
	}
	if !slices.Contains(before.Mounts, "/run/netns") {
		if err := syscall.Unmount("/run/netns", syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) {
			return fmt.Errorf("unmount /run/netns: %w", err)
		}
	}
	if !before.Paths["/run/netns"] {
		return os.Remove("/run/netns")
	}
	return nil
}

func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	// A zombie is dead for our purposes.
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	return len(f) > 0 && f[0] != "Z"
}

// netnsInode is the inode of a network namespace file ("" if none).
func netnsInode(file string) string {
	var st syscall.Stat_t
	if syscall.Stat(file, &st) != nil {
		return ""
	}
	return strconv.FormatUint(st.Ino, 10)
}

func selfNetns() string {
	l, _ := os.Readlink("/proc/self/ns/net")
	return strings.TrimSuffix(strings.TrimPrefix(l, "net:["), "]")
}

// pidsWhere lists the live processes for which match is true.
func pidsWhere(match func(pid int) bool) []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() || !alive(pid) {
			continue
		}
		if match(pid) {
			out = append(out, pid)
		}
	}
	return out
}

// killNetnsProcs kills every process in the network namespace ino except
// those in keep and skip, until none is left or the time is up.
func killNetnsProcs(ino string, keep, skip map[int]bool, limit time.Duration) {
	if ino == "" {
		return
	}
	want := "net:[" + ino + "]"
	killUntil(limit, func() []int {
		return pidsWhere(func(pid int) bool {
			l, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", pid))
			return l == want && !keep[pid] && !skip[pid]
		})
	})
}

// killCgroupProcs kills every process in the node's cgroups (the Pods').
func killCgroupProcs(limit time.Duration) {
	killUntil(limit, func() []int {
		var pids []int
		for _, root := range cgroupRoots() {
			_ = filepath.WalkDir(filepath.Join(root, cgroupName), func(p string, d os.DirEntry, err error) error {
				if err != nil || !d.IsDir() {
					return nil
				}
				b, _ := os.ReadFile(filepath.Join(p, "cgroup.procs"))
				for _, f := range strings.Fields(string(b)) {
					if pid, err := strconv.Atoi(f); err == nil && pid != os.Getpid() && alive(pid) {
						pids = append(pids, pid)
					}
				}
				return nil
			})
		}
		return pids
	})
}

func killUntil(limit time.Duration, list func() []int) {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		pids := list()
		if len(pids) == 0 {
			return
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// cgroupRoots are the mounted cgroup hierarchies (v1 controllers, the v2
// or hybrid unified one).
func cgroupRoots() []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var roots []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		for i, x := range fields {
			if x == "-" && i+1 < len(fields) && (fields[i+1] == "cgroup" || fields[i+1] == "cgroup2") {
				roots = append(roots, fields[4])
			}
		}
	}
	return roots
}

// removeCgroups removes the node's cgroup directories, deepest first.
func removeCgroups() error {
	var errs []error
	for _, root := range cgroupRoots() {
		top := filepath.Join(root, cgroupName)
		var dirs []string
		_ = filepath.WalkDir(top, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
		for _, d := range dirs {
			var err error
			for try := 0; try < 50; try++ { // a cgroup empties a moment after its last process dies
				if err = syscall.Rmdir(d); err == nil || errors.Is(err, syscall.ENOENT) {
					err = nil
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("rmdir %s: %w", d, err))
			}
		}
	}
	return errors.Join(errs...)
}

// snapshot is what the node could leave behind on the machine.
type snapshot struct {
	Processes []string          `json:"processes"` // command lines naming the node's state or binaries
	Mounts    []string          `json:"mounts"`    // mount points of this mount namespace
	Netns     []string          `json:"netns"`
	Links     []string          `json:"links"`
	Iptables  map[string]string `json:"iptables"` // iptables-save and ip6tables-save, rules only
	Cgroups   []string          `json:"cgroups"`
	Sysctls   map[string]string `json:"sysctls"`
	Paths     map[string]bool   `json:"paths"` // runtime directories a node could write to
}

func takeSnapshot(o options) (*snapshot, error) {
	s := &snapshot{Iptables: map[string]string{}, Sysctls: map[string]string{}, Paths: map[string]bool{}}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil || e.Name() == strconv.Itoa(os.Getpid()) {
			continue
		}
		b, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		cmd := strings.ReplaceAll(strings.TrimRight(string(b), "\x00"), "\x00", " ")
		if strings.Contains(cmd, o.dir) || strings.Contains(cmd, netnsName) || strings.Contains(cmd, "containerd-shim") {
			s.Processes = append(s.Processes, cmd)
		}
	}
	if b, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.Fields(l); len(f) > 4 {
				s.Mounts = append(s.Mounts, f[4])
			}
		}
	}
	if ents, err := os.ReadDir("/run/netns"); err == nil {
		for _, e := range ents {
			s.Netns = append(s.Netns, e.Name())
		}
	}
	if out, err := exec.Command("ip", "-o", "link", "show").Output(); err == nil {
		for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if f := strings.Fields(l); len(f) > 1 {
				s.Links = append(s.Links, strings.TrimSuffix(f[1], ":"))
			}
		}
	}
	for _, cmd := range []string{"iptables-save", "ip6tables-save"} {
		if _, err := exec.LookPath(cmd); err != nil {
			continue
		}
		out, err := exec.Command(cmd).Output()
		if err != nil {
			continue
		}
		var rules []string
		for _, l := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(l, "#") || l == "" {
				continue
			}
			if strings.HasPrefix(l, ":") { // chain: name and policy, not counters
				l = strings.Join(strings.Fields(l)[:2], " ")
			}
			rules = append(rules, l)
		}
		s.Iptables[cmd] = strings.Join(rules, "\n")
	}
	for _, root := range cgroupRoots() {
		if _, err := os.Stat(filepath.Join(root, cgroupName)); err == nil {
			s.Cgroups = append(s.Cgroups, filepath.Join(root, cgroupName))
		}
	}
	sysctls := []string{"net/ipv4/ip_forward", "net/ipv4/conf/all/route_localnet", "net/bridge/bridge-nf-call-iptables"}
	for k := range kubeletSysctls {
		sysctls = append(sysctls, k)
	}
	for _, k := range sysctls {
		if b, err := os.ReadFile("/proc/sys/" + k); err == nil {
			s.Sysctls[k] = strings.TrimSpace(string(b))
		}
	}
	for _, p := range []string{o.dir, "/var/lib/kubelet", "/var/lib/containerd", "/run/containerd", "/opt/containerd",
		"/var/lib/cni", "/etc/cni/net.d", "/var/log/pods", "/var/log/containers", "/run/netns", "/run/netns/" + netnsName, "/etc/kubernetes"} {
		_, err := os.Stat(p)
		s.Paths[p] = err == nil
	}
	for _, l := range []*[]string{&s.Processes, &s.Mounts, &s.Netns, &s.Links, &s.Cgroups} {
		sort.Strings(*l)
	}
	return s, nil
}

// diff says what after has that before had not (or lost).
func (before *snapshot) diff(after *snapshot, o options) []string {
	var out []string
	added := func(what string, b, a []string) {
		for _, x := range a {
			if !slices.Contains(b, x) {
				out = append(out, fmt.Sprintf("%s: %s", what, x))
			}
		}
	}
	added("process", before.Processes, after.Processes)
	added("mount", before.Mounts, after.Mounts)
	added("network namespace", before.Netns, after.Netns)
	added("link", before.Links, after.Links)
	added("cgroup", before.Cgroups, after.Cgroups)
	for k, v := range before.Iptables {
		if after.Iptables[k] != v {
			out = append(out, fmt.Sprintf("%s differs from before node up:\n%s", k, after.Iptables[k]))
		}
	}
	for k, v := range before.Sysctls {
		if after.Sysctls[k] != v {
			out = append(out, fmt.Sprintf("sysctl %s: %s, was %s", k, after.Sysctls[k], v))
		}
	}
	for p, was := range before.Paths {
		if after.Paths[p] != was {
			out = append(out, fmt.Sprintf("path %s: exists=%v, was %v", p, after.Paths[p], was))
		}
	}
	sort.Strings(out)
	return out
}

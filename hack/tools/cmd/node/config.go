package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// writeConfigs writes containerd's, the CNI plugin's, the kubelet's and
// kube-proxy's configuration into the state directory. Each setting that
// differs from a textbook node says why.
func writeConfigs(o options) error {
	d := o.dir
	for _, sub := range []string{"run", "containerd", "kubelet", "pod-logs", "cni/net.d", "cni/ipam", "etcd", "opt", "volume-plugins"} {
		if err := os.MkdirAll(filepath.Join(d, sub), 0o755); err != nil {
			return err
		}
	}
	files := map[string]string{
		"containerd.toml": fmt.Sprintf(`version = 2
root = %[1]q
state = %[2]q

[grpc]
  address = %[3]q

[plugins."io.containerd.internal.v1.opt"]
  path = %[4]q

[plugins."io.containerd.grpc.v1.cri"]
  # Built by node up and imported: there is no registry to pull from.
  sandbox_image = %[5]q
  # Pod netns files in the state directory, not /run/netns.
  netns_mounts_under_state_dir = true
  # Without CAP_SYS_RESOURCE (a VM like this one) every sandbox otherwise
  # fails with "can't get final child's PID from pipe".
  restrict_oom_score_adj = true
  tolerate_missing_hugetlb_controller = true
  disable_apparmor = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = %[6]q
    conf_dir = %[7]q
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        # The kubelet's cgroup driver is cgroupfs (no systemd here).
        SystemdCgroup = false
        Root = %[8]q
`, filepath.Join(d, "containerd"), filepath.Join(d, "run", "containerd"), containerdSock(d),
			filepath.Join(d, "opt"), pauseRef, cniBinDir(), filepath.Join(d, "cni", "net.d"), filepath.Join(d, "run", "runc")),

		// One bridge; the Pods' default route leads to it and no further:
		// the namespace has no route off the machine.
		"cni/net.d/10-bridge.conflist": fmt.Sprintf(`{
  "cniVersion": "1.0.0",
  "name": "entitlement-node",
  "plugins": [{
    "type": "bridge",
    "bridge": "cni0",
    "isGateway": true,
    "ipMasq": false,
    "hairpinMode": true,
    "ipam": {
      "type": "host-local",
      "dataDir": %q,
      "ranges": [[{"subnet": %q}]],
      "routes": [{"dst": "0.0.0.0/0"}]
    }
  }]
}
`, filepath.Join(d, "cni", "ipam"), podCIDR),

		// Pods resolve against the node address, where nothing answers:
		// a lookup fails at once instead of leaving the machine.
		"resolv.conf": "nameserver " + nodeIP + "\n",

		"kubelet.yaml": fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# This host is cgroup v1 with no systemd: accept it, and use cgroupfs, with
# everything under one directory per hierarchy that node down removes.
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: /%[1]s
address: %[2]s
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
tlsCertFile: %[3]s/pki/kubelet-serving.crt
tlsPrivateKeyFile: %[3]s/pki/kubelet-serving.key
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: %[3]s/pki/ca.crt}
authorization: {mode: AlwaysAllow}
containerRuntimeEndpoint: unix://%[4]s
clusterDomain: cluster.local
clusterDNS: [%[2]s]
resolvConf: %[3]s/resolv.conf
podLogsDir: %[3]s/pod-logs
volumePluginDir: %[3]s/volume-plugins
# Without CAP_SYS_RESOURCE the kubelet cannot lower its own OOM score.
oomScoreAdj: 0
failSwapOn: false
protectKernelDefaults: false
# A shared development machine's disk is not the node's to guard.
evictionHard: {memory.available: 100Mi, nodefs.available: 1%%, imagefs.available: 1%%, nodefs.inodesFree: 1%%}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
staticPodPath: ""
`, cgroupName, nodeIP, d, containerdSock(d)),

		"kube-proxy.yaml": fmt.Sprintf(`apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
hostnameOverride: %[1]s
clusterCIDR: %[2]s
clientConnection: {kubeconfig: %[3]s/proxy.kubeconfig}
# Service traffic between two Pods on the one bridge needs its replies to
# come back through the node: masquerade it.
iptables: {masqueradeAll: true}
# Leave the machine's conntrack settings (global, not per namespace) alone.
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
metricsBindAddress: 127.0.0.1:10249
healthzBindAddress: 127.0.0.1:10256
`, nodeName, clusterCIDR, d),
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(d, name), []byte(content), 0o644); err != nil {
			return err
		}
	}
	// The values the kubelet wants for the kernel settings it would
	// otherwise write machine-wide (vm.overcommit_memory, kernel.panic...):
	// the supervisor bind-mounts these over /proc/sys in the node's private
	// mount namespace, so the kubelet reads what it wants and writes nowhere.
	for path, v := range kubeletSysctls {
		f := filepath.Join(d, "sysctl", strings.ReplaceAll(path, "/", "."))
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(f, []byte(v+"\n"), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// kubeletSysctls are the kernel settings the kubelet's container manager
// sets (pkg/kubelet/cm setupKernelTunables), with the values it wants.
var kubeletSysctls = map[string]string{
	"vm/overcommit_memory":      "1",
	"vm/panic_on_oom":           "0",
	"kernel/panic":              "10",
	"kernel/panic_on_oops":      "1",
	"kernel/keys/root_maxkeys":  "1000000",
	"kernel/keys/root_maxbytes": "25000000",
}

// daemon is one process of the node, in start order.
type daemon struct {
	name string
	args []string
	env  []string
}

func daemons(o options) []daemon {
	d, pki := o.dir, filepath.Join(o.dir, "pki")
	return []daemon{
		{name: "etcd", args: []string{filepath.Join(o.k8s, "etcd"),
			"--data-dir", filepath.Join(d, "etcd"), "--listen-client-urls", "http://127.0.0.1:2379",
			"--advertise-client-urls", "http://127.0.0.1:2379", "--listen-peer-urls", "http://127.0.0.1:2380",
			"--unsafe-no-fsync", "--log-level", "warn"}},
		{name: "kube-apiserver", args: []string{filepath.Join(o.k8s, "kube-apiserver"),
			"--etcd-servers", "http://127.0.0.1:2379",
			"--advertise-address", nodeIP, "--bind-address", "0.0.0.0", "--secure-port", fmt.Sprint(apiPort),
			"--service-cluster-ip-range", serviceCIDR,
			"--client-ca-file", pki + "/ca.crt",
			"--tls-cert-file", pki + "/apiserver.crt", "--tls-private-key-file", pki + "/apiserver.key",
			"--service-account-issuer", "https://kubernetes.default.svc.cluster.local",
			"--service-account-key-file", pki + "/sa.pub", "--service-account-signing-key-file", pki + "/sa.key",
			"--authorization-mode", "Node,RBAC", "--enable-admission-plugins", "NodeRestriction",
			// As clusters do: Pod Security admission decides per namespace.
			"--allow-privileged=true",
			"--kubelet-client-certificate", pki + "/apiserver-kubelet-client.crt",
			"--kubelet-client-key", pki + "/apiserver-kubelet-client.key",
			"--kubelet-certificate-authority", pki + "/ca.crt",
			// The node's address, not its name: `kubectl logs` would otherwise dial the hostname.
			"--kubelet-preferred-address-types", "InternalIP,Hostname",
			"--cert-dir", filepath.Join(d, "apiserver-certs")}},
		{name: "kube-controller-manager", args: []string{filepath.Join(o.k8s, "kube-controller-manager"),
			"--kubeconfig", d + "/controller-manager.kubeconfig", "--leader-elect=false",
			"--use-service-account-credentials", "--service-account-private-key-file", pki + "/sa.key",
			"--root-ca-file", pki + "/ca.crt",
			// The node's podCIDR, which the bridge's range matches.
			"--allocate-node-cidrs", "--cluster-cidr", clusterCIDR, "--node-cidr-mask-size", "24",
			"--service-cluster-ip-range", serviceCIDR,
			"--bind-address", "127.0.0.1"}},
		{name: "kube-scheduler", args: []string{filepath.Join(o.bins, "kube-scheduler"),
			"--kubeconfig", d + "/scheduler.kubeconfig", "--leader-elect=false", "--bind-address", "127.0.0.1"}},
		{name: "containerd", args: []string{"containerd", "--config", d + "/containerd.toml", "--log-level", "warn"},
			// Belt and braces: an image pull finds a dead proxy at once.
			env: []string{"HTTPS_PROXY=http://127.0.0.1:9", "HTTP_PROXY=http://127.0.0.1:9", "NO_PROXY="}},
		{name: "kubelet", args: []string{filepath.Join(o.bins, "kubelet"),
			"--config", d + "/kubelet.yaml", "--kubeconfig", d + "/kubelet.kubeconfig",
			"--root-dir", d + "/kubelet", "--hostname-override", nodeName, "--node-ip", nodeIP}},
		{name: "kube-proxy", args: []string{filepath.Join(o.bins, "kube-proxy"), "--config", d + "/kube-proxy.yaml"}},
	}
}

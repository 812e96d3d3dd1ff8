package plugin

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/rest"
)

const twoClusters = `apiVersion: v1
kind: Config
clusters:
- name: a
  cluster: {server: "https://a.example:6443"}
- name: b
  cluster: {server: "https://b.example:6443"}
users:
- name: alice
  user: {token: alice-token}
- name: bob
  user: {token: bob-token}
- name: nobody
  user: {}
contexts:
- name: one
  context: {cluster: a, user: alice}
- name: two
  context: {cluster: b, user: bob}
current-context: one
`

// TestKubeconfigFlagsReachTheConfig: kubectl's kubeconfig flags are what
// the plugin connects with, read from the file and overridden as kubectl
// does.
func TestKubeconfigFlagsReachTheConfig(t *testing.T) {
	dir := t.TempDir()
	file := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	kc := file("config", twoClusters)
	ca, cert, key := file("ca.crt", "ca"), file("client.crt", "cert"), file("client.key", "key")

	// connect runs a command with args and returns the config it would
	// connect with; the request goes nowhere.
	connect := func(args ...string) *rest.Config {
		var got *rest.Config
		var out, errOut bytes.Buffer
		o := Options{WrapConfig: func(c *rest.Config) *rest.Config {
			got = rest.CopyConfig(c)
			return &rest.Config{Host: "http://127.0.0.1:1"}
		}}
		Run(context.Background(), append([]string{"history", "p", "--kubeconfig", kc}, args...), &out, &errOut, o)
		if got == nil {
			t.Fatalf("%q: no config: %s", args, errOut.String())
		}
		return got
	}

	for _, tc := range []struct {
		args  []string
		check func(*rest.Config) bool
	}{
		{nil, func(c *rest.Config) bool { return c.Host == "https://a.example:6443" && c.BearerToken == "alice-token" }},
		{[]string{"--context", "two"}, func(c *rest.Config) bool { return c.Host == "https://b.example:6443" && c.BearerToken == "bob-token" }},
		{[]string{"--cluster", "b", "--user", "bob"}, func(c *rest.Config) bool { return c.Host == "https://b.example:6443" && c.BearerToken == "bob-token" }},
		{[]string{"-s", "https://c.example", "--token", "t"}, func(c *rest.Config) bool { return c.Host == "https://c.example" && c.BearerToken == "t" }},
		{[]string{"--server", "https://c.example", "-n", "ns/default"}, func(c *rest.Config) bool { return c.Host == "https://c.example" }},
		{[]string{"--as", "u", "--as-uid", "42", "--as-group", "g1", "--as-group", "g2", "--as-user-extra", "scopes=a", "--as-user-extra", "scopes=b", "--as-user-extra", "not-a-pair"},
			func(c *rest.Config) bool {
				return reflect.DeepEqual(c.Impersonate, rest.ImpersonationConfig{UserName: "u", UID: "42", Groups: []string{"g1", "g2"}, Extra: map[string][]string{"scopes": {"a", "b"}}})
			}},
		{[]string{"--request-timeout", "7s"}, func(c *rest.Config) bool { return c.Timeout == 7*time.Second }},
		{[]string{"--insecure-skip-tls-verify", "--tls-server-name", "n.example"}, func(c *rest.Config) bool { return c.Insecure && c.ServerName == "n.example" }},
		{[]string{"--certificate-authority", ca, "--client-certificate", cert, "--client-key", key}, func(c *rest.Config) bool {
			return c.CAFile == ca && c.CertFile == cert && c.KeyFile == key && c.BearerToken == "alice-token"
		}},
		{[]string{"--proxy-url", "http://proxy.example:3128", "--disable-compression"}, func(c *rest.Config) bool {
			u, err := c.Proxy(nil)
			return err == nil && u.String() == "http://proxy.example:3128" && c.DisableCompression
		}},
		{[]string{"--user", "nobody", "--username", "basic", "--password", "secret"}, func(c *rest.Config) bool {
			return c.Username == "basic" && c.Password == "secret"
		}},
	} {
		if c := connect(tc.args...); !tc.check(c) {
			t.Errorf("%q: config %+v", tc.args, c)
		}
	}
}

// TestNoKubeconfigIsKubectlsDefault: with no kubeconfig and no flags, the
// plugin goes where kubectl goes (localhost:8080), and says so.
func TestNoKubeconfigIsKubectlsDefault(t *testing.T) {
	t.Setenv("KUBECONFIG", filepath.Join(t.TempDir(), "none"))
	t.Setenv("HOME", t.TempDir())
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	t.Setenv("KUBERNETES_MASTER", "")
	var got string
	var out, errOut bytes.Buffer
	Run(context.Background(), []string{"history", "p"}, &out, &errOut, Options{WrapConfig: func(c *rest.Config) *rest.Config {
		got = c.Host
		return &rest.Config{Host: "http://127.0.0.1:1"}
	}})
	if !strings.Contains(got, "localhost:8080") {
		t.Errorf("no kubeconfig: host %q, want kubectl's default localhost:8080 (%s)", got, errOut.String())
	}
}

// TestConfigOptionWins: Options.Config (the demo's own cluster) is what the
// plugin connects to, whatever the kubeconfig flags say.
func TestConfigOptionWins(t *testing.T) {
	var out, errOut bytes.Buffer
	code := Run(context.Background(), []string{"history", "p", "--server", "http://127.0.0.2:1", "--request-timeout", "5s"}, &out, &errOut,
		Options{Config: &rest.Config{Host: "http://127.0.0.1:1"}})
	if code != ExitError || !strings.Contains(errOut.String(), "127.0.0.1:1") {
		t.Errorf("want exit 1 from the Config's server 127.0.0.1:1, got %d %s", code, errOut.String())
	}
}

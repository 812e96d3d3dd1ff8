package main

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestServiceHost(t *testing.T) {
	env := map[string]string{"ENTITLEMENT_OPERATOR_METRICS_SERVICE_HOST": "10.96.0.7"}
	if got := serviceHost("entitlement-operator-metrics", func(k string) string { return env[k] }); got != "10.96.0.7" {
		t.Errorf("from the environment: got %q", got)
	}
	if got := serviceHost("other", func(k string) string { return env[k] }); got != "other" {
		t.Errorf("without the variable: got %q, want the DNS name", got)
	}
}

// TestProbe: the status codes and body it passes, and the token it sends.
func TestProbe(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer s3cret" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		_, _ = w.Write([]byte("entitlements_build_info 1\n"))
	}))
	defer srv.Close()
	host, port, _ := strings.Cut(strings.TrimPrefix(srv.URL, "http://"), ":")
	t.Setenv("METRICS_SERVICE_HOST", host)
	tok := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tok, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := []string{"--service", "metrics", "--port", port, "--scheme", "http"}
	for _, tc := range []struct {
		args []string
		ok   bool
	}{
		{[]string{"--expect", "200,401,403"}, true},
		{[]string{"--expect", "200"}, false},
		{[]string{"--token-file", tok, "--contains", "entitlements_build_info"}, true},
		{[]string{"--token-file", tok, "--contains", "missing_metric"}, false},
	} {
		err := run(append(append([]string{}, base...), tc.args...))
		if (err == nil) != tc.ok {
			t.Errorf("%v: err %v, want ok=%v", tc.args, err, tc.ok)
		}
	}
}

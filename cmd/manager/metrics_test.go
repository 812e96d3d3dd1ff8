package main

import (
	"crypto/tls"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"k8s.io/client-go/util/cert"
)

func tlsConfigOf(t *testing.T, f metricsFlags) *tls.Config {
	t.Helper()
	o, err := metricsOptions(f)
	if err != nil {
		t.Fatal(err)
	}
	c := &tls.Config{NextProtos: []string{"h2"}} // controller-runtime's starting point
	for _, op := range o.TLSOpts {
		op(c)
	}
	return c
}

// HTTP/2 is off unless --enable-http2 (kubebuilder's default since
// CVE-2023-44487).
func TestMetricsHTTP2OffByDefault(t *testing.T) {
	if p := tlsConfigOf(t, metricsFlags{secure: true}).NextProtos; !slices.Equal(p, []string{"http/1.1"}) {
		t.Errorf("default: ALPN %v, want only http/1.1", p)
	}
	if p := tlsConfigOf(t, metricsFlags{secure: true, enableHTTP2: true}).NextProtos; !slices.Contains(p, "h2") {
		t.Errorf("--enable-http2: ALPN %v, want h2", p)
	}
}

// --metrics-cert-path serves the certificate there; a missing or broken
// one stops the manager instead of falling back to a self-signed one.
func TestMetricsCertificateFlags(t *testing.T) {
	dir := t.TempDir()
	crt, key, err := cert.GenerateSelfSignedCertKey("metrics.example", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"cert.pem": crt, "key.pem": key} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	o, err := metricsOptions(metricsFlags{secure: true, certPath: dir, certName: "cert.pem", certKey: "key.pem"})
	if err != nil {
		t.Fatal(err)
	}
	if o.CertDir != dir || o.CertName != "cert.pem" || o.KeyName != "key.pem" || !o.SecureServing || o.FilterProvider == nil {
		t.Errorf("options %+v: want the certificate of %s, served securely with authorization", o, dir)
	}
	if _, err := metricsOptions(metricsFlags{secure: true, certPath: dir, certName: "tls.crt", certKey: "tls.key"}); err == nil {
		t.Error("a --metrics-cert-path without tls.crt/tls.key: want an error, not a self-signed certificate")
	}
	if _, err := metricsOptions(metricsFlags{secure: false, certPath: dir, certName: "cert.pem", certKey: "key.pem"}); err == nil {
		t.Error("--metrics-cert-path with --metrics-secure=false: want an error")
	}
	o, err = metricsOptions(metricsFlags{secure: false})
	if err != nil || o.SecureServing || o.FilterProvider != nil {
		t.Errorf("--metrics-secure=false: %+v, %v", o, err)
	}
}

package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// identity is a client certificate the node's components authenticate with;
// every user and group here is one Kubernetes binds by default.
type identity struct {
	file, cn string
	orgs     []string
}

var identities = []identity{
	{"admin", "node-admin", []string{"system:masters"}},
	{"controller-manager", "system:kube-controller-manager", nil},
	{"scheduler", "system:kube-scheduler", nil},
	{"proxy", "system:kube-proxy", nil},
	{"kubelet", "system:node:" + nodeName, []string{"system:nodes"}},
	{"apiserver-kubelet-client", "kube-apiserver-kubelet-client", []string{"system:masters"}},
}

// writePKI writes a CA, the API server's and the kubelet's serving
// certificates, a client certificate and kubeconfig per identity, and the
// ServiceAccount token signing key, into dir/pki.
func writePKI(dir string) error {
	pki := filepath.Join(dir, "pki")
	if err := os.MkdirAll(pki, 0o700); err != nil {
		return err
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now().Add(-time.Hour)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "entitlement-node-ca"},
		NotBefore: now, NotAfter: now.Add(7 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		return err
	}
	ca, _ := x509.ParseCertificate(caDER)
	if err := writePEM(filepath.Join(pki, "ca.crt"), "CERTIFICATE", caDER); err != nil {
		return err
	}
	serial := int64(2)
	issue := func(name, cn string, orgs []string, usage x509.ExtKeyUsage, ips []string, dns []string) error {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return err
		}
		serial++
		t := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn, Organization: orgs},
			NotBefore: now, NotAfter: now.Add(7 * 24 * time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage}, DNSNames: dns,
		}
		for _, ip := range ips {
			t.IPAddresses = append(t.IPAddresses, net.ParseIP(ip))
		}
		der, err := x509.CreateCertificate(rand.Reader, t, ca, key.Public(), caKey)
		if err != nil {
			return err
		}
		if err := writePEM(filepath.Join(pki, name+".crt"), "CERTIFICATE", der); err != nil {
			return err
		}
		return writeKey(filepath.Join(pki, name+".key"), key)
	}
	if err := issue("apiserver", "kube-apiserver", nil, x509.ExtKeyUsageServerAuth,
		[]string{nodeIP, kubeSvcIP, "127.0.0.1"},
		[]string{"kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local", "localhost"}); err != nil {
		return err
	}
	if err := issue("kubelet-serving", "system:node:"+nodeName, []string{"system:nodes"}, x509.ExtKeyUsageServerAuth,
		[]string{nodeIP}, []string{nodeName}); err != nil {
		return err
	}
	for _, id := range identities {
		if err := issue(id.file, id.cn, id.orgs, x509.ExtKeyUsageClientAuth, nil, nil); err != nil {
			return err
		}
		if err := writeKubeconfig(dir, id.file); err != nil {
			return err
		}
	}
	sa, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	if err := writeKey(filepath.Join(pki, "sa.key"), sa); err != nil {
		return err
	}
	pub, err := x509.MarshalPKIXPublicKey(&sa.PublicKey)
	if err != nil {
		return err
	}
	return writePEM(filepath.Join(pki, "sa.pub"), "PUBLIC KEY", pub)
}

func writePEM(file, typ string, der []byte) error {
	return os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600)
}

func writeKey(file string, key crypto.Signer) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	return writePEM(file, "PRIVATE KEY", der)
}

// writeKubeconfig writes dir/NAME.kubeconfig with the certificates inline,
// so that it can be copied or read from anywhere.
func writeKubeconfig(dir, name string) error {
	read := func(f string) (string, error) {
		b, err := os.ReadFile(filepath.Join(dir, "pki", f))
		return base64.StdEncoding.EncodeToString(b), err
	}
	ca, err := read("ca.crt")
	if err != nil {
		return err
	}
	crt, err := read(name + ".crt")
	if err != nil {
		return err
	}
	key, err := read(name + ".key")
	if err != nil {
		return err
	}
	kc := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: entitlement-node
  cluster:
    server: https://%s:%d
    certificate-authority-data: %s
users:
- name: %s
  user:
    client-certificate-data: %s
    client-key-data: %s
contexts:
- name: entitlement-node
  context: {cluster: entitlement-node, user: %s}
current-context: entitlement-node
`, nodeIP, apiPort, ca, name, crt, key, name)
	return os.WriteFile(filepath.Join(dir, name+".kubeconfig"), []byte(kc), 0o600)
}

// Command probe checks that an endpoint of the manager answers: the image
// the Helm chart's `helm test` runs, and what the node tests scrape the
// metrics endpoint with from inside the cluster. A static binary with no
// shell, so it runs on the restricted Pod Security Standard.
//
//	probe --service entitlement-operator-controller-manager-metrics-service --port 8443 --path /metrics --expect 200,401,403
//	probe --service ... --token-file /var/run/secrets/kubernetes.io/serviceaccount/token --expect 200 --contains entitlements_build_info
//
// The Service is found the way a Pod finds it without cluster DNS: the
// <NAME>_SERVICE_HOST variable Kubernetes sets for every Service of the
// Pod's namespace that existed when it started; else its DNS name; or
// --host.
package main

import (
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "probe:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("probe", flag.ContinueOnError)
	var (
		service, host, scheme, path, tokenFile, expect, contains string
		port                                                     int
		timeout                                                  time.Duration
	)
	fs.StringVar(&service, "service", "", "Service name (in the Pod's namespace)")
	fs.StringVar(&host, "host", "", "address to connect to instead of the Service's (e.g. its ClusterIP, from another namespace without cluster DNS)")
	fs.IntVar(&port, "port", 8443, "Service port")
	fs.StringVar(&scheme, "scheme", "https", "https or http")
	fs.StringVar(&path, "path", "/metrics", "path to GET")
	fs.StringVar(&tokenFile, "token-file", "", "send the token in this file as a bearer token (a ServiceAccount token)")
	fs.StringVar(&expect, "expect", "200", "comma-separated HTTP status codes that pass")
	fs.StringVar(&contains, "contains", "", "with a 200, the body must contain this")
	fs.DurationVar(&timeout, "timeout", 10*time.Second, "time for the whole request")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if service == "" && host == "" {
		return errors.New("--service or --host is required")
	}
	if host == "" {
		host = serviceHost(service, os.Getenv)
	}
	url := fmt.Sprintf("%s://%s%s", scheme, net.JoinHostPort(host, strconv.Itoa(port)), path)
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	if tokenFile != "" {
		tok, err := os.ReadFile(tokenFile)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	}
	// The manager's metrics certificate is self-signed: what is checked is
	// that it answers and whom it lets in, not who it is.
	client := &http.Client{Timeout: timeout, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	fmt.Printf("GET %s answered %d (%d bytes)\n", url, resp.StatusCode, len(body))
	if !slices.Contains(strings.Split(expect, ","), strconv.Itoa(resp.StatusCode)) {
		return fmt.Errorf("status %d, want one of %s", resp.StatusCode, expect)
	}
	if resp.StatusCode == http.StatusOK && contains != "" && !strings.Contains(string(body), contains) {
		return fmt.Errorf("the answer does not contain %q", contains)
	}
	return nil
}

// serviceHost is the Service's ClusterIP from the environment Kubernetes
// gives a Pod, else its name for DNS.
func serviceHost(service string, getenv func(string) string) string {
	key := strings.ToUpper(strings.ReplaceAll(service, "-", "_")) + "_SERVICE_HOST"
	if h := getenv(key); h != "" {
		return h
	}
	return service
}

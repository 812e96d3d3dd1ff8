// Package scale measures the manager binary, run with its default flags as
// a user runs it, at the month's-end scale of issue 11: a thousand partners
// granted, a contract ending under half of them while the other half fail
// over, staggered ends, the steady state, and memory under unrelated load.
// Every job is measured next to a bare client doing the minimal API work
// for the same outcome on the same control plane in the same run, so the
// ratios, not the absolute figures, are what to compare.
// The grant and the mass expiry have a second baseline, the bare client
// with the record (record_test.go): the same writes plus the Partner
// writes the clocks wait for.
//
// Run with `make bench` (SCALE_N=10000 for the large run). The figures are
// printed as a table and as JSON (SCALE_JSON, default bin/bench/scale.json),
// and written into docs/benchmarks.md between its scale markers when
// SCALE_DOCS names that file.
package scale

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/partnerops/entitlement-operator/controllers"
	"github.com/partnerops/entitlement-operator/internal/testcluster"
	"github.com/partnerops/entitlement-operator/internal/testenv"
)

var (
	cluster *testcluster.Cluster
	// k8s is the benchmark's own client: not rate-limited, so that what is
	// measured is the manager and the API server, not the load generator.
	k8s     client.Client
	watcher client.WithWatch
	bin     string
	// finalizerPolicy: config/admission-finalizer is installed.
	finalizerPolicy = true
)

func TestMain(m *testing.M) {
	flag.Parse()
	benchmarking := false
	if f := flag.Lookup("test.bench"); f != nil && f.Value.String() != "" {
		benchmarking = true
	}
	dir, err := os.MkdirTemp("", "scale-manager-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// SCALE_FINALIZER_POLICY=off installs config/default's admission
	// policies only (no config/admission-finalizer), as on Kubernetes
	// before 1.36: the operator then adds every finalizer itself.
	opts := testcluster.Options{}
	if os.Getenv("SCALE_FINALIZER_POLICY") == "off" {
		root, err := testcluster.RepoRoot()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		opts.ManifestDirs = []string{filepath.Join(root, "config", "admission")}
		finalizerPolicy = false
	}
	code := testcluster.RunTests(m, benchmarking, opts, func(c *testcluster.Cluster) error {
		cluster = c
		cfg := rest.CopyConfig(c.Config)
		cfg.QPS, cfg.Burst = -1, 0
		var err error
		if _, err = testenv.AdminClient(cfg); err != nil {
			return err
		}
		if k8s, err = client.New(cfg, client.Options{Scheme: controllers.NewScheme()}); err != nil {
			return err
		}
		if watcher, err = client.NewWithWatch(cfg, client.Options{Scheme: controllers.NewScheme()}); err != nil {
			return err
		}
		bin, err = testcluster.BuildManagerInto(dir)
		return err
	})
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// setting reads a positive integer from the environment.
func setting(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func durationSetting(name string, def time.Duration) time.Duration {
	if v, err := time.ParseDuration(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// BenchmarkScale runs every job once (b.N is ignored: each job is minutes
// of work and reports its own figures).
func BenchmarkScale(b *testing.B) {
	n := setting("SCALE_N", 1000)
	r := &report{N: n, Date: time.Now().UTC().Format(time.DateOnly)}
	for range b.N {
		s := newScaleRun(b, n)
		s.grant(r)
		s.massExpiry(r)
		// SCALE_SKIP lists jobs to leave out (steady,staggered,memory, and
		// record: the bare client with the record, in grant), for the
		// large runs.
		skip := os.Getenv("SCALE_SKIP")
		if !strings.Contains(skip, "steady") {
			s.steadyState(r, durationSetting("SCALE_STEADY", 2*time.Minute))
		}
		if !strings.Contains(skip, "staggered") {
			s.staggered(r, setting("SCALE_STAGGERED", 200))
		}
		if !strings.Contains(skip, "memory") {
			s.memory(r, setting("SCALE_UNRELATED_NS", 5000), setting("SCALE_UNRELATED_CM", 20000))
		}
		if os.Getenv("SCALE_BARE_AFTER") == "1" {
			s.bareAfter(r)
		}
	}
	r.publish(b)
}

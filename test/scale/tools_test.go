package scale

import (
	"bufio"
	"cmp"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/partnerops/entitlement-operator/internal/testcluster"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
)

// workers is the bare client's parallelism (issue 11: 8 workers).
const workers = 8

// parallel runs f(0..n-1) on w workers and returns the first error.
func parallel(n, w int, f func(i int) error) error {
	var next atomic.Int64
	var first atomic.Pointer[error]
	var wg sync.WaitGroup
	for range w {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n || first.Load() != nil {
					return
				}
				if err := f(i); err != nil {
					first.CompareAndSwap(nil, &err)
					return
				}
			}
		})
	}
	wg.Wait()
	if e := first.Load(); e != nil {
		return *e
	}
	return nil
}

// manager is the manager binary with its default flags (metrics on plain
// HTTP on loopback, so that the benchmark can read its client metrics).
type manager struct {
	*testcluster.ManagerProcess
	metrics string
	// pprof is the manager's profiling endpoint (SCALE_PROFILE only).
	pprof string
}

func startManager(b *testing.B, name string) *manager {
	b.Helper()
	addr := freeAddr(b)
	args := []string{"--metrics-bind-address=" + addr, "--metrics-secure=false"}
	var pprofAddr string
	if os.Getenv("SCALE_PROFILE") != "" {
		pprofAddr = freeAddr(b)
		args = append(args, "--pprof-bind-address="+pprofAddr)
	}
	// SCALE_MANAGER_ARGS adds flags (space-separated, e.g.
	// --zap-log-level=debug); SCALE_LOGS keeps the manager's logs in a
	// directory instead of the benchmark's temporary one.
	args = append(args, strings.Fields(os.Getenv("SCALE_MANAGER_ARGS"))...)
	logs := cmp.Or(os.Getenv("SCALE_LOGS"), b.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p, err := testcluster.StartManager(ctx, testcluster.ManagerOptions{
		Binary: bin, Kubeconfig: cluster.KubeconfigPath,
		LogPath:   filepath.Join(logs, name+".log"),
		ExtraArgs: args,
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(p.Stop)
	return &manager{ManagerProcess: p, metrics: "http://" + addr + "/metrics", pprof: pprofAddr}
}

// freeAddr is a loopback address with a port free now.
func freeAddr(b *testing.B) string {
	b.Helper()
	addr, err := testcluster.FreeAddr()
	if err != nil {
		b.Fatal(err)
	}
	return addr
}

// scrape reads the manager's metrics: the sum of each family's samples
// whose labels contain all of match.
func (m *manager) scrape(family string, match ...string) (float64, error) {
	resp, err := http.Get(m.metrics)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, family+"{") && !strings.HasPrefix(line, family+" ") {
			continue
		}
		ok := true
		for _, s := range match {
			ok = ok && strings.Contains(line, s)
		}
		if !ok {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			return 0, fmt.Errorf("metric line %q: %w", line, err)
		}
		sum += v
	}
	return sum, sc.Err()
}

// writes is how many mutating requests the manager has sent.
func (m *manager) writes(b *testing.B) float64 {
	b.Helper()
	var total float64
	for _, verb := range []string{"POST", "PUT", "PATCH", "DELETE"} {
		v, err := m.scrape("rest_client_requests_total", `method="`+verb+`"`)
		if err != nil {
			b.Fatal(err)
		}
		total += v
	}
	return total
}

// conflicts is how many requests the API server refused with 409 (an
// optimistically locked write of a stale copy, or a create of an existing
// object).
func (m *manager) conflicts(b *testing.B) float64 {
	b.Helper()
	v, err := m.scrape("rest_client_requests_total", `code="409"`)
	if err != nil {
		b.Fatal(err)
	}
	return v
}

// quiet waits until the manager has made no write for the given window
// (polled, bounded) and returns when its last write was seen.
func (m *manager) quiet(b *testing.B, window, timeout time.Duration) time.Duration {
	b.Helper()
	start := time.Now()
	last, lastAt := m.writes(b), time.Now()
	err := testcluster.Poll(timeout, func() error {
		if w := m.writes(b); w != last {
			last, lastAt = w, time.Now()
		}
		if time.Since(lastAt) < window {
			return fmt.Errorf("a write %s ago", time.Since(lastAt).Round(time.Millisecond))
		}
		return nil
	})
	if err != nil {
		b.Fatalf("the manager did not go quiet: %v", err)
	}
	return lastAt.Sub(start)
}

// peakRSS is the manager's peak resident set (VmHWM), in MiB.
func (m *manager) peakRSS(b *testing.B) float64 {
	b.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", m.Pid()))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			if err != nil {
				b.Fatal(err)
			}
			return kb / 1024
		}
	}
	b.Fatal("no VmHWM in /proc status")
	return 0
}

// waitPartners watches partners until done holds for each of names and
// returns when each first did (the watch event's arrival: measuring adds
// no load).
func waitPartners(b *testing.B, timeout time.Duration, names []string, done func(*v1.Partner) bool) map[string]time.Time {
	b.Helper()
	want := make(map[string]bool, len(names))
	for _, n := range names {
		want[n] = true
	}
	at := make(map[string]time.Time, len(names))
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for len(at) < len(names) {
		// A list first (and again after a closed watch): what was done
		// before the watch started counts at the list's time.
		list := &v1.PartnerList{}
		if err := k8s.List(ctx, list); err != nil {
			b.Fatalf("listing partners with %d of %d done: %v", len(at), len(names), err)
		}
		for i := range list.Items {
			p := &list.Items[i]
			if _, seen := at[p.Name]; want[p.Name] && !seen && done(p) {
				at[p.Name] = time.Now()
			}
		}
		w, err := watcher.Watch(ctx, &v1.PartnerList{}, &client.ListOptions{Raw: rawFrom(list.ResourceVersion)})
		if err != nil {
			b.Fatalf("watching partners: %v", err)
		}
		for open := true; open && len(at) < len(names); {
			select {
			case ev, ok := <-w.ResultChan():
				if !ok {
					open = false
					break
				}
				p, isPartner := ev.Object.(*v1.Partner)
				if !isPartner {
					// An Error event (its object a Status, e.g. 410 Gone
					// when the watch fell behind, seen at 10,000
					// partners): list and watch again.
					open = false
					break
				}
				if _, seen := at[p.Name]; want[p.Name] && !seen && done(p) {
					at[p.Name] = time.Now()
				}
			case <-ctx.Done():
				w.Stop()
				b.Fatalf("%d of %d partners done after %s (for instance %s)", len(at), len(names), timeout.Round(time.Millisecond), firstMissing(names, at))
			}
		}
		w.Stop()
	}
	return at
}

// lags are the times from due to each partner's done, sorted, in ms.
func lags(at map[string]time.Time, due func(name string) time.Time) []float64 {
	out := make([]float64, 0, len(at))
	for name, t := range at {
		out = append(out, float64(t.Sub(due(name)).Microseconds())/1000)
	}
	slices.Sort(out)
	return out
}

// quantile of sorted values (nearest rank).
func quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func firstMissing(names []string, at map[string]time.Time) string {
	for _, n := range names {
		if _, ok := at[n]; !ok {
			return n
		}
	}
	return "none"
}

// means are the manager's histogram sums and counts, to report mean
// latencies over a job: reconcile and workqueue wait (controller-runtime
// registers no client request-latency histograms).
type means map[string][2]float64

var meanFamilies = []struct{ name, family, match string }{
	{"partner reconcile", "controller_runtime_reconcile_time_seconds", `controller="partner"`},
	{"contract reconcile", "controller_runtime_reconcile_time_seconds", `controller="distributorcontract"`},
	{"partner queue wait", "workqueue_queue_duration_seconds", `name="partner"`},
}

func (m *manager) means(b *testing.B) means {
	b.Helper()
	out := means{}
	for _, f := range meanFamilies {
		var match []string
		if f.match != "" {
			match = []string{f.match}
		}
		sum, err := m.scrape(f.family+"_sum", match...)
		if err != nil {
			b.Fatal(err)
		}
		count, err := m.scrape(f.family+"_count", match...)
		if err != nil {
			b.Fatal(err)
		}
		out[f.name] = [2]float64{sum, count}
	}
	return out
}

// since describes the mean of each between two readings, in ms.
func (after means) since(before means) string {
	var parts []string
	for _, f := range meanFamilies {
		a, b := after[f.name], before[f.name]
		if n := a[1] - b[1]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s %.1f ms (%.0f)", f.name, 1000*(a[0]-b[0])/n, n))
		}
	}
	return strings.Join(parts, ", ")
}

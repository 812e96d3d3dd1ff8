package scale

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
)

// serverWrites is the API server's count of mutating requests by verb and
// resource (apiserver_request_total), from every client: the breakdown
// shows where a job's writes go.
func serverWrites(b *testing.B) map[string]float64 { return serverRequests(b, false) }

// serverRequests counts requests by verb and resource; all includes reads.
func serverRequests(b *testing.B, all bool) map[string]float64 {
	b.Helper()
	cs, err := kubernetes.NewForConfig(cluster.Config)
	if err != nil {
		b.Fatal(err)
	}
	data, err := cs.RESTClient().Get().AbsPath("/metrics").DoRaw(context.Background())
	if err != nil {
		b.Fatalf("reading the API server's metrics: %v", err)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "apiserver_request_total{") {
			continue
		}
		labels := promLabels(line)
		if !all {
			switch labels["verb"] {
			case "POST", "PUT", "PATCH", "APPLY", "DELETE":
			default:
				continue
			}
		}
		key := labels["verb"] + " " + labels["resource"]
		if s := labels["subresource"]; s != "" {
			key += "/" + s
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			b.Fatalf("metric line %q: %v", line, err)
		}
		out[key] += v
	}
	return out
}

// promLabels parses the labels of one exposition line (values hold no
// quotes or commas here).
func promLabels(line string) map[string]string {
	out := map[string]string{}
	i, j := strings.IndexByte(line, '{'), strings.LastIndexByte(line, '}')
	if i < 0 || j < i {
		return out
	}
	for _, kv := range strings.Split(line[i+1:j], ",") {
		k, v, ok := strings.Cut(kv, "=")
		if ok {
			out[k] = strings.Trim(v, `"`)
		}
	}
	return out
}

// breakdown is the per-partner writes between two serverWrites readings,
// largest first, as one line.
func breakdown(before, after map[string]float64, n int) string {
	diff := map[string]float64{}
	for k, v := range after {
		if d := v - before[k]; d > 0 {
			diff[k] = d
		}
	}
	keys := slices.SortedFunc(maps.Keys(diff), func(a, b string) int {
		if diff[a] != diff[b] {
			if diff[a] > diff[b] {
				return -1
			}
			return 1
		}
		return strings.Compare(a, b)
	})
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %.2f", k, diff[k]/float64(n)))
	}
	return strings.Join(parts, ", ")
}

// profile, when SCALE_PROFILE names a directory, records CPU profiles of
// the manager and of kube-apiserver for the window from now, in the
// background; wait for the files with the returned function.
func (s *scaleRun) profile(name string, window time.Duration) func() {
	dir := os.Getenv("SCALE_PROFILE")
	if dir == "" {
		return func() {}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		s.b.Fatal(err)
	}
	secs := strconv.Itoa(int(window.Seconds()))
	var wg sync.WaitGroup
	wg.Go(func() {
		resp, err := http.Get("http://" + s.m.pprof + "/debug/pprof/profile?seconds=" + secs)
		if err == nil {
			defer resp.Body.Close()
			data, _ := io.ReadAll(resp.Body)
			err = os.WriteFile(filepath.Join(dir, name+"-manager.pprof"), data, 0o644)
		}
		if err != nil {
			s.b.Logf("manager profile: %v", err)
		}
	})
	wg.Go(func() { apiServerProfile(s.b, dir, name, window) })
	return wg.Wait
}

// apiServerProfile records a CPU profile of kube-apiserver for the window
// from now into dir/<name>-apiserver.pprof (a failure is logged).
func apiServerProfile(b *testing.B, dir, name string, window time.Duration) {
	cs, err := kubernetes.NewForConfig(cluster.Config)
	if err == nil {
		var data []byte
		data, err = cs.RESTClient().Get().AbsPath("/debug/pprof/profile").Param("seconds", strconv.Itoa(int(window.Seconds()))).
			Timeout(window + time.Minute).DoRaw(context.Background())
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, name+"-apiserver.pprof"), data, 0o644)
		}
	}
	if err != nil {
		b.Logf("kube-apiserver profile: %v", err)
	}
}

// cpuTimes are the CPU seconds (user + system) used so far by the control
// plane's processes, the manager and this benchmark, by command name.
func cpuTimes() map[string]float64 {
	out := map[string]float64{}
	dirs, _ := os.ReadDir("/proc")
	self := strconv.Itoa(os.Getpid())
	for _, d := range dirs {
		if _, err := strconv.Atoi(d.Name()); err != nil {
			continue
		}
		comm, err := os.ReadFile(filepath.Join("/proc", d.Name(), "comm"))
		if err != nil {
			continue
		}
		name := strings.TrimSpace(string(comm))
		switch {
		case d.Name() == self:
			name = "benchmark"
		case name == "etcd", name == "kube-apiserver", name == "manager", strings.HasPrefix(name, "kube-controller"):
		default:
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", d.Name(), "stat"))
		if err != nil {
			continue
		}
		// Fields after the command's closing parenthesis; utime and stime
		// are the 14th and 15th of the whole line.
		rest := string(stat[bytes.LastIndexByte(stat, ')')+2:])
		f := strings.Fields(rest)
		if len(f) < 13 {
			continue
		}
		u, _ := strconv.ParseFloat(f[11], 64)
		s, _ := strconv.ParseFloat(f[12], 64)
		out[name] += (u + s) / 100 // USER_HZ
	}
	return out
}

// cpuSince describes the cores each process used on average between a
// cpuTimes reading and now.
func cpuSince(before map[string]float64, since time.Time) string {
	after := cpuTimes()
	secs := time.Since(since).Seconds()
	var parts []string
	total := 0.0
	for _, k := range slices.Sorted(maps.Keys(after)) {
		c := (after[k] - before[k]) / secs
		total += c
		parts = append(parts, fmt.Sprintf("%s %.2f", k, c))
	}
	return fmt.Sprintf("%.2f cores in all: %s", total, strings.Join(parts, ", "))
}

package entitlement

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// strict builds a granted namespace's usage with its quota's spec and
// status limits.
func strict(used, spec, status int64) NamespaceUsage {
	return NamespaceUsage{Charged: used, Present: used, Granted: true, SpecHard: spec, StatusHard: status}
}

// soldAt is u whose newest Subscription was created at second sec.
func soldAt(u NamespaceUsage, sec int64) NamespaceUsage {
	u.LastSale = time.Unix(sec, 0)
	return u
}

func TestSpreadQuotaStrict(t *testing.T) {
	revoked := func(used int64) NamespaceUsage { return NamespaceUsage{Charged: used, Present: used} }
	cases := []struct {
		name  string
		limit int64
		usage []NamespaceUsage
		want  []int64
	}{
		{"new namespaces: the limit split evenly", 10, []NamespaceUsage{strict(0, 0, 0), strict(0, 0, 0)}, []int64{5, 5}},
		{"odd limit: the remainder to the first", 5, []NamespaceUsage{strict(0, 0, 0), strict(0, 0, 0)}, []int64{3, 2}},
		{"balanced: kept as written", 10, []NamespaceUsage{strict(2, 5, 5), strict(1, 5, 5)}, []int64{5, 5}},
		{"a namespace out of room, spare elsewhere: the other is lowered first, the raise waits",
			10, []NamespaceUsage{strict(5, 5, 5), strict(0, 5, 5)}, []int64{5, 2}},
		{"the lower limit in force: the raise follows", 10, []NamespaceUsage{strict(5, 5, 5), strict(0, 2, 2)}, []int64{8, 2}},
		{"the lower limit written, not yet in force: still no raise",
			10, []NamespaceUsage{strict(5, 5, 5), strict(0, 2, 5)}, []int64{5, 2}},
		{"both out of room: nothing to move", 10, []NamespaceUsage{strict(5, 5, 5), strict(5, 5, 5)}, []int64{5, 5}},
		{"the whole limit used in one: the other keeps 0", 10, []NamespaceUsage{strict(10, 10, 10), strict(0, 0, 0)}, []int64{10, 0}},
		{"limit lowered: decreased to usage plus an even share, never below usage",
			4, []NamespaceUsage{strict(3, 5, 5), strict(0, 5, 5)}, []int64{4, 0}},
		{"over the limit: each at its usage", 4, []NamespaceUsage{strict(3, 5, 5), strict(3, 5, 5)}, []int64{3, 3}},
		{"a revoked namespace's usage counts, its hard is 0", 10, []NamespaceUsage{strict(0, 0, 0), revoked(4)}, []int64{6, 0}},
		{"limit raised: the new headroom shared", 20, []NamespaceUsage{strict(5, 5, 5), strict(5, 5, 5)}, []int64{10, 10}},
		{"one unit left, held by the namespace that sold last: it stays", 10,
			[]NamespaceUsage{soldAt(strict(9, 10, 10), 2), strict(0, 0, 0)}, []int64{10, 0}},
		{"one unit left, the namespace that sold last out of room: it moves there", 10,
			[]NamespaceUsage{soldAt(strict(9, 9, 9), 2), strict(0, 1, 1)}, []int64{9, 0}},
		{"one unit left, moving: raised once the other's lower limit is in force", 10,
			[]NamespaceUsage{soldAt(strict(9, 9, 9), 2), strict(0, 0, 0)}, []int64{10, 0}},
		{"one unit left between two sellers: to the latest (lowered first)", 10,
			[]NamespaceUsage{soldAt(strict(6, 7, 7), 1), soldAt(strict(3, 3, 3), 2)}, []int64{6, 3}},
		{"nothing granted", 10, []NamespaceUsage{revoked(1)}, []int64{0}},
		{"no namespaces", 10, nil, []int64{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := SpreadQuotaStrict(tc.limit, tc.usage)
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("SpreadQuotaStrict(limit %d, %+v): want %v, got %v", tc.limit, tc.usage, tc.want, got)
			}
		})
	}
}

// strictWorld simulates quota admission and kube-controller-manager
// around the Strict spread: admission lets a Subscription into a namespace
// while its used count is below status.hard; kube-controller-manager
// copies spec.hard to status.hard in its own time.
type strictWorld struct {
	limit              int64
	used, spec, status []int64
	granted            []bool
	// lastSale is when each namespace last sold (zero: holds none).
	lastSale []time.Time
}

func newStrictWorld(limit int64, k int) *strictWorld {
	return &strictWorld{limit: limit, used: make([]int64, k), spec: make([]int64, k), status: make([]int64, k),
		granted: make([]bool, k), lastSale: make([]time.Time, k)}
}

func (w *strictWorld) usage() []NamespaceUsage {
	us := make([]NamespaceUsage, len(w.used))
	for i := range us {
		us[i] = NamespaceUsage{Charged: w.used[i], Present: w.used[i], Granted: w.granted[i], SpecHard: w.spec[i], StatusHard: w.status[i], LastSale: w.lastSale[i]}
	}
	return us
}

// create sells in namespace i at step when quota admission lets it.
func (w *strictWorld) create(i, step int) {
	if w.granted[i] && w.used[i] < w.status[i] {
		w.used[i]++
		w.lastSale[i] = time.Unix(int64(step), 0)
	}
}

// settle runs one operator pass and lets kube-controller-manager copy
// every limit into force.
func (w *strictWorld) settle() {
	hard := SpreadQuotaStrict(w.limit, w.usage())
	for j := range hard {
		w.spec[j] = hard[j]
		w.status[j] = w.spec[j]
	}
}

// check asserts the Strict invariants: in total never more admitted than
// the limit (beyond what was held when the world began), and the limits in
// force never sum above what the granted namespaces may hold.
func (w *strictWorld) check(t *testing.T, step int, what string, held int64) {
	t.Helper()
	var total, inForce, avail int64 = 0, 0, w.limit
	for i := range w.used {
		total += w.used[i]
		if w.granted[i] {
			inForce += max(w.spec[i], w.status[i], w.used[i])
		} else {
			avail -= w.used[i]
		}
	}
	if total > max(w.limit, held) {
		t.Fatalf("step %d (%s): %d admitted in total, limit %d", step, what, total, w.limit)
	}
	if inForce > max(avail, 0) && total <= w.limit {
		t.Fatalf("step %d (%s): limits in force sum to %d, above the %d the granted namespaces may hold (used %v spec %v status %v)",
			step, what, inForce, avail, w.used, w.spec, w.status)
	}
}

// TestSpreadQuotaStrictNeverOversells runs random interleavings of
// creates, deletes, the operator's passes and kube-controller-manager's
// syncs, and checks the invariants after every step; then, with creates in
// one namespace only, that it gets all the headroom in a bounded number of
// passes.
func TestSpreadQuotaStrictNeverOversells(t *testing.T) {
	for seed := range uint64(300) {
		rng := rand.New(rand.NewPCG(seed, 11))
		k := 1 + rng.IntN(4)
		w := newStrictWorld(int64(rng.IntN(30)), k)
		for i := range k {
			w.granted[i] = rng.IntN(5) > 0
		}
		for step := range 400 {
			i := rng.IntN(k)
			var what string
			switch op := rng.IntN(10); {
			case op < 4:
				what = "create"
				w.create(i, step)
			case op < 5:
				what = "delete"
				if w.used[i] > 0 {
					w.used[i]--
				}
				if w.used[i] == 0 {
					w.lastSale[i] = time.Time{}
				}
			case op < 8:
				what = "operator"
				hard := SpreadQuotaStrict(w.limit, w.usage())
				for j := range hard {
					if w.granted[j] && hard[j] < w.used[j] {
						t.Fatalf("seed %d step %d: namespace %d hard %d below its usage %d", seed, step, j, hard[j], w.used[j])
					}
					if w.granted[j] {
						w.spec[j] = hard[j]
					} else {
						w.spec[j], w.status[j] = 0, 0
					}
				}
			default:
				what = "kube-controller-manager"
				w.status[i] = w.spec[i]
			}
			w.check(t, step, fmt.Sprintf("seed %d, %s in %d", seed, what, i), 0)
		}
		// Quiet: nobody sells; the spread comes to rest within a few
		// passes and then writes nothing (no quota ping-pong).
		for range 4 {
			w.settle()
		}
		rest := slices.Clone(w.spec)
		for pass := range 4 {
			w.settle()
			if !slices.Equal(w.spec, rest) {
				t.Fatalf("seed %d: with nobody selling the spread still moves after %d passes: %v then %v (used %v, limit %d)",
					seed, 4+pass+1, rest, w.spec, w.used, w.limit)
			}
		}
		// Liveness: only namespace a creates, everything settles each time.
		a := -1
		for i := range k {
			if w.granted[i] {
				a = i
				break
			}
		}
		if a < 0 {
			continue
		}
		for pass := range 64 {
			w.settle()
			for w.used[a] < w.status[a] {
				w.create(a, 1000+pass)
			}
		}
		// Fewer units left than the partner has granted namespaces stay
		// with the namespaces that sold most recently: a namespace whose
		// creates are refused gives no sign of it, and moving them on
		// every pass is the ping-pong above.
		var total, granted int64
		for i, u := range w.used {
			total += u
			if w.granted[i] {
				granted++
			}
		}
		if total < w.limit-(granted-1) {
			t.Errorf("seed %d: creating only in namespace %d, the partner holds %d of its limit %d after 64 passes, want at least %d (used %v spec %v)",
				seed, a, total, w.limit, w.limit-(granted-1), w.used, w.spec)
		}
	}
}

// TestSpreadQuotaStrictOneSeller: from a fresh start, a partner selling in
// one of its namespaces only gets its whole limit there (a limit below the
// number of namespaces: if it is among the first that many), and then the
// spread writes nothing more.
func TestSpreadQuotaStrictOneSeller(t *testing.T) {
	for k := 1; k <= 4; k++ {
		for limit := range int64(25) {
			for a := range k {
				w := newStrictWorld(limit, k)
				for i := range k {
					w.granted[i] = true
				}
				passes := 0
				for ; passes < 64; passes++ {
					w.settle()
					for w.used[a] < w.status[a] {
						w.create(a, passes+1)
					}
				}
				// A limit below the number of namespaces goes to the first
				// ones listed, and stays there until they sell.
				want := limit
				if limit < int64(k) && int64(a) >= limit {
					want = 0
				}
				if w.used[a] != want {
					t.Fatalf("%d namespaces, limit %d, selling in %d: holds %d after %d passes, want %d (spec %v)", k, limit, a, w.used[a], passes, want, w.spec)
				}
				rest := slices.Clone(w.spec)
				w.settle()
				if !slices.Equal(w.spec, rest) {
					t.Errorf("%d namespaces, limit %d, selling in %d: at the limit the spread still moves: %v then %v", k, limit, a, rest, w.spec)
				}
			}
		}
	}
}

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
	leaving := func(used, spec, status int64) NamespaceUsage {
		return NamespaceUsage{Charged: used, Present: used, SpecHard: spec, StatusHard: status}
	}
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
		// Held over a lowered limit: every namespace below its count by the
		// whole excess, so that a delete anywhere opens no slot.
		{"over the limit: each lowered by the excess", 4, []NamespaceUsage{strict(3, 5, 5), strict(3, 5, 5)}, []int64{1, 1}},
		{"7 held, limit lowered to 6", 6, []NamespaceUsage{strict(4, 4, 4), strict(3, 3, 3)}, []int64{3, 2}},
		{"over by more than a namespace holds: 0, never negative", 6, []NamespaceUsage{strict(7, 7, 7), strict(1, 1, 1)}, []int64{5, 0}},
		{"over, a lower limit not yet in force: still lowered, nothing raised", 5,
			[]NamespaceUsage{strict(3, 2, 4), strict(3, 1, 1)}, []int64{2, 1}},
		{"back at the limit after a delete: each held at its count", 6,
			[]NamespaceUsage{strict(3, 3, 3), strict(3, 2, 2)}, []int64{3, 3}},
		{"back under the limit, the freed unit where nobody sold: lowered there first", 6,
			[]NamespaceUsage{strict(3, 3, 3), strict(2, 3, 3)}, []int64{3, 2}},
		// A namespace leaving the set (removed from spec.namespaces, or
		// beyond maxNamespaces) admits up to its old limit until its 0 is
		// in force: that headroom is not the others' yet.
		{"a namespace leaving: no raise while its old limit is in force", 12,
			[]NamespaceUsage{strict(4, 4, 4), strict(4, 4, 4), leaving(1, 4, 4)}, []int64{4, 4, 0}},
		{"a namespace leaving: its 0 written, not yet in force: still no raise", 12,
			[]NamespaceUsage{strict(4, 4, 4), strict(4, 4, 4), leaving(1, 0, 4)}, []int64{4, 4, 0}},
		{"a namespace leaving: its 0 in force: its headroom reaches the others", 12,
			[]NamespaceUsage{strict(4, 4, 4), strict(4, 4, 4), leaving(1, 0, 0)}, []int64{6, 5, 0}},
		{"a namespace leaving with room to spare elsewhere: the others lowered at once", 12,
			[]NamespaceUsage{strict(1, 4, 4), strict(0, 4, 4), leaving(0, 0, 8)}, []int64{3, 1, 0}},
		// kube-controller-manager's count lags the objects (4 present, 3
		// counted): admission lets the headroom in on top of the count, so
		// the limit is written from the count.
		{"the quota's count lags: the headroom counted on top of the count", 10,
			[]NamespaceUsage{{Charged: 3, Present: 4, Granted: true, SpecHard: 5, StatusHard: 5}, strict(0, 0, 0)}, []int64{6, 3}},
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
// while its count is below status.hard, granted or not (whether its
// creator may still write there is RBAC's business, not the quota's);
// kube-controller-manager copies spec.hard to status.hard in its own time.
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

// create sells in namespace i at step when quota admission lets it, and
// reports whether it did.
func (w *strictWorld) create(i, step int) bool {
	if w.used[i] >= w.status[i] {
		return false
	}
	w.used[i]++
	w.lastSale[i] = time.Unix(int64(step), 0)
	return true
}

// pass runs one operator pass: every quota the partner has is written,
// the non-granted ones with 0.
func (w *strictWorld) pass() []int64 {
	hard := SpreadQuotaStrict(w.limit, w.usage())
	copy(w.spec, hard)
	return hard
}

// settle runs one operator pass and lets kube-controller-manager copy
// every limit into force.
func (w *strictWorld) settle() {
	w.pass()
	copy(w.status, w.spec)
}

func (w *strictWorld) total() int64 {
	var n int64
	for _, u := range w.used {
		n += u
	}
	return n
}

// worst is the most the partner can come to hold right after a create,
// with no further operator write: a create in namespace i is admitted only
// below the higher of its spec.hard and status.hard (it may first delete
// down to there), while every other namespace j may hold max(used,
// spec.hard, status.hard). 0 when no namespace admits anything. Strict
// holds when worst ≤ limit: then no create, whatever deletes come first,
// takes the partner over its limit, even while it holds more than a
// lowered limit.
func (w *strictWorld) worst() int64 {
	var caps, worst int64
	for j := range w.used {
		caps += max(w.used[j], w.spec[j], w.status[j])
	}
	for i := range w.used {
		if h := max(w.spec[i], w.status[i]); h > 0 {
			worst = max(worst, h+caps-max(w.used[i], w.spec[i], w.status[i]))
		}
	}
	return worst
}

// inForce is Σ status.hard: what the observer sums.
func (w *strictWorld) inForce() int64 {
	var n int64
	for _, s := range w.status {
		n += s
	}
	return n
}

// TestSpreadQuotaStrictNeverOversells runs random interleavings of
// creates (in granted namespaces and in those leaving the set), deletes,
// the operator's passes, kube-controller-manager's copies (each decrease
// confirmed or not yet), namespaces leaving and joining the set and the
// limit lowered and raised, and checks after every step that once the
// limits in force are within the limit they stay within it: no create
// takes the partner over its limit, Σ status.hard ≤ limit, and no
// sequence of deletes and creates without another operator write could
// take it over (worst); and that while the old limits are still in
// force, a pass never opens room. A lowered limit is in force once the operator has
// written it and kube-controller-manager copied it; until then the old
// limits stand. Then, with nobody selling, the spread comes to rest; and
// with creates in one namespace only, it gets all the headroom in a
// bounded number of passes.
func TestSpreadQuotaStrictNeverOversells(t *testing.T) {
	for seed := range uint64(500) {
		rng := rand.New(rand.NewPCG(seed, 11))
		k := 1 + rng.IntN(4)
		w := newStrictWorld(int64(rng.IntN(30)), k)
		for i := range k {
			w.granted[i] = rng.IntN(5) > 0
		}
		// established: the limits in force have been within the limit
		// since it was last lowered.
		established := true
		for step := range 600 {
			i := rng.IntN(k)
			var what string
			switch op := rng.IntN(100); {
			case op < 40:
				what = "create"
				if w.create(i, step) && established && w.total() > w.limit {
					t.Fatalf("seed %d step %d: a create in %d admitted: %d held, limit %d (used %v spec %v status %v granted %v)",
						seed, step, i, w.total(), w.limit, w.used, w.spec, w.status, w.granted)
				}
			case op < 52:
				what = "delete"
				if w.used[i] > 0 {
					w.used[i]--
				}
				if w.used[i] == 0 {
					w.lastSale[i] = time.Time{}
				}
			case op < 80:
				what = "operator"
				usage, before := w.usage(), w.worst()
				hard := w.pass()
				// While the old limits are still in force (a lowered limit
				// not yet copied), a pass may close room but never open any.
				if worst := w.worst(); worst > max(before, w.limit) {
					t.Fatalf("seed %d step %d: a pass opened room while the partner could already come to hold %d, limit %d: now %d (used %v spec %v status %v granted %v)",
						seed, step, before, w.limit, worst, w.used, w.spec, w.status, w.granted)
				}
				for j, h := range hard {
					if w.granted[j] && h < w.used[j] && !overStrict(w.limit, usage) {
						t.Fatalf("seed %d step %d: namespace %d hard %d below its usage %d, the partner within its limit (used %v spec %v status %v granted %v)",
							seed, step, j, h, w.used[j], w.used, w.spec, w.status, w.granted)
					}
				}
			case op < 96:
				what = "kube-controller-manager"
				w.status[i] = w.spec[i]
			case op < 98:
				what = "namespace leaves or joins"
				w.granted[i] = !w.granted[i]
			default:
				what = "limit changed"
				next := int64(rng.IntN(30))
				if next < w.limit {
					established = false
				}
				w.limit = next
			}
			established = established || w.worst() <= w.limit
			if !established {
				continue
			}
			if f := w.inForce(); f > w.limit {
				t.Fatalf("seed %d step %d (%s in %d): Σ status.hard %d above the limit %d (used %v spec %v status %v granted %v)",
					seed, step, what, i, f, w.limit, w.used, w.spec, w.status, w.granted)
			}
			if worst := w.worst(); worst > w.limit {
				t.Fatalf("seed %d step %d (%s in %d): the partner could come to hold %d, limit %d, held %d (used %v spec %v status %v granted %v)",
					seed, step, what, i, worst, w.limit, w.total(), w.used, w.spec, w.status, w.granted)
			}
		}
		// Two settled passes put any limit in force.
		w.settle()
		w.settle()
		if f, worst := w.inForce(), w.worst(); f > w.limit || worst > w.limit {
			t.Fatalf("seed %d: settled, Σ status.hard %d and worst %d, limit %d held %d (used %v spec %v status %v granted %v)",
				seed, f, worst, w.limit, w.total(), w.used, w.spec, w.status, w.granted)
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
			for w.create(a, 1000+pass) {
			}
		}
		// Fewer units left than the partner has granted namespaces stay
		// with the namespaces that sold most recently: a namespace whose
		// creates are refused gives no sign of it, and moving them on
		// every pass is the ping-pong above.
		var granted int64
		for i := range w.used {
			if w.granted[i] {
				granted++
			}
		}
		if total := w.total(); total < w.limit-(granted-1) {
			t.Errorf("seed %d: creating only in namespace %d, the partner holds %d of its limit %d after 64 passes, want at least %d (used %v spec %v)",
				seed, a, total, w.limit, w.limit-(granted-1), w.used, w.spec)
		}
	}
}

// overStrict: the partner holds more than its granted namespaces may,
// counting what the others can still admit.
func overStrict(limit int64, usage []NamespaceUsage) bool {
	var n int64
	for _, u := range usage {
		if u.Granted {
			n += u.Used()
		} else {
			n += u.cap()
		}
	}
	return n > limit
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

// Package metrics defines the operator's Prometheus metrics, registered with
// controller-runtime's registry (served on the manager's metrics endpoint).
package metrics

import (
	"runtime"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
	"github.com/partnerops/entitlement-operator/internal/version"
)

var contractPhases = []v1.ContractPhase{v1.ContractPending, v1.ContractActive, v1.ContractExpiring, v1.ContractGrace, v1.ContractExpired}

var (
	// ContractPhase is 1 for a contract's current phase, 0 for the others.
	ContractPhase = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "entitlements_contract_phase",
		Help: "Lifecycle phase of each DistributorContract: 1 for the current phase, 0 for the others.",
	}, []string{"contract", "distributor", "phase"})

	// ContractEnds is a contract's endsAt as a Unix time (absent when open-ended).
	ContractEnds = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "entitlements_contract_ends_timestamp_seconds",
		Help: "endsAt of each DistributorContract with an end, as a Unix time.",
	}, []string{"contract", "distributor"})

	// TransitionLag is how late a phase change was applied after it was due.
	TransitionLag = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "entitlements_transition_lag_seconds",
		Help:    "Time from the instant a contract phase change or partner failover/revocation was due until the operator applied it.",
		Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 3600},
	})

	// Partners counts partners by phase and tier.
	Partners = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "entitlements_partners",
		Help: "Partners by entitlement phase and tier.",
	}, []string{"phase", "tier"})

	// Failovers counts partners moved to their next contract.
	Failovers = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "entitlements_failovers_total",
		Help: "Partners that failed over from one contract to the next.",
	})

	// Revocations counts partners whose entitlements were revoked.
	// Its label scheduled is "true" for a revocation at the instant the
	// partner's status.next had announced it (a contract running out as
	// planned), "false" for any other (a contract or partner edited or
	// deleted, a Partner deleted while entitled).
	Revocations = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "entitlements_revocations_total",
		Help: "Partners whose entitlements were revoked (suspensions are not counted); scheduled=\"true\" when status.next had announced it for that instant.",
	}, []string{"scheduled"})
)

// BuildInfo is 1, labelled with what the running binary was built from,
// so that a dashboard or an alert can tell which release each replica runs
// (e.g. during a rolling upgrade).
var BuildInfo = prometheus.NewGaugeVec(prometheus.GaugeOpts{
	Name: "entitlements_build_info",
	Help: "Always 1; labels: the release (version), the git commit and the Go version the manager was built with.",
}, []string{"version", "commit", "goversion"})

func init() {
	v, c := version.Get()
	if c == "" {
		c = "unknown" // built without -ldflags and without VCS stamping
	}
	BuildInfo.WithLabelValues(v, c, runtime.Version()).Set(1)
	ctrlmetrics.Registry.MustRegister(Collectors()...)
}

// Collectors are every metric the operator exports (for registration, and
// for tests that check alerts and dashboards name real ones).
func Collectors() []prometheus.Collector {
	return []prometheus.Collector{BuildInfo, ContractPhase, ContractEnds, TransitionLag, Partners, Failovers, Revocations, subscriptionsOverLimit, ReconcileRetries, ContractForecast, PartnersRequirements, admissionEnforced, partnerStalled}
}

// admissionEnforced is 1 while the admission policies the operator relies
// on are in place as shipped, 0 while one or its binding is missing or
// does not deny (see the contracts' Stalled condition).
var admissionEnforced = prometheus.NewGauge(prometheus.GaugeOpts{
	Name: "entitlements_admission_policies_enforced",
	Help: "1 while the ValidatingAdmissionPolicies that refuse forbidden products and Subscriptions after a contract's end are in place and bound with Deny, 0 while not (absent with --require-admission-policies=false).",
})

// SetAdmissionEnforced records whether the admission policies are in place.
func SetAdmissionEnforced(ok bool) {
	if ok {
		admissionEnforced.Set(1)
	} else {
		admissionEnforced.Set(0)
	}
}

// ContractForecast is, per contract with an end, how many of the partners
// it supplies now fail over and how many are revoked when its supply ends
// (status.forecast).
var ContractForecast = prometheus.NewGaugeVec(prometheus.GaugeOpts{
	Name: "entitlements_contract_forecast_partners",
	Help: "Partners a contract supplies now, by what its end does to them (outcome FailOver or Revoke); absent for open-ended contracts.",
}, []string{"contract", "distributor", "outcome"})

// SetForecast records a contract's forecast (failOver < 0: none, the
// contract is open-ended).
func SetForecast(name, distributor string, failOver, revoke int) {
	if failOver < 0 {
		ContractForecast.DeleteLabelValues(name, distributor, "FailOver")
		ContractForecast.DeleteLabelValues(name, distributor, "Revoke")
		return
	}
	ContractForecast.WithLabelValues(name, distributor, "FailOver").Set(float64(failOver))
	ContractForecast.WithLabelValues(name, distributor, "Revoke").Set(float64(revoke))
}

// ReconcileRetries counts reconciles retried because the API server was
// unreachable or could not answer (logged once per cause, not per retry).
var ReconcileRetries = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "entitlements_reconcile_retries_total",
	Help: "Reconciles retried with backoff because the API server was unreachable, timed out or answered 429/5xx.",
}, []string{"controller"})

// subscriptionsOverLimit is how many Subscriptions an entitled partner
// holds beyond its limit; a series exists only while it is above 0.
var subscriptionsOverLimit = prometheus.NewGaugeVec(prometheus.GaugeOpts{
	Name: "entitlements_partner_subscriptions_over_limit",
	Help: "Subscriptions an entitled partner holds beyond its limit (quota admission raced a recount); absent when none.",
}, []string{"partner"})

// SetOverLimit records how many Subscriptions a partner holds beyond its
// limit (0 removes the series).
func SetOverLimit(partner string, n int64) {
	if n <= 0 {
		subscriptionsOverLimit.DeleteLabelValues(partner)
		return
	}
	subscriptionsOverLimit.WithLabelValues(partner).Set(float64(n))
}

// SetContract records a contract's phase and end (ends 0 for open-ended).
func SetContract(name, distributor string, phase v1.ContractPhase, ends int64) {
	contracts.Lock()
	defer contracts.Unlock()
	if old, ok := contracts.distributor[name]; ok && old != distributor {
		deleteContractLocked(name, old)
	}
	contracts.distributor[name] = distributor
	for _, p := range contractPhases {
		v := 0.0
		if p == phase {
			v = 1
		}
		ContractPhase.WithLabelValues(name, distributor, string(p)).Set(v)
	}
	if ends > 0 {
		ContractEnds.WithLabelValues(name, distributor).Set(float64(ends))
	} else {
		ContractEnds.DeleteLabelValues(name, distributor)
		for _, o := range []string{"FailOver", "Revoke"} {
			ContractForecast.DeleteLabelValues(name, distributor, o)
		}
	}
}

// DeleteContract drops a deleted contract's series.
func DeleteContract(name string) {
	contracts.Lock()
	defer contracts.Unlock()
	if d, ok := contracts.distributor[name]; ok {
		deleteContractLocked(name, d)
		delete(contracts.distributor, name)
	}
}

func deleteContractLocked(name, distributor string) {
	for _, p := range contractPhases {
		ContractPhase.DeleteLabelValues(name, distributor, string(p))
	}
	ContractEnds.DeleteLabelValues(name, distributor)
}

var contracts = struct {
	sync.Mutex
	distributor map[string]string
}{distributor: map[string]string{}}

type phaseTier struct{ phase, tier string }

var partners = struct {
	sync.Mutex
	by map[string]phaseTier
}{by: map[string]phaseTier{}}

// RecordPartner records a partner's series after a pass: its phase and
// tier, whether it meets its requirements (perf nil: not measured), and how
// many Subscriptions it holds over its limit, and why it is Stalled ("":
// it is not).
func RecordPartner(name string, tier v1.Tier, phase v1.PartnerPhase, perf *v1.Performance, stalled string, overLimit int64) {
	SetPartner(name, phase, tier)
	SetStalled(name, stalled)
	if perf != nil {
		SetRequirements(name, tier, perf.MeetsRequirements)
	} else {
		SetRequirements(name, "", false)
	}
	SetOverLimit(name, overLimit)
}

// ForgetPartner drops a deleted partner's series.
func ForgetPartner(name string) {
	SetPartner(name, "", "")
	SetOverLimit(name, 0)
	SetRequirements(name, "", false)
}

// SetPartner records a partner's phase and tier; "" phase forgets it
// (and its Stalled series).
func SetPartner(name string, phase v1.PartnerPhase, tier v1.Tier) {
	if phase == "" {
		SetStalled(name, "")
	}
	partners.Lock()
	defer partners.Unlock()
	old, had := partners.by[name]
	now := phaseTier{string(phase), string(tier)}
	if had && old == now {
		return
	}
	if had {
		Partners.WithLabelValues(old.phase, old.tier).Dec()
	}
	if phase == "" {
		delete(partners.by, name)
		return
	}
	partners.by[name] = now
	Partners.WithLabelValues(now.phase, now.tier).Inc()
}

// PartnersRequirements counts the measured partners of each tier by
// whether they meet its requirements (status.performance).
var PartnersRequirements = prometheus.NewGaugeVec(prometheus.GaugeOpts{
	Name: "entitlements_partners_requirements",
	Help: "Partners supplied by a contract, by tier and whether they meet the tier's requirements on it (met \"true\" or \"false\").",
}, []string{"tier", "met"})

var measured = struct {
	sync.Mutex
	by map[string][2]string
}{by: map[string][2]string{}}

// SetRequirements records whether a partner of a tier meets its
// requirements; an empty tier forgets the partner (not measured).
func SetRequirements(name string, tier v1.Tier, met bool) {
	measured.Lock()
	defer measured.Unlock()
	now := [2]string{string(tier), "false"}
	if met {
		now[1] = "true"
	}
	old, had := measured.by[name]
	if had && old == now {
		return
	}
	if had {
		PartnersRequirements.WithLabelValues(old[0], old[1]).Dec()
	}
	if tier == "" {
		delete(measured.by, name)
		return
	}
	measured.by[name] = now
	PartnersRequirements.WithLabelValues(now[0], now[1]).Inc()
}

// partnerStalled is 1 for each Stalled partner, labelled with the
// condition's reason; a series exists only while the partner is Stalled.
var partnerStalled = prometheus.NewGaugeVec(prometheus.GaugeOpts{
	Name: "entitlements_partner_stalled",
	Help: "1 while a partner is Stalled (a problem only a user can fix), labelled with the condition's reason; absent otherwise.",
}, []string{"partner", "reason"})

var stalled = struct {
	sync.Mutex
	reason map[string]string
}{reason: map[string]string{}}

// SetStalled records a partner's Stalled reason ("" when it is not
// Stalled, which removes its series).
func SetStalled(partner, reason string) {
	stalled.Lock()
	defer stalled.Unlock()
	old, had := stalled.reason[partner]
	if had && old == reason {
		return
	}
	if had {
		partnerStalled.DeleteLabelValues(partner, old)
		delete(stalled.reason, partner)
	}
	if reason != "" {
		stalled.reason[partner] = reason
		partnerStalled.WithLabelValues(partner, reason).Set(1)
	}
}

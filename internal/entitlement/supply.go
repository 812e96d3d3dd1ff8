package entitlement

import (
	"fmt"
	"strings"
	"time"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
)

// Skip says why a listed contract does not supply a partner.
type Skip struct {
	Contract string
	// Reason is one of the v1 reasons ContractNotFound, ContractMismatch,
	// ContractPending, ContractExpired.
	Reason  string
	Message string
}

// Supply is the outcome of choosing a partner's supplying contract.
type Supply struct {
	// Contract is the supplying contract's name; empty when none supplies.
	Contract string
	// Distributor of the supplying contract.
	Distributor string
	// Entitlement is the supplying contract's entry for the partner's tier.
	Entitlement *v1.TierEntitlement
	// Schedule and Phase of the supplying contract.
	Schedule Schedule
	Phase    v1.ContractPhase
	// Skipped are the listed contracts that do not supply now, in list order
	// (those after the supplying one are not examined and not listed).
	Skipped []Skip
	// NextAt is the earliest instant after now at which any listed contract
	// changes phase: when this choice must be made again. Zero if never.
	NextAt time.Time
}

// Entitled reports whether a contract supplies the partner.
func (s Supply) Entitled() bool { return s.Contract != "" }

// EntitlementFor returns a contract's entry for a tier, or nil.
func EntitlementFor(c *v1.DistributorContract, tier v1.Tier) *v1.TierEntitlement {
	for i := range c.Spec.Entitlements {
		if c.Spec.Entitlements[i].Tier == tier {
			return &c.Spec.Entitlements[i]
		}
	}
	return nil
}

// SelectSupply chooses the supplying contract: the first name in
// spec.contracts that exists, matches the partner's region, covers its tier
// and is in a supplying phase at now. contracts maps names to the contracts
// that exist (missing names are absent or nil).
func SelectSupply(spec *v1.PartnerSpec, contracts map[string]*v1.DistributorContract, now time.Time) Supply {
	var s Supply
	for _, name := range spec.Contracts {
		c := contracts[name]
		if c == nil {
			s.skip(name, v1.ReasonContractNotFound, "contract %s not found", name)
			continue
		}
		if c.Spec.Region != spec.Region {
			s.skip(name, v1.ReasonContractMismatch, "contract %s is for region %s, the partner is in %s", name, c.Spec.Region, spec.Region)
			continue
		}
		ent := EntitlementFor(c, spec.Tier)
		if ent == nil {
			s.skip(name, v1.ReasonContractMismatch, "contract %s does not cover tier %s", name, spec.Tier)
			continue
		}
		sched := ScheduleOf(&c.Spec)
		if next, ok := sched.NextTransition(now); ok && (s.NextAt.IsZero() || next.Before(s.NextAt)) {
			s.NextAt = next
		}
		phase := sched.PhaseAt(now)
		if s.Contract != "" {
			continue // already chosen; only looking for the next transition
		}
		switch {
		case Supplies(phase):
			s.Contract, s.Distributor, s.Entitlement, s.Schedule, s.Phase = name, c.Spec.Distributor, ent, sched, phase
		case phase == v1.ContractPending:
			s.skip(name, v1.ReasonContractPending, "contract %s starts at %s", name, formatTime(sched.StartsAt))
		default:
			s.skip(name, v1.ReasonContractExpired, "contract %s ended at %s", name, formatTime(sched.SupplyEndsAt()))
		}
	}
	return s
}

// skip records why a contract listed before the supplying one (or any, when
// none supplies) does not supply; those after the supplying one are not
// reported — they do not matter until it ends.
func (s *Supply) skip(name, reason, format string, args ...any) {
	if s.Contract != "" {
		return
	}
	s.Skipped = append(s.Skipped, Skip{name, reason, fmt.Sprintf(format, args...)})
}

// Successor is the contract the partner fails over to when the current
// supply ends ("" when it will be revoked then), judged at that instant
// with the contracts as they are now.
func Successor(spec *v1.PartnerSpec, contracts map[string]*v1.DistributorContract, current Supply) string {
	end := current.Schedule.SupplyEndsAt()
	if !current.Entitled() || end.IsZero() {
		return ""
	}
	return SelectSupply(spec, contracts, end).Contract
}

// describeSkips joins the skip messages for a condition message.
func describeSkips(skips []Skip) string {
	msgs := make([]string, 0, len(skips))
	for _, s := range skips {
		msgs = append(msgs, s.Message)
	}
	return strings.Join(msgs, "; ")
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }

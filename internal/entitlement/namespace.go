package entitlement

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
)

// RecountInterval is how long the operator lets kube-controller-manager
// take to count Subscriptions in a quota it has synced before it asks for
// a recount again (see v1.QuotaRecountResource).
const RecountInterval = 2 * time.Second

// QuotaEventBackstop is when a partner waiting for its quota to be written
// or synced is decided again if no event came first: the quota's own
// events (its creation, kube-controller-manager's status update) bring it
// back. Polling every RecountInterval instead would spend the workers of a
// thousand new partners on polls while kube-controller-manager catches up.
const QuotaEventBackstop = 30 * time.Second

// MessageNotCreated is the message of a listed namespace that does not
// exist because the partner is not entitled.
const MessageNotCreated = "not created: the partner is not entitled"

// QuotaObservation is what the operator saw of its ResourceQuota in a
// namespace.
type QuotaObservation struct {
	Exists bool
	// Synced: kube-controller-manager has processed the quota since the
	// subscription limit was set (status.hard has it).
	Synced bool
	// Counted: status.used has the Subscription count, so the API server
	// can judge a Subscription against it (until then it refuses every
	// one: "status unknown for quota").
	Counted bool
	// SpecHard and StatusHard are its Subscription limit in spec.hard and
	// in status.hard (what quota admission enforces).
	SpecHard, StatusHard int64
	// RecountAt is when the operator last asked for a recount (the value
	// of v1.QuotaRecountResource in spec.hard); zero if it has not.
	RecountAt time.Time
	// Extra is its spec.hard besides Subscriptions and the recount request
	// (a contract's namespaceQuota).
	Extra corev1.ResourceList
}

// ObserveQuota reads the operator's ResourceQuota in a namespace: whether
// kube-controller-manager has counted Subscriptions in it, its limits, and
// the operator's last recount request.
func ObserveQuota(q *corev1.ResourceQuota) QuotaObservation {
	_, synced := q.Status.Hard[v1.SubscriptionQuotaResource]
	_, counted := q.Status.Used[v1.SubscriptionQuotaResource]
	obs := QuotaObservation{Exists: true, Synced: synced, Counted: synced && counted}
	for name, v := range q.Spec.Hard {
		switch name {
		case v1.SubscriptionQuotaResource:
			obs.SpecHard = v.Value()
		case v1.QuotaRecountResource:
			if sec, err := strconv.ParseInt(v.String(), 10, 64); err == nil && sec > 0 {
				obs.RecountAt = time.Unix(sec, 0).UTC()
			}
		default:
			if obs.Extra == nil {
				obs.Extra = corev1.ResourceList{}
			}
			obs.Extra[name] = v
		}
	}
	if h, ok := q.Status.Hard[v1.SubscriptionQuotaResource]; ok {
		obs.StatusHard = h.Value()
	}
	return obs
}

// RevokePlan is the plan for a namespace where the partner keeps nothing:
// no RoleBinding, a quota that admits no Subscription and keeps its other
// limits. For the namespaces of a Partner being deleted that are kept, and
// for those holding what the operator wrote for a partner they no longer
// belong to.
func RevokePlan(name string, q QuotaObservation) NamespacePlan {
	return NamespacePlan{Name: name, State: v1.NamespaceRevoked, ExtraQuota: q.Extra}
}

// Claim is another partner that lists the same namespace.
type Claim struct {
	Partner string
	// Created is that Partner's creation time.
	Created time.Time
}

// ownership decides whether an existing namespace is the partner's to
// manage. The record is the partner's own status, which only the operator
// writes: a namespace is the partner's when its UID is recorded there. Two
// cases have no UID yet:
//   - the operator recorded that it was creating the namespace, with the
//     digest of a one-time token it puts on the namespace it creates
//     (v1.AnnotationCreationToken): the namespace carries the token, so
//     the operator created it and stopped before recording the UID. A
//     namespace someone else created in the moment between the record and
//     the create cannot carry the token: only the operator knew it;
//   - a record written by a version that did not record UIDs (state Granted
//     without a UID; this version writes Granted only with one): adopted
//     once, on upgrade.
//
// A namespace someone else created is the partner's only when it is handed
// over: labelled for the partner and annotated v1.AnnotationHandOverTo
// with its name by someone who may write the namespace, and named in the
// Partner's adopt annotation.
//
// Labels and annotations alone never make a namespace the partner's:
// anyone who may write namespaces can write them.
func ownership(p *v1.Partner, name string, obs NamespaceObservation) (ours bool, why string) {
	if obs.Owner != p.Name {
		if obs.Owner == "" {
			return false, fmt.Sprintf("namespace %s exists and does not belong to partner %s; it is left untouched", name, p.Name)
		}
		return false, fmt.Sprintf("namespace %s belongs to partner %s; it is left untouched", name, obs.Owner)
	}
	rec, found := recordOf(p, name)
	switch {
	case found && rec.UID != "":
		if rec.UID == obs.UID {
			return true, ""
		}
		return false, fmt.Sprintf("namespace %s was deleted and created again by someone else (UID %s, the operator created %s); it is left untouched", name, obs.UID, rec.UID)
	case found && rec.CreationDigest != "":
		if createdByOperator(rec, obs) {
			return true, ""
		}
		if !handedOver(p, name, obs) {
			return false, fmt.Sprintf("namespace %s was created by someone else while the operator was creating it for partner %s; it is left untouched. %s", name, p.Name, handOverHint(p, name))
		}
	case found && rec.State == v1.NamespaceGranted:
		return true, "" // recorded by a version that did not record UIDs
	}
	if handedOver(p, name, obs) {
		return true, ""
	}
	return false, fmt.Sprintf("namespace %s is labelled for partner %s, but the operator did not create it for the partner (its UID is not in status.namespaces); it is left untouched. %s", name, p.Name, handOverHint(p, name))
}

// handOverHint tells a user how to hand a namespace over.
func handOverHint(p *v1.Partner, name string) string {
	return fmt.Sprintf("To hand it over, annotate the namespace %s=%s and name it in the Partner's annotation %s", v1.AnnotationHandOverTo, p.Name, v1.AnnotationAdopt)
}

// createdByOperator reports whether the namespace carries the token whose
// digest the record holds.
func createdByOperator(rec v1.NamespaceStatus, obs NamespaceObservation) bool {
	return rec.CreationDigest != "" && obs.CreationToken != "" && TokenDigest(obs.CreationToken) == rec.CreationDigest
}

// TokenDigest is the digest of a creation token as status records it.
func TokenDigest(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// handedOver reports whether both sides consent to the hand-over of a
// namespace the operator did not create: the namespace names the partner
// (v1.AnnotationHandOverTo, written by someone who may write the
// namespace, which a Partner's editors may not) and the Partner's adopt
// annotation names the namespace.
func handedOver(p *v1.Partner, name string, obs NamespaceObservation) bool {
	return obs.HandOverTo == p.Name && adoptable(p, name)
}

// adoptable reports whether the Partner's adopt annotation names the
// namespace.
func adoptable(p *v1.Partner, name string) bool {
	for _, n := range strings.Split(p.Annotations[v1.AnnotationAdopt], ",") {
		if strings.TrimSpace(n) == name {
			return true
		}
	}
	return false
}

func recordOf(p *v1.Partner, name string) (v1.NamespaceStatus, bool) {
	for _, n := range p.Status.Namespaces {
		if n.Name == name {
			return n, true
		}
	}
	return v1.NamespaceStatus{}, false
}

// precedence returns the partner that gets a namespace no one owns yet when
// several list it: the one created first, then by name. It returns "" when
// p has precedence.
func precedence(p *v1.Partner, claims []Claim) string {
	best, bestAt := "", p.CreationTimestamp.Time
	for _, c := range claims {
		if c.Partner == p.Name {
			continue
		}
		if c.Created.Before(bestAt) || (c.Created.Equal(bestAt) && c.Partner < cmpName(best, p.Name)) {
			best, bestAt = c.Partner, c.Created
		}
	}
	return best
}

func cmpName(best, self string) string {
	if best == "" {
		return self
	}
	return best
}

// quotaWait decides a granted namespace's quota count: whether it is
// usable yet, and if not, whether to ask kube-controller-manager for a
// recount (and with what value) and when to look again.
//
// kube-controller-manager counts a quota when it is created or its
// spec.hard changes, and otherwise only at its full resync (5 minutes by
// default). A quota it synced before it could count Subscriptions (their
// CRD had just been installed and its discovery had not caught up, about
// 30 s) keeps status.used without the Subscription count until that
// resync, and the API server refuses every Subscription meanwhile. The
// operator then changes spec.hard by setting v1.QuotaRecountResource to
// the time of the request, at most every RecountInterval; no object is
// counted against it, so it limits nothing.
func quotaWait(q QuotaObservation, now time.Time) (recountAt time.Time, requeueAt time.Time, message string) {
	switch {
	case q.Counted:
		return time.Time{}, time.Time{}, ""
	case !q.Exists:
		return time.Time{}, now.Add(QuotaEventBackstop), "waiting for the ResourceQuota to be written"
	case !q.Synced:
		return q.RecountAt, now.Add(QuotaEventBackstop), "waiting for kube-controller-manager to sync the ResourceQuota; until then the API server refuses Subscriptions here"
	}
	recountAt = q.RecountAt
	if recountAt.IsZero() || !now.Before(recountAt.Add(RecountInterval)) {
		recountAt = now.Truncate(time.Second)
	}
	return recountAt, recountAt.Add(RecountInterval), "waiting for kube-controller-manager to count Subscriptions in the ResourceQuota (recount requested); until then the API server refuses Subscriptions here"
}

// adopted reports whether a namespace that is the partner's (see
// ownership) was adopted rather than created by the operator: recorded as
// adopted before, or ours neither by its recorded UID nor by a recorded
// creation.
func adopted(p *v1.Partner, name string, obs NamespaceObservation) bool {
	rec, found := recordOf(p, name)
	switch {
	case found && rec.Adopted:
		return true
	case found && rec.UID != "" && rec.UID == obs.UID:
		return false
	case found && rec.UID == "" && createdByOperator(rec, obs):
		return false
	}
	return true
}

// recordUID is the UID to record for a namespace in status: the observed
// one for an existing namespace that is the partner's.
func recordUID(obs NamespaceObservation, ours bool) types.UID {
	if obs.Exists && ours {
		return obs.UID
	}
	return ""
}

// CreationsToRecord lists the namespaces the plan creates.
func CreationsToRecord(plan *PartnerPlan) []string {
	var names []string
	for _, np := range plan.Namespaces {
		if np.Create {
			names = append(names, np.Name)
		}
	}
	return names
}

// RecordCreations marks the namespaces in status as being created, each
// with the digest of the token it is created with (name → digest).
func RecordCreations(st *v1.PartnerStatus, digests map[string]string) {
	names := slices.Sorted(maps.Keys(digests))
	for _, name := range names {
		entry := v1.NamespaceStatus{Name: name, State: v1.NamespacePending, Message: "creating the namespace", CreationDigest: digests[name]}
		i := slices.IndexFunc(st.Namespaces, func(n v1.NamespaceStatus) bool { return n.Name == name })
		if i < 0 {
			st.Namespaces = append(st.Namespaces, entry)
			continue
		}
		entry.SubscriptionsUsed = st.Namespaces[i].SubscriptionsUsed
		st.Namespaces[i] = entry
	}
}

// recordCreations gives each namespace the plan creates a fresh token (on
// the namespace, in its annotations) and returns the status that records
// their digests, to be written before any of the plan's writes: a
// namespace the operator created and crashed before recording the UID of
// is then still known as its own (see ownership), and one somebody else
// created first is not. Each create has its own token and record: nothing
// but the namespace keeps a token. Nil when the plan creates nothing.
func recordCreations(p *v1.Partner, plan *PartnerPlan, newToken func() string) *v1.PartnerStatus {
	digests := map[string]string{}
	for i := range plan.Namespaces {
		np := &plan.Namespaces[i]
		if !np.Create {
			continue
		}
		token := "token-" + np.Name
		if newToken != nil {
			token = newToken()
		}
		np.Annotations = map[string]string{v1.AnnotationCreatedBy: p.Name, v1.AnnotationCreationToken: token}
		maps.Copy(np.Annotations, np.View)
		digests[np.Name] = TokenDigest(token)
	}
	if len(digests) == 0 {
		return nil
	}
	st := p.Status.DeepCopy()
	RecordCreations(st, digests)
	return st
}

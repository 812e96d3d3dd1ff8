package api_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/partnerops/entitlement-operator/internal/crdschema"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// Valid objects of each kind. Every invalid case below is one of these with
// one thing wrong, so the refusal can only come from that one thing.
var validBase = map[string]string{
	"Partner": `
apiVersion: entitlements.partnerops.io/v1alpha1
kind: Partner
metadata: {name: base}
spec:
  displayName: ACME Systems GmbH
  tier: Advanced
  type: SystemIntegrator
  specializations: [Virtualization, Storage]
  region: DE
  contracts: [bytec-de, magirus-de]
  namespaces: [acme-prod, acme-dev]
  access:
  - {kind: Group, name: acme-admins}
  - {kind: User, name: jane@acme.example}
  - {kind: ServiceAccount, name: deployer, namespace: acme-ci}
  suspended: false
  deletionPolicy: Retain
`,
	"DistributorContract": `
apiVersion: entitlements.partnerops.io/v1alpha1
kind: DistributorContract
metadata: {name: base}
spec:
  distributor: Bytec
  region: DE
  startsAt: "2025-12-01T00:00:00Z"
  endsAt: "2026-11-30T23:59:59Z"
  noticePeriod: 720h
  gracePeriod: 24h
  entitlements:
  - {tier: Ready, subscriptions: 10, maxNamespaces: 1}
  - tier: Advanced
    subscriptions: 50
    maxNamespaces: 3
    clusterRole: entitlements-partner-advanced
    namespaceQuota: {requests.cpu: "8", requests.memory: 16Gi, pods: "50", count/deployments.apps: "20", requests.nvidia.com/gpu: "1", hugepages-2Mi: 1Gi}
`,
	"Subscription": `
apiVersion: entitlements.partnerops.io/v1alpha1
kind: Subscription
metadata: {name: base, namespace: api-validation}
spec:
  product: Directory Server
  customer: Stadtwerke Musterstadt
  units: 25
`,
}

// invalidCase is one manifest the API server must refuse.
type invalidCase struct {
	name string
	kind string
	// patch is a JSON merge patch, in YAML, applied to validBase[kind]:
	// maps merge, null removes a field, lists are replaced whole.
	patch string
	// field is the path the refusal must name (a StatusCause's field).
	field string
	// msg must appear in that cause's message; for a CEL rule it is the
	// rule's message, for OpenAPI checks the server's wording.
	msg string
}

const (
	tierValues   = `supported values: "Ready", "Advanced", "Premier"`
	nsRuleMsg    = "a partner namespace must not be default or start with kube-"
	dnsLabel     = "should match '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$'"
	regionRegexp = "should match '^[A-Z]{2}$'"
	noticeMsg    = "noticePeriod must be a non-negative duration such as 720h, 90m or 0s"
	graceMsg     = "gracePeriod must be a non-negative duration such as 24h, 90m or 0s"
	endsMsg      = "endsAt must be after startsAt"
	saNeedsNS    = "a ServiceAccount subject needs a namespace"
	onlySAHasNS  = "only a ServiceAccount subject may have a namespace"
	systemName   = "a User or Group named system:... is one of Kubernetes' own (system:authenticated is every user of the cluster): name the partner's people or groups"
)

var invalidCases = []invalidCase{
	// ---- Partner: required fields.
	{name: "partner without spec", kind: "Partner", patch: `spec: null`, field: "spec", msg: "Required value"},
	// A rule on the object root has no field path (the API server prints
	// "<nil>"); its message names metadata.name instead.
	{name: "partner name longer than a label value", kind: "Partner", patch: `metadata: {name: a-partner-name-that-is-far-too-long-to-be-a-label-value-on-namespaces}`,
		field: "<nil>", msg: "metadata.name of a Partner must be at most 63 characters: it is the value of the entitlements.partnerops.io/partner label on its namespaces"},
	{name: "partner without tier", kind: "Partner", patch: `spec: {tier: null}`, field: "spec.tier", msg: "Required value"},
	{name: "partner without region", kind: "Partner", patch: `spec: {region: null}`, field: "spec.region", msg: "Required value"},
	{name: "partner without contracts", kind: "Partner", patch: `spec: {contracts: null}`, field: "spec.contracts", msg: "Required value"},
	{name: "partner without namespaces", kind: "Partner", patch: `spec: {namespaces: null}`, field: "spec.namespaces", msg: "Required value"},
	{name: "partner without access", kind: "Partner", patch: `spec: {access: null}`, field: "spec.access", msg: "Required value"},

	// ---- Partner: enums.
	{name: "unknown tier", kind: "Partner", patch: `spec: {tier: Gold}`, field: "spec.tier", msg: tierValues},
	{name: "tier in lower case", kind: "Partner", patch: `spec: {tier: premier}`, field: "spec.tier", msg: tierValues},
	{name: "unknown partner type", kind: "Partner", patch: `spec: {type: Distributor}`, field: "spec.type",
		msg: `supported values: "Reseller", "SystemIntegrator", "ApplicationDeveloper", "ServiceProvider"`},
	{name: "unknown specialization", kind: "Partner", patch: `spec: {specializations: [Storage, Networking]}`, field: "spec.specializations[1]",
		msg: `supported values: "Virtualization", "Storage", "DirectoryServices", "Desktop", "Middleware"`},
	{name: "specialization twice", kind: "Partner", patch: `spec: {specializations: [Middleware, Middleware]}`, field: "spec.specializations[1]", msg: "Duplicate value"},
	{name: "unknown deletionPolicy", kind: "Partner", patch: `spec: {deletionPolicy: Orphan}`, field: "spec.deletionPolicy", msg: `supported values: "Retain", "Delete"`},
	{name: "unknown subject kind", kind: "Partner", patch: `spec: {access: [{kind: Robot, name: r2d2}]}`, field: "spec.access[0].kind",
		msg: `supported values: "User", "Group", "ServiceAccount"`},

	// ---- Partner: region.
	{name: "partner region in lower case", kind: "Partner", patch: `spec: {region: de}`, field: "spec.region", msg: regionRegexp},
	{name: "partner region alpha-3", kind: "Partner", patch: `spec: {region: DEU}`, field: "spec.region", msg: regionRegexp},

	// ---- Partner: namespaces.
	{name: "namespace with upper case", kind: "Partner", patch: `spec: {namespaces: [Acme-Prod]}`, field: "spec.namespaces[0]", msg: dnsLabel},
	{name: "namespace with underscore", kind: "Partner", patch: `spec: {namespaces: [acme-prod, acme_dev]}`, field: "spec.namespaces[1]", msg: dnsLabel},
	{name: "namespace ending in a dash", kind: "Partner", patch: `spec: {namespaces: [acme-]}`, field: "spec.namespaces[0]", msg: dnsLabel},
	{name: "namespace with a dot", kind: "Partner", patch: `spec: {namespaces: [acme.prod]}`, field: "spec.namespaces[0]", msg: dnsLabel},
	{name: "namespace of 64 characters", kind: "Partner", patch: `spec: {namespaces: [` + strings.Repeat("a", 64) + `]}`, field: "spec.namespaces[0]", msg: "Too long"},
	{name: "empty namespace name", kind: "Partner", patch: `spec: {namespaces: [""]}`, field: "spec.namespaces[0]", msg: "at least 1 chars long"},
	{name: "namespace kube-system", kind: "Partner", patch: `spec: {namespaces: [kube-system]}`, field: "spec.namespaces[0]", msg: nsRuleMsg},
	{name: "namespace kube-public", kind: "Partner", patch: `spec: {namespaces: [acme-prod, kube-public]}`, field: "spec.namespaces[1]", msg: nsRuleMsg},
	{name: "namespace kube-node-lease", kind: "Partner", patch: `spec: {namespaces: [kube-node-lease]}`, field: "spec.namespaces[0]", msg: nsRuleMsg},
	{name: "namespace default", kind: "Partner", patch: `spec: {namespaces: [default]}`, field: "spec.namespaces[0]", msg: nsRuleMsg},
	{name: "namespace twice", kind: "Partner", patch: `spec: {namespaces: [acme-prod, acme-dev, acme-prod]}`, field: "spec.namespaces[2]", msg: "Duplicate value"},
	{name: "no namespaces", kind: "Partner", patch: `spec: {namespaces: []}`, field: "spec.namespaces", msg: "should have at least 1 items"},
	{name: "33 namespaces", kind: "Partner", patch: `spec: {namespaces: [` + numbered("ns", 33) + `]}`, field: "spec.namespaces", msg: "must have at most 32 items"},

	// ---- Partner: contracts.
	{name: "contract twice", kind: "Partner", patch: `spec: {contracts: [bytec-de, magirus-de, bytec-de]}`, field: "spec.contracts", msg: "contracts must not list a contract twice"},
	{name: "no contracts", kind: "Partner", patch: `spec: {contracts: []}`, field: "spec.contracts", msg: "should have at least 1 items"},
	{name: "empty contract name", kind: "Partner", patch: `spec: {contracts: [bytec-de, ""]}`, field: "spec.contracts[1]", msg: "at least 1 chars long"},
	{name: "17 contracts", kind: "Partner", patch: `spec: {contracts: [` + numbered("dc", 17) + `]}`, field: "spec.contracts", msg: "must have at most 16 items"},

	// ---- Partner: access.
	{name: "no access", kind: "Partner", patch: `spec: {access: []}`, field: "spec.access", msg: "should have at least 1 items"},
	{name: "ServiceAccount without namespace", kind: "Partner", patch: `spec: {access: [{kind: ServiceAccount, name: deployer}]}`, field: "spec.access[0]", msg: saNeedsNS},
	{name: "ServiceAccount with empty namespace", kind: "Partner", patch: `spec: {access: [{kind: Group, name: g}, {kind: ServiceAccount, name: deployer, namespace: ""}]}`, field: "spec.access[1]", msg: saNeedsNS},
	{name: "User with namespace", kind: "Partner", patch: `spec: {access: [{kind: User, name: jane@acme.example, namespace: acme-prod}]}`, field: "spec.access[0]", msg: onlySAHasNS},
	{name: "Group with namespace", kind: "Partner", patch: `spec: {access: [{kind: User, name: jane}, {kind: Group, name: acme-admins, namespace: acme-prod}]}`, field: "spec.access[1]", msg: onlySAHasNS},
	{name: "every authenticated user", kind: "Partner", patch: `spec: {access: [{kind: Group, name: acme-admins}, {kind: Group, name: "system:authenticated"}]}`, field: "spec.access[1]", msg: systemName},
	{name: "every unauthenticated user", kind: "Partner", patch: `spec: {access: [{kind: Group, name: "system:unauthenticated"}]}`, field: "spec.access[0]", msg: systemName},
	{name: "system group", kind: "Partner", patch: `spec: {access: [{kind: Group, name: "system:masters"}]}`, field: "spec.access[0]", msg: systemName},
	{name: "system user", kind: "Partner", patch: `spec: {access: [{kind: User, name: "system:anonymous"}]}`, field: "spec.access[0]", msg: systemName},
	{name: "subject without name", kind: "Partner", patch: `spec: {access: [{kind: Group}]}`, field: "spec.access[0].name", msg: "Required value"},
	{name: "subject with empty name", kind: "Partner", patch: `spec: {access: [{kind: Group, name: ""}]}`, field: "spec.access[0].name", msg: "at least 1 chars long"},
	{name: "ServiceAccount namespace not a DNS label", kind: "Partner", patch: `spec: {access: [{kind: ServiceAccount, name: deployer, namespace: ACME}]}`, field: "spec.access[0].namespace", msg: dnsLabel},

	// ---- Partner: other fields.
	{name: "display name too long", kind: "Partner", patch: `spec: {displayName: ` + strings.Repeat("x", 257) + `}`, field: "spec.displayName", msg: "Too long"},
	{name: "suspended not a boolean", kind: "Partner", patch: `spec: {suspended: "yes"}`, field: "spec.suspended", msg: "must be of type boolean"},
	{name: "misspelt partner field (strict)", kind: "Partner", patch: `spec: {contract: [bytec-de]}`, field: "spec.contract", msg: "unknown field"},

	// ---- DistributorContract: required fields.
	{name: "contract without spec", kind: "DistributorContract", patch: `spec: null`, field: "spec", msg: "Required value"},
	{name: "contract without distributor", kind: "DistributorContract", patch: `spec: {distributor: null}`, field: "spec.distributor", msg: "Required value"},
	{name: "contract without region", kind: "DistributorContract", patch: `spec: {region: null}`, field: "spec.region", msg: "Required value"},
	{name: "contract without startsAt", kind: "DistributorContract", patch: `spec: {startsAt: null}`, field: "spec.startsAt", msg: "Required value"},
	{name: "contract without entitlements", kind: "DistributorContract", patch: `spec: {entitlements: null}`, field: "spec.entitlements", msg: "Required value"},
	{name: "entitlement without tier", kind: "DistributorContract", patch: `spec: {entitlements: [{subscriptions: 10}]}`, field: "spec.entitlements[0].tier", msg: "Required value"},
	{name: "entitlement without subscriptions", kind: "DistributorContract", patch: `spec: {entitlements: [{tier: Ready}]}`, field: "spec.entitlements[0].subscriptions", msg: "Required value"},

	// ---- DistributorContract: values.
	{name: "empty distributor", kind: "DistributorContract", patch: `spec: {distributor: ""}`, field: "spec.distributor", msg: "at least 1 chars long"},
	{name: "contract region as a name", kind: "DistributorContract", patch: `spec: {region: Germany}`, field: "spec.region", msg: regionRegexp},
	{name: "contract region in lower case", kind: "DistributorContract", patch: `spec: {region: de}`, field: "spec.region", msg: regionRegexp},
	{name: "startsAt not a date-time", kind: "DistributorContract", patch: `spec: {startsAt: 1 Dec 2025}`, field: "spec.startsAt", msg: "date-time"},
	{name: "startsAt a date only", kind: "DistributorContract", patch: `spec: {startsAt: "2025-12-01"}`, field: "spec.startsAt", msg: "date-time"},
	{name: "startsAt in lower case (Go cannot read it)", kind: "DistributorContract", patch: `spec: {startsAt: "2025-12-01t00:00:00z", endsAt: null}`, field: "spec.startsAt", msg: "should match"},
	{name: "endsAt without zone", kind: "DistributorContract", patch: `spec: {endsAt: "2026-11-30T23:59:59"}`, field: "spec.endsAt", msg: "should match"},
	{name: "endsAt equal to startsAt", kind: "DistributorContract", patch: `spec: {endsAt: "2025-12-01T00:00:00Z"}`, field: "spec.endsAt", msg: endsMsg},
	{name: "endsAt equal to startsAt in another zone", kind: "DistributorContract", patch: `spec: {endsAt: "2025-12-01T01:00:00+01:00"}`, field: "spec.endsAt", msg: endsMsg},
	{name: "endsAt before startsAt", kind: "DistributorContract", patch: `spec: {endsAt: "2025-11-30T23:59:59Z"}`, field: "spec.endsAt", msg: endsMsg},
	{name: "negative noticePeriod", kind: "DistributorContract", patch: `spec: {noticePeriod: "-1h"}`, field: "spec.noticePeriod", msg: noticeMsg},
	{name: "noticePeriod in days", kind: "DistributorContract", patch: `spec: {noticePeriod: 30 days}`, field: "spec.noticePeriod", msg: noticeMsg},
	{name: "noticePeriod as a number", kind: "DistributorContract", patch: `spec: {noticePeriod: 720}`, field: "spec.noticePeriod", msg: "must be of type string"},
	{name: "noticePeriod beyond Go's range", kind: "DistributorContract", patch: `spec: {noticePeriod: 9999999h}`, field: "spec.noticePeriod", msg: noticeMsg},
	{name: "negative gracePeriod", kind: "DistributorContract", patch: `spec: {gracePeriod: "-24h"}`, field: "spec.gracePeriod", msg: graceMsg},
	{name: "gracePeriod in days", kind: "DistributorContract", patch: `spec: {gracePeriod: 1d}`, field: "spec.gracePeriod", msg: graceMsg},
	{name: "gracePeriod empty", kind: "DistributorContract", patch: `spec: {gracePeriod: ""}`, field: "spec.gracePeriod", msg: graceMsg},
	{name: "no entitlements", kind: "DistributorContract", patch: `spec: {entitlements: []}`, field: "spec.entitlements", msg: "should have at least 1 items"},
	{name: "unknown tier in entitlements", kind: "DistributorContract", patch: `spec: {entitlements: [{tier: Gold, subscriptions: 1}]}`, field: "spec.entitlements[0].tier", msg: tierValues},
	{name: "tier twice in entitlements", kind: "DistributorContract", patch: `spec: {entitlements: [{tier: Ready, subscriptions: 1}, {tier: Premier, subscriptions: 9}, {tier: Ready, subscriptions: 5}]}`,
		field: "spec.entitlements[2]", msg: "Duplicate value"},
	{name: "negative subscriptions", kind: "DistributorContract", patch: `spec: {entitlements: [{tier: Ready, subscriptions: -1}]}`, field: "spec.entitlements[0].subscriptions", msg: "greater than or equal to 0"},
	{name: "subscriptions not a number", kind: "DistributorContract", patch: `spec: {entitlements: [{tier: Ready, subscriptions: ten}]}`, field: "spec.entitlements[0].subscriptions", msg: "must be of type integer"},
	{name: "maxNamespaces 0", kind: "DistributorContract", patch: `spec: {entitlements: [{tier: Ready, subscriptions: 1, maxNamespaces: 0}]}`, field: "spec.entitlements[0].maxNamespaces", msg: "greater than or equal to 1"},
	{name: "maxNamespaces 101", kind: "DistributorContract", patch: `spec: {entitlements: [{tier: Premier, subscriptions: 1, maxNamespaces: 101}]}`, field: "spec.entitlements[0].maxNamespaces", msg: "less than or equal to 100"},
	{name: "clusterRole with upper case and space", kind: "DistributorContract", patch: `spec: {entitlements: [{tier: Ready, subscriptions: 1, clusterRole: Partner Admin}]}`,
		field: "spec.entitlements[0].clusterRole", msg: "should match"},
	{name: "clusterRole with a slash", kind: "DistributorContract", patch: `spec: {entitlements: [{tier: Ready, subscriptions: 1, clusterRole: partner/admin}]}`,
		field: "spec.entitlements[0].clusterRole", msg: "should match"},
	{name: "namespaceQuota not a quantity", kind: "DistributorContract", patch: `spec: {entitlements: [{tier: Ready, subscriptions: 1, namespaceQuota: {requests.cpu: lots}}]}`,
		field: "spec.entitlements[0].namespaceQuota.requests.cpu", msg: "should match"},
	{name: "namespaceQuota key misspelt", kind: "DistributorContract", patch: `spec: {entitlements: [{tier: Ready, subscriptions: 1, namespaceQuota: {requests.cpus: "2"}}]}`,
		field: "spec.entitlements[0].namespaceQuota", msg: "namespaceQuota keys must be ResourceQuota resource names: a standard one such as requests.cpu, limits.memory or pods, or a qualified one such as count/deployments.apps"},
	{name: "namespaceQuota sets the subscription count", kind: "DistributorContract", patch: `spec: {entitlements: [{tier: Ready, subscriptions: 1, namespaceQuota: {count/subscriptions.entitlements.partnerops.io: "100"}}]}`,
		field: "spec.entitlements[0].namespaceQuota", msg: "namespaceQuota must not set count/subscriptions.entitlements.partnerops.io or entitlements.partnerops.io/recount: the operator sets them"},
	{name: "namespaceQuota sets the recount key", kind: "DistributorContract", patch: `spec: {entitlements: [{tier: Ready, subscriptions: 1, namespaceQuota: {entitlements.partnerops.io/recount: "1"}}]}`,
		field: "spec.entitlements[0].namespaceQuota", msg: "the operator sets them"},
	{name: "namespaceQuota key storage (no ResourceQuota accepts it)", kind: "DistributorContract", patch: `spec: {entitlements: [{tier: Ready, subscriptions: 1, namespaceQuota: {storage: 10Gi}}]}`,
		field: "spec.entitlements[0].namespaceQuota", msg: "namespaceQuota keys must be ResourceQuota resource names"},
	{name: "namespaceQuota negative value", kind: "DistributorContract", patch: `spec: {entitlements: [{tier: Ready, subscriptions: 1, namespaceQuota: {requests.cpu: "-1"}}]}`,
		field: "spec.entitlements[0].namespaceQuota", msg: "namespaceQuota values must not be negative"},
	{name: "namespaceQuota with 11 keys", kind: "DistributorContract", patch: `spec: {entitlements: [{tier: Ready, subscriptions: 1, namespaceQuota: {pods: "1", services: "1", secrets: "1", configmaps: "1", cpu: "1", memory: 1Gi, requests.cpu: "1", requests.memory: 1Gi, limits.cpu: "1", limits.memory: 1Gi, requests.storage: 1Gi}}]}`,
		field: "spec.entitlements[0].namespaceQuota", msg: "must have at most 10 items"},
	{name: "quotaPolicy unknown", kind: "DistributorContract", patch: `spec: {entitlements: [{tier: Ready, subscriptions: 1, quotaPolicy: Exact}]}`,
		field: "spec.entitlements[0].quotaPolicy", msg: "Unsupported value"},
	{name: "requirements empty", kind: "DistributorContract", patch: `spec: {entitlements: [{tier: Ready, subscriptions: 1, requirements: {}}]}`,
		field: "spec.entitlements[0].requirements", msg: "should have at least 1 properties"},
	{name: "requirements period under an hour", kind: "DistributorContract", patch: `spec: {entitlements: [{tier: Ready, subscriptions: 1, requirements: {minSubscriptions: 1, period: 30m}}]}`,
		field: "spec.entitlements[0].requirements.period", msg: "period must be between 1h and 87600h (10 years)"},
	{name: "requirements more specializations than exist", kind: "DistributorContract", patch: `spec: {entitlements: [{tier: Ready, subscriptions: 1, requirements: {specializations: 6}}]}`,
		field: "spec.entitlements[0].requirements.specializations", msg: "should be less than or equal to 5"},
	{name: "requirements negative units", kind: "DistributorContract", patch: `spec: {entitlements: [{tier: Ready, subscriptions: 1, requirements: {minUnits: -1}}]}`,
		field: "spec.entitlements[0].requirements.minUnits", msg: "should be greater than or equal to 0"},
	{name: "product name on two lines", kind: "DistributorContract", patch: "spec: {entitlements: [{tier: Ready, subscriptions: 1, products: [{name: \"Directory\\nServer\"}]}]}",
		field: "spec.entitlements[0].products[0].name", msg: "product names must be on one line"},
	{name: "product unknown specialization", kind: "DistributorContract", patch: `spec: {entitlements: [{tier: Ready, subscriptions: 1, products: [{name: Backup, specialization: Cooking}]}]}`,
		field: "spec.entitlements[0].products[0].specialization", msg: "Unsupported value"},
	{name: "product listed twice", kind: "DistributorContract", patch: `spec: {entitlements: [{tier: Ready, subscriptions: 1, products: [{name: Backup}, {name: Backup}]}]}`,
		field: "spec.entitlements[0].products[1]", msg: "Duplicate value"},
	{name: "misspelt endsAt (strict)", kind: "DistributorContract", patch: `spec: {endsAT: "2026-11-30T23:59:59Z"}`, field: "spec.endsAT", msg: "unknown field"},

	// ---- Subscription.
	{name: "subscription without spec", kind: "Subscription", patch: `spec: null`, field: "spec", msg: "Required value"},
	{name: "subscription without product", kind: "Subscription", patch: `spec: {product: null}`, field: "spec.product", msg: "Required value"},
	{name: "subscription without customer", kind: "Subscription", patch: `spec: {customer: null}`, field: "spec.customer", msg: "Required value"},
	{name: "empty product", kind: "Subscription", patch: `spec: {product: ""}`, field: "spec.product", msg: "at least 1 chars long"},
	{name: "empty customer", kind: "Subscription", patch: `spec: {customer: ""}`, field: "spec.customer", msg: "at least 1 chars long"},
	{name: "units 0", kind: "Subscription", patch: `spec: {units: 0}`, field: "spec.units", msg: "greater than or equal to 1"},
	{name: "negative units", kind: "Subscription", patch: `spec: {units: -5}`, field: "spec.units", msg: "greater than or equal to 1"},
	{name: "units over a million", kind: "Subscription", patch: `spec: {units: 1000001}`, field: "spec.units", msg: "less than or equal to 1000000"},
	{name: "product too long", kind: "Subscription", patch: `spec: {product: ` + strings.Repeat("p", 129) + `}`, field: "spec.product", msg: "Too long"},
}

// numbered is a YAML flow list of n distinct names: p-1, p-2, ...
func numbered(prefix string, n int) string {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("%s-%d", prefix, i+1)
	}
	return strings.Join(names, ", ")
}

// buildCase is validBase[kind] with the case's patch applied, named after
// the case so that an unexpected acceptance does not collide.
func buildCase(i int, c invalidCase) (*unstructured.Unstructured, error) {
	obj, err := parseObject(validBase[c.kind])
	if err != nil {
		return nil, err
	}
	patch := map[string]any{}
	if err := yaml.Unmarshal([]byte(c.patch), &patch); err != nil {
		return nil, fmt.Errorf("patch %q: %w", c.patch, err)
	}
	mergePatch(obj.Object, patch)
	if meta, _ := patch["metadata"].(map[string]any); meta["name"] == nil {
		obj.SetName(fmt.Sprintf("invalid-%03d", i))
	}
	return obj, nil
}

// TestValidBasesAreAccepted guards the invalid cases: the objects they start
// from are accepted, so each refusal comes from the one change a case makes.
func TestValidBasesAreAccepted(t *testing.T) {
	needCluster(t)
	ctx := testContext(t)
	if err := ensureNamespace(ctx, "api-validation"); err != nil {
		t.Fatal(err)
	}
	for kind, doc := range validBase {
		obj, err := parseObject(doc)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := createStrict(ctx, obj, true); err != nil {
			t.Errorf("valid %s refused: %v", kind, err)
		}
	}
}

// TestInvalidManifestsAreRefused: each manifest is refused by the API server,
// and the refusal names the field to fix and, for CEL rules, says why in the
// rule's own words.
func TestInvalidManifestsAreRefused(t *testing.T) {
	needCluster(t)
	ctx := testContext(t)
	if err := ensureNamespace(ctx, "api-validation"); err != nil {
		t.Fatal(err)
	}
	if len(invalidCases) < 35 {
		t.Fatalf("only %d invalid cases; the issue asks for at least 35", len(invalidCases))
	}
	seen := map[string]bool{}
	for i, c := range invalidCases {
		if seen[c.name] {
			t.Fatalf("case name %q used twice", c.name)
		}
		seen[c.name] = true
		t.Run(c.name, func(t *testing.T) {
			obj, err := buildCase(i, c)
			if err != nil {
				t.Fatal(err)
			}
			// A real create, not a dry run: what a user's kubectl apply does.
			_, err = createStrict(ctx, obj, false)
			if err == nil {
				t.Fatalf("accepted; want a refusal naming %s (%q)", c.field, c.msg)
			}
			if err := refusalNames(err, c.field, c.msg); err != nil {
				t.Error(err)
			}
		})
	}
	t.Logf("%d invalid manifests tried", len(invalidCases))
}

// refusalNames checks that err is the API server refusing an object because
// of field, with msg in the explanation.
func refusalNames(err error, field, msg string) error {
	var status apierrors.APIStatus
	if !errors.As(err, &status) {
		return fmt.Errorf("not an API status error: %v", err)
	}
	s := status.Status()
	switch {
	case apierrors.IsInvalid(err):
		// Field errors: one StatusCause per offending field.
		var causes []string
		if s.Details != nil {
			for _, cause := range s.Details.Causes {
				if cause.Field == field && strings.Contains(cause.Message, msg) {
					if !strings.Contains(err.Error(), field) {
						return fmt.Errorf("the error text a user sees does not name %s: %v", field, err)
					}
					return nil
				}
				causes = append(causes, fmt.Sprintf("%s: %s", cause.Field, cause.Message))
			}
		}
		return fmt.Errorf("no cause for field %s with %q; causes:\n  %s", field, msg, strings.Join(causes, "\n  "))
	case apierrors.IsBadRequest(err):
		// Strict field validation: `strict decoding error: unknown field "spec.x"`.
		if strings.Contains(s.Message, msg) && strings.Contains(s.Message, `"`+field+`"`) {
			return nil
		}
		return fmt.Errorf("bad request does not name %q with %q: %s", field, msg, s.Message)
	}
	return fmt.Errorf("want Invalid (422) naming %s, got %s (%d): %v", field, s.Reason, s.Code, err)
}

// TestContractTransitionRules: distributor and region of an existing
// contract cannot change (a different distributor or region is a different
// contract), while the dates can move: ending a contract early "by mutual
// agreement" is an edit of endsAt.
func TestContractTransitionRules(t *testing.T) {
	needCluster(t)
	ctx := testContext(t)
	ri := dyn.Resource(gvrContract)
	obj, err := parseObject(validBase["DistributorContract"])
	if err != nil {
		t.Fatal(err)
	}
	obj.SetName("transitions")
	// Open-ended first, as magirus-de and lxpn-de are.
	unstructured.RemoveNestedField(obj.Object, "spec", "endsAt")
	if _, err := ri.Create(ctx, obj, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ri.Delete(context.Background(), "transitions", metav1.DeleteOptions{}) })

	update := func(change func(spec map[string]any)) error {
		cur, err := ri.Get(ctx, "transitions", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		spec := cur.Object["spec"].(map[string]any)
		change(spec)
		_, err = ri.Update(ctx, cur, metav1.UpdateOptions{FieldValidation: metav1.FieldValidationStrict})
		return err
	}
	refused := []struct {
		name   string
		change func(spec map[string]any)
		field  string
		msg    string
	}{
		{"change distributor", func(s map[string]any) { s["distributor"] = "LXPN" }, "spec.distributor", "distributor is immutable; create a new contract instead"},
		{"rename distributor's case", func(s map[string]any) { s["distributor"] = "BYTEC" }, "spec.distributor", "distributor is immutable; create a new contract instead"},
		{"change region", func(s map[string]any) { s["region"] = "AT" }, "spec.region", "region is immutable; create a new contract instead"},
		{"endsAt before startsAt on update", func(s map[string]any) { s["endsAt"] = "2025-06-30T23:59:59Z" }, "spec.endsAt", endsMsg},
		{"negative gracePeriod on update", func(s map[string]any) { s["gracePeriod"] = "-1h" }, "spec.gracePeriod", graceMsg},
	}
	for _, r := range refused {
		t.Run("refused/"+r.name, func(t *testing.T) {
			err := update(r.change)
			if err == nil {
				t.Fatalf("accepted; want refusal naming %s", r.field)
			}
			if err := refusalNames(err, r.field, r.msg); err != nil {
				t.Error(err)
			}
		})
	}
	allowed := []struct {
		name   string
		change func(spec map[string]any)
	}{
		{"end the contract at a month end", func(s map[string]any) { s["endsAt"] = "2026-11-30T23:59:59Z" }},
		{"move endsAt earlier", func(s map[string]any) { s["endsAt"] = "2026-10-31T23:59:59Z" }},
		{"move endsAt later", func(s map[string]any) { s["endsAt"] = "2027-03-31T23:59:59Z" }},
		{"make it open-ended again", func(s map[string]any) { delete(s, "endsAt") }},
		{"move startsAt", func(s map[string]any) { s["startsAt"] = "2025-11-01T00:00:00Z" }},
		{"change notice and grace", func(s map[string]any) { s["noticePeriod"] = "1440h"; s["gracePeriod"] = "72h" }},
		{"change entitlements", func(s map[string]any) {
			s["entitlements"] = []any{map[string]any{"tier": "Premier", "subscriptions": int64(200), "maxNamespaces": int64(5)}}
		}},
	}
	for _, a := range allowed {
		t.Run("allowed/"+a.name, func(t *testing.T) {
			if err := update(a.change); err != nil {
				t.Fatalf("refused: %v", err)
			}
		})
	}
	// The last state is what was written.
	got, err := ri.Get(ctx, "transitions", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d, _, _ := unstructured.NestedString(got.Object, "spec", "distributor"); d != "Bytec" {
		t.Errorf("distributor %q after refused changes, want Bytec", d)
	}
	if _, found, _ := unstructured.NestedString(got.Object, "spec", "endsAt"); found {
		t.Errorf("endsAt still set after it was removed")
	}
}

// The refusal messages above are the API's user interface: keep the CEL
// messages this test expects equal to those in the CRDs, so a reworded rule
// fails here rather than silently matching nothing.
func TestCELMessagesAreInTheCRDs(t *testing.T) {
	crds := readCRDs(t)
	var all []string
	for _, crd := range crds {
		for _, v := range crd.Spec.Versions {
			for _, r := range crdschema.Rules(v.Schema.OpenAPIV3Schema, "") {
				all = append(all, r.Message)
			}
		}
	}
	for _, m := range []string{nsRuleMsg, noticeMsg, graceMsg, endsMsg, saNeedsNS, onlySAHasNS, systemName,
		"contracts must not list a contract twice",
		"distributor is immutable; create a new contract instead",
		"region is immutable; create a new contract instead"} {
		found := false
		for _, a := range all {
			if a == m {
				found = true
			}
		}
		if !found {
			t.Errorf("message %q is not a rule message in config/crd/bases", m)
		}
	}
	// And every rule message in the CRDs is exercised by a case here.
	used := map[string]bool{}
	for _, c := range invalidCases {
		used[c.msg] = true
	}
	for _, m := range []string{"distributor is immutable; create a new contract instead", "region is immutable; create a new contract instead"} {
		used[m] = true // TestContractTransitionRules
	}
	for _, a := range all {
		if !used[a] {
			t.Errorf("CEL rule message %q has no invalid case", a)
		}
	}
}

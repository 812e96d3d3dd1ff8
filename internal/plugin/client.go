package plugin

import (
	"context"
	"fmt"
	"sort"
	"strconv"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/client-go/rest"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
	"github.com/partnerops/entitlement-operator/internal/version"
)

// DefaultPageSize is how many objects a list asks the API server for at a
// time.
const DefaultPageSize = 500

const (
	partners  = "partners"
	contracts = "distributorcontracts"
)

// reader reads this API with the fewest requests a command needs: no
// discovery (the API's paths are known), objects by name, lists in pages.
type reader struct {
	rc       *rest.RESTClient
	pageSize int64
}

func newReader(cfg *rest.Config, pageSize int64) (*reader, error) {
	s := runtime.NewScheme()
	if err := v1.AddToScheme(s); err != nil {
		return nil, err
	}
	cfg = rest.CopyConfig(cfg)
	cfg.GroupVersion = &v1.GroupVersion
	cfg.APIPath = "/apis"
	cfg.NegotiatedSerializer = serializer.NewCodecFactory(s).WithoutConversion()
	if cfg.UserAgent == "" {
		v, _ := version.Get()
		cfg.UserAgent = "kubectl-entitlements/" + v
	}
	rc, err := rest.RESTClientFor(cfg)
	if err != nil {
		return nil, err
	}
	if pageSize <= 0 {
		pageSize = DefaultPageSize
	}
	return &reader{rc: rc, pageSize: pageSize}, nil
}

func (r *reader) get(ctx context.Context, resource, name string, into runtime.Object) error {
	return r.rc.Get().Resource(resource).Name(name).Do(ctx).Into(into)
}

// partner is one GET.
func (r *reader) partner(ctx context.Context, name string) (*v1.Partner, error) {
	p := &v1.Partner{}
	if err := r.get(ctx, partners, name, p); err != nil {
		return nil, err
	}
	return p, nil
}

// contracts GETs the named contracts, one request each; those that do not
// exist are left out, as SelectSupply expects.
func (r *reader) contracts(ctx context.Context, names []string) (map[string]*v1.DistributorContract, error) {
	out := map[string]*v1.DistributorContract{}
	for _, n := range names {
		c := &v1.DistributorContract{}
		switch err := r.get(ctx, contracts, n, c); {
		case apierrors.IsNotFound(err):
		case err != nil:
			return nil, err
		default:
			out[n] = c
		}
	}
	return out, nil
}

// list reads every object of resource, a page at a time, calling each for
// every page.
func (r *reader) list(ctx context.Context, resource string, page func() runtime.Object, each func(runtime.Object) (string, error)) error {
	cont := ""
	for {
		obj := page()
		req := r.rc.Get().Resource(resource).Param("limit", strconv.FormatInt(r.pageSize, 10))
		if cont != "" {
			req = req.Param("continue", cont)
		}
		if err := req.Do(ctx).Into(obj); err != nil {
			return fmt.Errorf("listing %s: %w", resource, err)
		}
		next, err := each(obj)
		if err != nil || next == "" {
			return err
		}
		cont = next
	}
}

// partners lists every Partner.
func (r *reader) partners(ctx context.Context) ([]v1.Partner, error) {
	var ps []v1.Partner
	err := r.list(ctx, partners, func() runtime.Object { return &v1.PartnerList{} }, func(o runtime.Object) (string, error) {
		l := o.(*v1.PartnerList)
		ps = append(ps, l.Items...)
		return l.Continue, nil
	})
	return ps, err
}

// world lists every DistributorContract and Partner.
func (r *reader) world(ctx context.Context) (world, error) {
	var cs []v1.DistributorContract
	err := r.list(ctx, contracts, func() runtime.Object { return &v1.DistributorContractList{} }, func(o runtime.Object) (string, error) {
		l := o.(*v1.DistributorContractList)
		cs = append(cs, l.Items...)
		return l.Continue, nil
	})
	if err != nil {
		return world{}, err
	}
	ps, err := r.partners(ctx)
	return newWorld(cs, ps), err
}

// world is a set of contracts and partners: the cluster as read once, or
// a set of manifests.
type world struct {
	contracts map[string]*v1.DistributorContract
	// partners by name.
	partners []v1.Partner
}

func newWorld(cs []v1.DistributorContract, ps []v1.Partner) world {
	w := world{contracts: make(map[string]*v1.DistributorContract, len(cs)), partners: ps}
	for i := range cs {
		w.contracts[cs[i].Name] = &cs[i]
	}
	sort.Slice(w.partners, func(i, j int) bool { return w.partners[i].Name < w.partners[j].Name })
	return w
}

// contractNames are the contracts' names, sorted.
func (w world) contractNames() []string {
	names := make([]string, 0, len(w.contracts))
	for n := range w.contracts {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

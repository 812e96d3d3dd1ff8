package testcluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// installManifests creates every object of the YAML files in dirs (as
// config/default would): the admission policies of config/admission and
// config/admission-finalizer. It reports whether one of them was a
// MutatingAdmissionPolicy.
func installManifests(cfg *rest.Config, dirs []string) (mutating bool, err error) {
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		return false, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, dir := range dirs {
		files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
		if err != nil {
			return false, err
		}
		for _, f := range files {
			if filepath.Base(f) == "kustomization.yaml" {
				continue
			}
			data, err := os.ReadFile(f)
			if err != nil {
				return false, err
			}
			dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
			for {
				u := &unstructured.Unstructured{}
				if err := dec.Decode(&u.Object); errors.Is(err, io.EOF) {
					break
				} else if err != nil {
					return false, fmt.Errorf("%s: %w", f, err)
				}
				if len(u.Object) == 0 {
					continue
				}
				if err := c.Create(ctx, u); err != nil {
					return false, fmt.Errorf("%s: creating %s %s: %w", f, u.GetKind(), u.GetName(), err)
				}
				mutating = mutating || u.GetKind() == "MutatingAdmissionPolicy"
			}
		}
	}
	return mutating, nil
}

// partnerProbe is a valid Partner, created with dry run only, to learn
// when the API server admits Partners.
const partnerProbe = `{"apiVersion":"entitlements.partnerops.io/v1alpha1","kind":"Partner",
"metadata":{"name":"testcluster-probe"},
"spec":{"displayName":"probe","tier":"Ready","region":"DE","contracts":["probe"],
"namespaces":["testcluster-probe"],"access":[{"kind":"Group","name":"probe"}]}}`

// partnerFinalizer is the finalizer config/admission-finalizer's policy
// adds.
const partnerFinalizer = "entitlements.partnerops.io/revoke"

// waitAdmitsPartners waits until the API server admits a Partner with the
// finalizer policy in force, when the Partner CRD is installed. A
// MutatingAdmissionPolicy needs the schema of the resource it mutates, and
// kube-apiserver learns a new CRD's schema by polling its own OpenAPI every
// 5 s: until then it answers every create of a resource the policy matches
// with 503 ("Resource kind ... not found. There can be a delay between when
// CustomResourceDefinitions are created and when they are available"),
// whatever the policy's failurePolicy.
func waitAdmitsPartners(cfg *rest.Config) error {
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	crd := &unstructured.Unstructured{}
	crd.SetAPIVersion("apiextensions.k8s.io/v1")
	crd.SetKind("CustomResourceDefinition")
	if err := c.Get(ctx, client.ObjectKey{Name: "partners.entitlements.partnerops.io"}, crd); apierrors.IsNotFound(err) {
		return nil
	} else if err != nil {
		return err
	}
	var refused error
	err = PollEvery(200*time.Millisecond, time.Minute, func() error {
		p := &unstructured.Unstructured{}
		if err := p.UnmarshalJSON([]byte(partnerProbe)); err != nil {
			refused = err
			return nil
		}
		err := c.Create(ctx, p, client.DryRunAll)
		switch {
		case apierrors.IsServiceUnavailable(err):
			return err
		case err != nil:
			refused = fmt.Errorf("a dry-run Partner create was refused: %w", err)
			return nil
		case !slices.Contains(p.GetFinalizers(), partnerFinalizer):
			// The policy itself is not loaded yet (the API server's
			// informers): once it is, it needs the schema too.
			return fmt.Errorf("a dry-run Partner got finalizers %v, not yet %s from the policy", p.GetFinalizers(), partnerFinalizer)
		}
		return nil
	})
	return errors.Join(err, refused)
}

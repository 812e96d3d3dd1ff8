package entitlement

import (
	"testing"

	"k8s.io/apimachinery/pkg/types"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
)

func TestShouldDeleteNamespace(t *testing.T) {
	ours := func() map[string]string {
		return map[string]string{v1.LabelPartner: "acme", v1.LabelManagedBy: v1.ManagedByValue}
	}
	createdBy := func(p string) map[string]string { return map[string]string{v1.AnnotationCreatedBy: p} }
	with := func(m map[string]string, k, v string) map[string]string {
		if v == "" {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	cases := []struct {
		name         string
		policyDelete bool
		partner      string
		labels       map[string]string
		annotations  map[string]string
		want         bool
		recorded     types.UID // default "u1", the namespace's UID
	}{
		{"everything matches", true, "acme", ours(), createdBy("acme"), true, ""},
		{"everything matches plus other labels and annotations", true, "acme",
			with(ours(), "team", "x"), with(createdBy("acme"), "note", "y"), true, ""},
		{"policy Retain", false, "acme", ours(), createdBy("acme"), false, ""},
		{"no labels, no annotations (zero values)", true, "acme", nil, nil, false, ""},
		{"empty partner name matching empty values", true, "",
			map[string]string{v1.LabelPartner: "", v1.LabelManagedBy: v1.ManagedByValue}, createdBy(""), false, ""},
		{"partner label missing", true, "acme", with(ours(), v1.LabelPartner, ""), createdBy("acme"), false, ""},
		{"partner label of another partner", true, "acme", with(ours(), v1.LabelPartner, "globex"), createdBy("acme"), false, ""},
		{"managed-by label missing", true, "acme", with(ours(), v1.LabelManagedBy, ""), createdBy("acme"), false, ""},
		{"managed-by someone else", true, "acme", with(ours(), v1.LabelManagedBy, "helm"), createdBy("acme"), false, ""},
		{"created-by annotation missing (adopted)", true, "acme", ours(), nil, false, ""},
		{"created-by annotation of another partner", true, "acme", ours(), createdBy("globex"), false, ""},
		{"created-by given as a label, not an annotation", true, "acme", with(ours(), v1.AnnotationCreatedBy, "acme"), nil, false, ""},
		{"labels given as annotations", true, "acme", nil, with(ours(), v1.AnnotationCreatedBy, "acme"), false, ""},
		{"case differs", true, "acme", with(ours(), v1.LabelPartner, "ACME"), createdBy("acme"), false, ""},
		{"labels and annotation forged, UID not recorded", true, "acme", ours(), createdBy("acme"), false, "none"},
		{"recreated by someone else: UID differs from the record", true, "acme", ours(), createdBy("acme"), false, "u0"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			recorded := tc.recorded
			switch recorded {
			case "":
				recorded = "u1"
			case "none":
				recorded = ""
			}
			if got := ShouldDeleteNamespace(tc.policyDelete, tc.partner, recorded, "u1", tc.labels, tc.annotations); got != tc.want {
				t.Errorf("ShouldDeleteNamespace(delete=%v, partner=%q, labels=%v, annotations=%v): want %v, got %v",
					tc.policyDelete, tc.partner, tc.labels, tc.annotations, tc.want, got)
			}
		})
	}
}

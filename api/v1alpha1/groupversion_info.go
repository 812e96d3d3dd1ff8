// Package v1alpha1 contains the entitlements.partnerops.io/v1alpha1 API:
// Partner and DistributorContract (cluster-scoped) and Subscription
// (namespaced).
//
// +kubebuilder:object:generate=true
// +groupName=entitlements.partnerops.io
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the group and version of this API.
	GroupVersion = schema.GroupVersion{Group: "entitlements.partnerops.io", Version: "v1alpha1"}

	// SchemeBuilder registers the types of this API with a scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds the types of this API to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

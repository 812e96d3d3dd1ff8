package plugin

import (
	"strings"

	"github.com/spf13/pflag"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// kubeFlags are kubectl's kubeconfig flags: --kubeconfig, and the overrides
// client-go binds (clientcmd.BindOverrideFlags), loaded with kubectl's
// rules. This is what cli-runtime's genericclioptions.ConfigFlags wraps;
// that package also holds the discovery cache, the RESTMapper and the
// resource builder, which link kustomize and its OpenAPI documents into the
// binary (twice its size) for a plugin that makes no discovery request.
type kubeFlags struct {
	kubeconfig string
	overrides  clientcmd.ConfigOverrides
	// userExtra is --as-user-extra, KEY=VALUE, repeated (clientcmd binds
	// no flag for it).
	userExtra []string
}

func (k *kubeFlags) addFlags(fs *pflag.FlagSet) {
	fs.StringVar(&k.kubeconfig, "kubeconfig", "", "Path to the kubeconfig file to use for CLI requests.")
	names := clientcmd.RecommendedConfigOverrideFlags("")
	names.ClusterOverrideFlags.APIServer.ShortName = "s" // as kubectl
	clientcmd.BindOverrideFlags(&k.overrides, fs, names)
	fs.StringArrayVar(&k.userExtra, "as-user-extra", nil, "User extras to impersonate for the operation, this flag can be repeated to specify multiple values for the same key.")
}

// restConfig is the REST config the flags, the kubeconfig files and the
// environment give, as kubectl reads them.
func (k *kubeFlags) restConfig() (*rest.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = k.kubeconfig
	// With no kubeconfig, kubectl's default: $KUBERNETES_MASTER or
	// localhost:8080 (or the in-cluster config).
	rules.DefaultClientConfig = &clientcmd.DefaultClientConfig
	o := k.overrides
	o.ClusterDefaults = clientcmd.ClusterDefaults
	for _, kv := range k.userExtra {
		key, value, ok := strings.Cut(kv, "=")
		if !ok {
			continue // as kubectl
		}
		if o.AuthInfo.ImpersonateUserExtra == nil {
			o.AuthInfo.ImpersonateUserExtra = map[string][]string{}
		}
		o.AuthInfo.ImpersonateUserExtra[key] = append(o.AuthInfo.ImpersonateUserExtra[key], value)
	}
	return clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &o).ClientConfig()
}

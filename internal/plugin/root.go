// Package plugin is `kubectl entitlements`: it reads Partners and
// DistributorContracts with the user's kubeconfig, or from manifests, and
// answers with the operator's own decisions (internal/entitlement), never a
// copy of its rules: what comes next, what a contract's end would do, why a
// partner is (not) supplied, what happened to it, and what a change to the
// manifests would do before it is merged.
package plugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/rest"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
)

// Exit codes.
const (
	ExitOK    = 0
	ExitError = 1
	// ExitUsage: a flag, argument or output format the command does not take.
	ExitUsage = 2
	// ExitRevocations: `diff` found partners the change revokes (and
	// --allow-revocations was not given).
	ExitRevocations = 3
)

// Options carry what Run needs beyond its arguments; tests set them.
type Options struct {
	// Now is the clock (default time.Now).
	Now func() time.Time
	// WrapConfig, when set, is applied to the REST config the kubeconfig
	// flags give (tests count requests with it).
	WrapConfig func(*rest.Config) *rest.Config
	// Dir is where `diff --git` runs git (default the working directory).
	Dir string
	// PageSize is how many objects a list reads at a time (default 500).
	PageSize int64
	// Config, when set, is the cluster to talk to instead of what the
	// kubeconfig flags give (the demo, which runs its own).
	Config *rest.Config
}

// Run runs the plugin with args (without the program name) and returns its
// exit code; errors are written to errOut as kubectl writes them.
func Run(ctx context.Context, args []string, out, errOut io.Writer, o Options) int {
	cmd := NewCommand(out, errOut, o)
	cmd.SetArgs(args)
	sub, err := cmd.ExecuteContextC(ctx)
	if err == nil {
		return ExitOK
	}
	fmt.Fprintf(errOut, "error: %v\n", err)
	var ue usageError
	var re revocationsError
	switch {
	case errors.As(err, &re):
		return ExitRevocations
	case errors.As(err, &ue):
		fmt.Fprintf(errOut, "See '%s --help' for usage.\n", sub.CommandPath())
		return ExitUsage
	}
	return ExitError
}

// usageError is a mistake in the command line: exit 2.
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

type revocationsError struct{ n int }

func (e revocationsError) Error() string {
	return fmt.Sprintf("the change revokes %d partner(s); pass --allow-revocations to accept that", e.n)
}

// app is what the commands share: the streams, the options and the
// kubeconfig flags.
type app struct {
	o           Options
	out, errOut io.Writer
	kube        kubeFlags
}

func (a *app) now() time.Time { return a.o.Now().UTC() }

// reader connects with the kubeconfig flags; it makes no request.
func (a *app) reader() (*reader, error) {
	if a.o.Config != nil {
		return newReader(rest.CopyConfig(a.o.Config), a.o.PageSize)
	}
	cfg, err := a.kube.restConfig()
	if err != nil {
		return nil, err
	}
	if a.o.WrapConfig != nil {
		cfg = a.o.WrapConfig(cfg)
	}
	return newReader(cfg, a.o.PageSize)
}

// world lists every contract and partner of the cluster.
func (a *app) world(ctx context.Context) (world, error) {
	r, err := a.reader()
	if err != nil {
		return world{}, err
	}
	return r.world(ctx)
}

// partner GETs one Partner, and the reader for what else the command needs.
func (a *app) partner(ctx context.Context, name string) (*reader, *v1.Partner, error) {
	r, err := a.reader()
	if err != nil {
		return nil, nil, err
	}
	p, err := r.partner(ctx, name)
	return r, p, err
}

// NewCommand is the `kubectl entitlements` command tree.
func NewCommand(out, errOut io.Writer, o Options) *cobra.Command {
	if o.Now == nil {
		o.Now = time.Now
	}
	a := &app{o: o, out: out, errOut: errOut}
	root := &cobra.Command{
		Use:   "kubectl-entitlements",
		Short: "Ask the entitlement operator's questions from the command line",
		Long: `kubectl entitlements answers what the entitlement operator decides, with the
operator's own code: which contract supplies each partner and what comes
next (status), what a contract's end would do (forecast), why a partner is
or is not supplied (why), what happened to it (history), and what a change
to the manifests in Git would do to every partner before it is merged (diff).

Partners and DistributorContracts are cluster-scoped: -n/--namespace is
accepted, as by every kubectl command, and changes nothing.`,
		Example: `  kubectl entitlements status
  kubectl entitlements forecast --end bytec-de=2026-12-31T23:59:59Z
  kubectl entitlements why acme-systems
  kubectl entitlements diff --git origin/main...HEAD contracts/`,
		Annotations:                map[string]string{cobra.CommandDisplayNameAnnotation: "kubectl entitlements"},
		SilenceErrors:              true,
		SilenceUsage:               true,
		SuggestionsMinimumDistance: 2,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return nil
			}
			msg := fmt.Sprintf("unknown command %q", args[0])
			if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
				msg += fmt.Sprintf("; did you mean %q?", s[0])
			}
			return usageError{errors.New(msg)}
		},
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	root.SetOut(out)
	root.SetErr(errOut)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	a.kube.addFlags(root.PersistentFlags())
	root.CompletionOptions.DisableDefaultCmd = true
	root.AddCommand(a.statusCmd(), a.forecastCmd(), a.whyCmd(), a.historyCmd(), a.diffCmd(), a.versionCmd(), a.completionCmd())
	return root
}

// args checks a command's positional arguments as a usage error.
func args(min, max int, names string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		switch {
		case len(args) < min:
			return usageError{fmt.Errorf("want %s", names)}
		case len(args) > max:
			return usageError{fmt.Errorf("want %s, got %d arguments", names, len(args))}
		}
		return nil
	}
}

// completePartners completes a partner name from the cluster.
func (a *app) completePartners(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	r, err := a.reader()
	if err != nil {
		return nil, cobra.ShellCompDirectiveError
	}
	ps, err := r.partners(cmd.Context())
	if err != nil {
		return nil, cobra.ShellCompDirectiveError
	}
	names := make([]string, 0, len(ps))
	for _, p := range ps {
		names = append(names, p.Name)
	}
	return names, cobra.ShellCompDirectiveNoFileComp
}

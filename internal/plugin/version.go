package plugin

import (
	"fmt"
	"io"
	"runtime"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/printers"

	"github.com/partnerops/entitlement-operator/internal/version"
)

// Version is `version`: what the plugin was built from.
type Version struct {
	metav1.TypeMeta `json:",inline"`
	Version         string `json:"version"`
	Commit          string `json:"commit,omitempty"`
	GoVersion       string `json:"goVersion"`
	Platform        string `json:"platform"`
}

func (a *app) versionCmd() *cobra.Command {
	var out output
	cmd := &cobra.Command{
		Use:   "version",
		Short: "The plugin's version, stamped at build",
		Long: `The release the plugin was built as (make build stamps it from git describe,
or VERSION), the commit, the Go version and the platform. Makes no request.`,
		Example: `  kubectl entitlements version
  kubectl entitlements version -o json`,
		Args:    args(0, 0, "no arguments"),
		PreRunE: func(*cobra.Command, []string) error { return out.check() },
		RunE: func(*cobra.Command, []string) error {
			v, commit := version.Get()
			return out.print(a.out, &Version{TypeMeta: typeMeta("Version"), Version: v, Commit: commit,
				GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH})
		},
	}
	out.addFlags(cmd)
	return cmd
}

func (v *Version) DeepCopyObject() k8sruntime.Object { return deepCopy(v) }

func (v *Version) refs() []ref { return nil }

func (v *Version) human(w io.Writer, _ printers.PrintOptions) error {
	_, err := fmt.Fprintf(w, "kubectl-entitlements %s (commit %s, %s, %s)\n", v.Version, orDash(v.Commit), v.GoVersion, v.Platform)
	return err
}

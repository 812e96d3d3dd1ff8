// Package version carries what a binary was built from, stamped at build
// time with -ldflags:
//
//	-X github.com/partnerops/entitlement-operator/internal/version.Version=v0.2.0
//	-X github.com/partnerops/entitlement-operator/internal/version.Commit=<git sha>
//
// A plain `go build` leaves Version "dev"; Commit then falls back to the VCS
// revision Go records in the binary.
package version

import "runtime/debug"

var (
	// Version is the release, e.g. v0.2.0; "dev" for a local build.
	Version = "dev"
	// Commit is the git commit the binary was built from.
	Commit = ""
)

// Get returns the version and the commit (from the build's VCS stamp when
// not set by -ldflags).
func Get() (version, commit string) {
	commit = Commit
	if commit == "" {
		if info, ok := debug.ReadBuildInfo(); ok {
			for _, s := range info.Settings {
				if s.Key == "vcs.revision" {
					commit = s.Value
				}
			}
		}
	}
	return Version, commit
}

// Command kubectl-entitlements is the kubectl plugin `kubectl entitlements`
// (install: go install github.com/partnerops/entitlement-operator/cmd/kubectl-entitlements@latest,
// or make build; then run it as `kubectl entitlements --help`).
package main

import (
	"context"
	"os"
	"os/signal"

	"github.com/partnerops/entitlement-operator/internal/plugin"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := plugin.Run(ctx, os.Args[1:], os.Stdout, os.Stderr, plugin.Options{})
	stop()
	os.Exit(code)
}

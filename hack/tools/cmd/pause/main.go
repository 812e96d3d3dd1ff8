// Command pause is the node harness's Pod sandbox image (containerd's
// sandbox_image): it holds the Pod's namespaces and waits for a signal.
// Built here because the node has no registry to pull registry.k8s.io/pause
// from.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
}

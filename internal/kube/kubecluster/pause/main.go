// Command pause is the process that holds a pod's namespaces in the test
// cluster of internal/kube/kubecluster: the sandbox ("infra") container
// image that containerd's CRI plugin starts first in every pod. No registry
// is reachable from the test hosts, so the harness builds this program
// (statically, CGO_ENABLED=0) and packs it as an image itself.
//
// It does what a sandbox process must: it sleeps until SIGINT or SIGTERM,
// then exits 0, and as PID 1 of the pod's PID namespace (when the pod shares
// one) it reaps the children that get reparented to it.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for sig := range sigs {
		if sig != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			var status syscall.WaitStatus
			pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}

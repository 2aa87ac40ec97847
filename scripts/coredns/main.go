// A CoreDNS with only the plugins the cluster tier's DNS needs: the kubernetes plugin answers
// <service>.<namespace>.svc.cluster.local, the rest is the usual hygiene. CoreDNS is built
// this way ("plugin.cfg" trimmed to a Go file) because the full binary pulls every cloud
// provider's SDK: 1 module and a few seconds of linking here instead of minutes.
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loop"
	_ "github.com/coredns/coredns/plugin/ready"
)

// The order the plugins run in, as plugin.cfg would give it.
var directives = []string{"bind", "ready", "health", "errors", "cache", "kubernetes", "loop"}

func init() { dnsserver.Directives = directives }

func main() { coremain.Run() }

// Command svc-mailbox is the mailbox plane of macronode as its own process, on the
// shared child runtime: durable message queues.
package main

import (
	"context"
	"os"

	"github.com/macronode/macronode/pkg/planes/mailbox"
	"github.com/macronode/macronode/pkg/svcrt"
)

func main() {
	var cfg mailbox.Config
	os.Exit(svcrt.Main(svcrt.Plane{
		Name:        "mailbox",
		DefaultAddr: "127.0.0.1:9500",
		Summary:     "mailbox plane: durable queues with leases, redelivery and dead letters",
		Flags:       cfg.RegisterFlags,
		Routes: []svcrt.Route{
			{Pattern: "POST /mailboxes/{box}/messages", Doc: "send a message to a mailbox"},
			{Pattern: "POST /mailboxes/{box}/receive", Doc: "lease messages for delivery"},
			{Pattern: "POST /mailboxes/{box}/ack", Doc: "acknowledge leased messages"},
			{Pattern: "POST /mailboxes/{box}/nack", Doc: "return leased messages for redelivery"},
			{Pattern: "POST /mailboxes/{box}/extend", Doc: "extend the lease of messages"},
			{Pattern: "GET /mailboxes/{box}", Doc: "one mailbox's depth and counters"},
			{Pattern: "GET /mailboxes", Doc: "list the mailboxes"},
		},
		Build: func(_ context.Context, env svcrt.Env) (svcrt.Service, error) {
			cfg.DataDir, cfg.Amnesia = env.DataDir, env.Amnesia
			return mailbox.New(cfg, env.Logger, env.Registry)
		},
	}))
}

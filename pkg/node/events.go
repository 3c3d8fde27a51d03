package node

import (
	"fmt"
	"path/filepath"

	"github.com/hashicorp/go-hclog"

	"github.com/macronode/macronode/pkg/audit"
	"github.com/macronode/macronode/pkg/config"
	"github.com/macronode/macronode/pkg/events"
)

// openEventsAudit makes the node's event bus (a fresh boot id) and its
// audit log (data_dir/audit, or memory under amnesia), which records
// crashes and breaker trips from the bus. closeAll ends every subscription,
// waits for the audit watcher to write what it has, and closes the log.
func openEventsAudit(cfg *config.Config, log hclog.Logger) (bus *events.Bus, l *audit.Log, closeAll func(), err error) {
	bus, err = events.New(events.NewBoot(), events.RingSize)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("events: %w", err)
	}
	opts := audit.Options{}
	if !cfg.Amnesia {
		opts.Dir = filepath.Join(cfg.DataDir, "audit")
	}
	if l, err = audit.Open(opts); err != nil {
		return nil, nil, nil, err
	}
	watching := l.Watch(bus, log.Named("audit"))
	return bus, l, func() {
		bus.Close()
		<-watching
		if err := l.Close(); err != nil {
			log.Warn("close audit log", "error", err)
		}
	}, nil
}

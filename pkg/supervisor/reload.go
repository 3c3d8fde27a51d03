package supervisor

import (
	"encoding/json"
	"slices"
	"sync"

	"github.com/macronode/macronode/pkg/control"
)

// Reload records cfg as the latest reload payload and sends it, as
// reload{config}, to every child connected now; a child that connects later
// (a restart, or one still starting) receives the latest payload right after
// its hello is accepted. The payload is opaque to the supervisor (the node
// sends e.g. {"log_level":"debug"}); one that is not valid JSON or does not
// fit in a control message is logged and dropped. Reload returns once the
// sends are done; each write has its own deadline and no lock is held
// across it.
func (s *Supervisor) Reload(cfg json.RawMessage) {
	if !json.Valid(cfg) {
		s.log.Error("reload: payload is not valid JSON; not sent to children", "bytes", len(cfg))
		return
	}
	if b, err := json.Marshal(control.Reload(cfg)); err != nil || len(b)+1 > control.MaxMessageBytes {
		s.log.Error("reload: payload does not fit in a control message; not sent to children",
			"bytes", len(cfg), "max_bytes", control.MaxMessageBytes)
		return
	}
	s.reloadMu.Lock()
	s.reloadGen++
	s.reloadCfg = slices.Clone(cfg)
	s.reloadMu.Unlock()
	var wg sync.WaitGroup
	for _, v := range s.services {
		p := v.current()
		if p == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.deliverReload(v, p)
		}()
	}
	wg.Wait()
}

// latestReload returns the latest payload and its generation (0: none yet).
func (s *Supervisor) latestReload() (uint64, json.RawMessage) {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	return s.reloadGen, s.reloadCfg
}

// deliverReload sends the latest payload to p, if p has a control
// connection. Reload and a child's hello may deliver concurrently: each
// sender checks again after its write and sends anew if a newer payload was
// recorded meanwhile, so the last reload on the wire is always the latest.
func (s *Supervisor) deliverReload(v *service, p *proc) {
	gen, cfg := s.latestReload()
	for gen != 0 {
		if err := p.send(control.Reload(cfg)); err != nil {
			v.log.Warn("control: reload not delivered", "pid", p.pid, "error", err)
			return
		}
		next, nextCfg := s.latestReload()
		if next == gen {
			return
		}
		gen, cfg = next, nextCfg
	}
}

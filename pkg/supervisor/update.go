package supervisor

import (
	"errors"
	"slices"
)

// Update records new launch settings for the service named sp.Name: its
// Binary, Args, Env and Listen (the rest of sp is ignored). They take
// effect at the next operator Restart or Start, which binds the new address
// when it changed and closes the old socket; an automatic restart after a
// crash keeps the settings in force, so nothing the operator has not asked
// for changes under them. Status shows the settings in force until then,
// and UpdatePending. with names the services that call this one's address:
// Restart of this one also restarts those of them whose own update is still
// pending (the gateway onto a moved backend).
func (s *Supervisor) Update(sp Spec, with []string) error {
	v, err := s.lookup(sp.Name)
	if err != nil {
		return err
	}
	for _, w := range with {
		if _, err := s.lookup(w); err != nil {
			return err
		}
	}
	next := &Spec{Binary: sp.Binary, Args: slices.Clone(sp.Args), Env: slices.Clone(sp.Env), Listen: sp.Listen}
	v.update(func(st *Status) {
		v.next, v.with = next, slices.Clone(with)
		st.UpdatePending = true
	})
	return nil
}

// restartWith restarts the services recorded with name's update that still
// wait for theirs; it runs after name's own restart was scheduled.
func (s *Supervisor) restartWith(name string) error {
	v := s.byName[name]
	v.mu.Lock()
	with := v.with
	v.with = nil
	v.mu.Unlock()
	var errs []error
	for _, w := range with {
		if s.byName[w].status().UpdatePending {
			errs = append(errs, s.command(w, cmdRestart))
		}
	}
	return errors.Join(errs...)
}

// applyUpdate takes the settings recorded by Update, if any, for the spawn
// about to happen. Only the service goroutine calls it.
func (v *service) applyUpdate() {
	v.mu.Lock()
	next := v.next
	v.next = nil
	v.st.UpdatePending = false
	v.mu.Unlock()
	if next == nil {
		return
	}
	if next.Binary != "" {
		v.spec.Binary = next.Binary
	}
	v.spec.Args, v.spec.Env = next.Args, next.Env
	if next.Listen != "" && next.Listen != v.spec.Listen {
		v.log.Info("listen address changes", "from", v.spec.Listen, "to", next.Listen)
		v.spec.Listen = next.Listen
		if v.held == nil {
			v.update(func(st *Status) { st.Listen = next.Listen })
		}
	}
	v.log.Info("starting with updated settings", "binary", v.spec.Binary)
}

// CancelUpdate forgets the settings Update recorded for name, if any: the
// next restart starts the child as the settings in force say.
func (s *Supervisor) CancelUpdate(name string) error {
	v, err := s.lookup(name)
	if err != nil {
		return err
	}
	v.update(func(st *Status) {
		v.next, v.with = nil, nil
		st.UpdatePending = false
	})
	return nil
}

package audit

import (
	"encoding/json"

	"github.com/hashicorp/go-hclog"

	"github.com/macronode/macronode/pkg/events"
)

// watchQueue is the audit subscriber's queue; if it still overflows, Watch
// resumes from its last event (and records a gap as such).
const watchQueue = 4096

// Watch records crashes (an exited event the supervisor did not ask for)
// and circuit-breaker trips (failed) from the bus until the bus closes.
// It returns a channel closed when it has stopped.
func (l *Log) Watch(bus *events.Bus, log hclog.Logger) <-chan struct{} {
	done := make(chan struct{})
	sub, err := bus.Subscribe("", false, watchQueue)
	if err != nil { // only a malformed id fails, and there is none
		close(done)
		return done
	}
	go func() {
		defer close(done)
		last := ""
		for {
			select {
			case ev := <-sub.C():
				last = ev.ID
				l.record(ev, log)
				continue
			case <-sub.Done():
			}
			for len(sub.C()) > 0 { // what was queued before the drop
				ev := <-sub.C()
				last = ev.ID
				l.record(ev, log)
			}
			if bus.Closed() {
				return
			}
			log.Warn("audit fell behind the event stream; resuming", "last_event_id", last)
			if sub, err = bus.Subscribe(last, last == "", watchQueue); err != nil {
				return
			}
			if sub.Gap != nil {
				l.append(Record{Kind: KindGap, Who: "supervisor", Action: "resume event stream", Result: "events lost", Detail: sub.Gap}, log)
			}
			for _, ev := range sub.Replay {
				l.record(ev, log)
				last = ev.ID
			}
		}
	}()
	return done
}

func (l *Log) record(ev events.Event, log hclog.Logger) {
	switch ev.Type {
	case events.Exited:
		var ex struct {
			Expected bool `json:"expected"`
		}
		if json.Unmarshal(ev.Data, &ex) != nil || ex.Expected {
			return
		}
		l.append(Record{Time: ev.Time.UTC(), Kind: KindCrash, Who: "supervisor", Action: "exited", Service: ev.Service,
			Result: "crashed", Detail: ev.Data}, log)
	case events.Failed:
		l.append(Record{Time: ev.Time.UTC(), Kind: KindBreaker, Who: "supervisor", Action: "circuit breaker open", Service: ev.Service,
			Result: "failed", Detail: ev.Data}, log)
	}
}

func (l *Log) append(r Record, log hclog.Logger) {
	if err := l.Append(r); err != nil {
		log.Error("audit write failed", "error", err)
	}
}

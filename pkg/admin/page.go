package admin

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"time"

	"github.com/macronode/macronode/pkg/buildinfo"
	"github.com/macronode/macronode/pkg/events"
	"github.com/macronode/macronode/pkg/httpx"
	"github.com/macronode/macronode/pkg/supervisor"
)

// The status page (SPEC §5): GET / renders the node, the services table,
// a restart timeline of the last hour and the kept exits with their log
// tails, server-side, so it reads without JavaScript. The embedded script
// (ui/page.js) keeps it live from GET /api/v1/events. Every asset is
// embedded and served under /ui/; the Content-Security-Policy allows
// nothing but this origin, and no inline script or style.

//go:embed ui
var uiFiles embed.FS

var pageTmpl = template.Must(template.New("page.html").Funcs(template.FuncMap{
	"dur":   fmtSeconds,
	"clock": func(t time.Time) string { return t.UTC().Format("15:04:05Z") },
	"unixms": func(t time.Time) int64 {
		return t.UnixMilli()
	},
}).ParseFS(uiFiles, "ui/page.html"))

// pageCSP is the Content-Security-Policy of the page and its assets.
const pageCSP = "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; object-src 'none'"

// Timeline geometry, shared with ui/page.js through data attributes.
const (
	timelineSpan   = time.Hour
	timelineLabelW = 90  // px of the service names
	timelinePlotW  = 630 // px of the hour
	timelineLaneH  = 22  // px per service
)

// pageView is what ui/page.html renders.
type pageView struct {
	SignIn   bool // admin_token set and the request not authenticated
	NodeID   string
	Version  string
	Uptime   float64
	Ready    bool
	Now      time.Time
	Services []pageService
	Timeline pageTimeline
}

type pageService struct {
	Name string
	ServiceStatus
	Lane  int            // y offset of its timeline lane, px
	Marks []timelineMark // its exits in the timeline
}

// NewestExits is the service's kept exits, newest first.
func (p pageService) NewestExits() []ExitRecord {
	out := make([]ExitRecord, 0, len(p.Exits))
	for i := len(p.Exits) - 1; i >= 0; i-- {
		out = append(out, p.Exits[i])
	}
	return out
}

type pageTimeline struct {
	Width, Height, LabelW, PlotW, SpanMS int64
	Marks                                []timelineMark
}

// timelineMark is one exit (or crash-loop trip) of a service.
type timelineMark struct {
	Service string
	Kind    string // "exited" or "failed"
	Time    time.Time
	Title   string
	X       int64 // px, at render time; the script moves marks as time passes
}

// handlePage renders the status page, or the sign-in form when admin_token
// is set and the request carries neither the bearer token nor a session.
func (s *Server) handlePage(w http.ResponseWriter, r *http.Request) {
	v := pageView{Version: buildinfo.Version, Now: time.Now()}
	if !s.authenticated(r) {
		v.SignIn = true
	} else {
		st, order := s.statusView(r.Context())
		v.NodeID, v.Uptime, v.Ready = st.Node.ID, st.UptimeSeconds, st.Ready
		for _, name := range order {
			svc := st.Services[name]
			v.Services = append(v.Services, pageService{Name: name, ServiceStatus: svc, Lane: int(timelineLaneH) * len(v.Services)})
		}
		v.Timeline = s.timeline(v.Now, v.Services)
		for i := range v.Services {
			for _, m := range v.Timeline.Marks {
				if m.Service == v.Services[i].Name {
					v.Services[i].Marks = append(v.Services[i].Marks, m)
				}
			}
		}
	}
	var buf bytes.Buffer
	if err := pageTmpl.Execute(&buf, v); err != nil {
		httpx.Errorf(w, http.StatusInternalServerError, "", "render status page: %v", err)
		return
	}
	setPageHeaders(w.Header())
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(buf.Bytes())
}

// uiHandler serves the embedded assets under /ui/.
func uiHandler() http.Handler {
	sub, err := fs.Sub(uiFiles, "ui")
	if err != nil {
		panic(fmt.Sprintf("admin: embedded ui: %v", err)) // the embed directive guarantees the directory
	}
	files := http.StripPrefix("/ui/", http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		setPageHeaders(w.Header())
		files.ServeHTTP(w, r)
	})
}

func setPageHeaders(h http.Header) {
	h.Set("Content-Security-Policy", pageCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
}

// timeline collects the exits of the last hour: from the event ring when
// the node has one, else from each service's kept exits.
func (s *Server) timeline(now time.Time, svcs []pageService) pageTimeline {
	tl := pageTimeline{
		Width: timelineLabelW + timelinePlotW, Height: timelineLaneH * int64(max(len(svcs), 1)), LabelW: timelineLabelW, PlotW: timelinePlotW,
		SpanMS: timelineSpan.Milliseconds(),
	}
	from := now.Add(-timelineSpan)
	add := func(svc, kind string, t time.Time, title string) {
		if t.Before(from) || t.After(now) {
			return
		}
		x := timelineLabelW + min(timelinePlotW-5, int64(float64(timelinePlotW)*float64(t.Sub(from))/float64(timelineSpan))) // r=5: never clipped
		tl.Marks = append(tl.Marks, timelineMark{Service: svc, Kind: kind, Time: t, Title: title, X: x})
	}
	if bus := s.opts.Events; bus != nil {
		for _, ev := range ringEvents(bus) {
			switch ev.Type {
			case events.Exited:
				var d supervisor.ExitedEvent
				_ = json.Unmarshal(ev.Data, &d) // our own encoding; a zero value still marks the exit
				add(ev.Service, ev.Type, ev.Time, fmt.Sprintf("%s pid %d: %s", ev.Service, d.PID, d.Description))
			case events.Failed:
				add(ev.Service, ev.Type, ev.Time, ev.Service+": crash loop, restarts paused")
			}
		}
		return tl
	}
	for _, svc := range svcs {
		for _, e := range svc.Exits {
			add(svc.Name, events.Exited, e.Time, fmt.Sprintf("%s pid %d: %s", svc.Name, e.PID, e.Description))
		}
	}
	return tl
}

// ringEvents is a copy of the events the bus still holds.
func ringEvents(bus *events.Bus) []events.Event {
	sub, err := bus.Subscribe("", true, 1)
	if err != nil {
		return nil
	}
	sub.Close()
	return sub.Replay
}

// fmtSeconds renders a duration in seconds as "3d4h", "2h5m", "4m10s" or "7s".
func fmtSeconds(sec float64) string {
	d := time.Duration(sec) * time.Second
	switch {
	case sec <= 0:
		return "-"
	case d >= 24*time.Hour:
		return fmt.Sprintf("%dd%dh", d/(24*time.Hour), d%(24*time.Hour)/time.Hour)
	case d >= time.Hour:
		return fmt.Sprintf("%dh%dm", d/time.Hour, d%time.Hour/time.Minute)
	case d >= time.Minute:
		return fmt.Sprintf("%dm%ds", d/time.Minute, d%time.Minute/time.Second)
	default:
		return fmt.Sprintf("%ds", d/time.Second)
	}
}

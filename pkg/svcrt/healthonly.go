package svcrt

import (
	"net/http"

	"github.com/macronode/macronode/pkg/httpx"
)

// HealthOnly returns a Service for a plane whose API does not exist yet: the
// process is real (runtime endpoints, control channel, metrics) and its own
// handler answers GET /info with what it is and a JSON 404 everywhere else.
// It is always ready and has nothing to close.
func HealthOnly(name string) Service {
	mux := httpx.NewMux()
	info := map[string]string{
		"service": "svc-" + name,
		"plane":   name,
		"status":  "no plane API yet",
	}
	mux.HandleFunc("GET /info", func(w http.ResponseWriter, _ *http.Request) {
		httpx.JSON(w, http.StatusOK, info)
	})
	return healthOnly{mux: mux}
}

type healthOnly struct{ mux *httpx.Mux }

func (h healthOnly) Handler() http.Handler { return h.mux }
func (h healthOnly) Ready() error          { return nil }
func (h healthOnly) Close() error          { return nil }

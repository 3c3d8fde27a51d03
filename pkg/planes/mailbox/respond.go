package mailbox

import (
	"encoding/json"
	"net/http"

	"github.com/macronode/macronode/pkg/httpx"
)

// ctJSON is shared by every answer: net/http copies header values when it
// writes them, so no per-request slice is needed.
var ctJSON = []string{"application/json"}

// writeJSON is httpx.JSON for the hot paths: the header is set without a
// per-request allocation and Content-Length is left to net/http, which
// adds it for a body written in one go.
func writeJSON(w http.ResponseWriter, status int, v any) {
	buf, err := json.Marshal(v)
	if err != nil {
		httpx.Error(w, http.StatusInternalServerError, "internal", "encode response: "+err.Error())
		return
	}
	writeRaw(w, status, append(buf, '\n'))
}

func writeRaw(w http.ResponseWriter, status int, body []byte) {
	w.Header()["Content-Type"] = ctJSON
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// writeID answers {"id":"..."}; an id is 16 hex digits, so nothing needs
// escaping.
func writeID(w http.ResponseWriter, status int, id string) {
	b := make([]byte, 0, 8+len(id)+3)
	b = append(b, `{"id":"`...)
	b = append(b, id...)
	b = append(b, "\"}\n"...)
	writeRaw(w, status, b)
}

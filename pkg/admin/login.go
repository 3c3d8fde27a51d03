package admin

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/macronode/macronode/pkg/httpx"
)

// Browser sign-in (SPEC §5): POST /api/v1/login {"token"} answers with a
// session cookie that authenticates like the bearer token. The cookie holds
// an expiry and an HMAC-SHA256, under a key drawn at random when the server
// starts, of that expiry and the admin_token in force: never the token. So
// a reload that rotates the token, or a restart of the node, ends every
// session, and the server keeps no session table.
const (
	// SessionCookie is the cookie's name.
	SessionCookie = "macronode_session"
	// SessionTTL is how long a sign-in lasts.
	SessionTTL = 12 * time.Hour
	// LoginPath and LogoutPath are the sign-in routes.
	LoginPath  = "/api/v1/login"
	LogoutPath = "/api/v1/logout"
)

// LoginRequest is the body of POST /api/v1/login.
type LoginRequest struct {
	Token string `json:"token"`
}

// sessionKeys signs and checks session cookies.
type sessionKeys struct {
	key [32]byte
	now func() time.Time
}

func newSessionKeys() *sessionKeys {
	k := &sessionKeys{now: time.Now}
	_, _ = rand.Read(k.key[:]) // crypto/rand.Read never fails (it aborts the program instead)
	return k
}

// mac is the signature of a cookie expiring at exp for token.
func (k *sessionKeys) mac(exp int64, token string) []byte {
	h := hmac.New(sha256.New, k.key[:])
	h.Write([]byte(strconv.FormatInt(exp, 10)))
	h.Write([]byte{0})
	h.Write([]byte(token))
	return h.Sum(nil)
}

// issue returns a cookie value for token, valid for SessionTTL.
func (k *sessionKeys) issue(token string) (string, time.Time) {
	exp := k.now().Add(SessionTTL).Truncate(time.Second)
	return strconv.FormatInt(exp.Unix(), 10) + "." + hex.EncodeToString(k.mac(exp.Unix(), token)), exp
}

// valid reports whether a cookie value was issued for token and has not
// expired. A malformed value is simply invalid.
func (k *sessionKeys) valid(value, token string) bool {
	expS, sigS, ok := strings.Cut(value, ".")
	if !ok || token == "" {
		return false
	}
	exp, err := strconv.ParseInt(expS, 10, 64)
	if err != nil || k.now().Unix() >= exp {
		return false
	}
	sig, err := hex.DecodeString(sigS)
	if err != nil {
		return false
	}
	return hmac.Equal(sig, k.mac(exp, token))
}

// hasSession reports whether r carries a valid session cookie for token.
func (s *Server) hasSession(r *http.Request, token string) bool {
	c, err := r.Cookie(SessionCookie)
	return err == nil && s.sessions.valid(c.Value, token)
}

// authenticated reports whether r may read guarded routes: no admin_token
// is set, or r presents it as a bearer token or a session cookie.
func (s *Server) authenticated(r *http.Request) bool {
	cfg := s.config()
	if cfg == nil || cfg.AdminToken == "" {
		return true
	}
	if got, ok := bearer(r.Header.Get("Authorization")); ok {
		return tokenEqual(got, cfg.AdminToken)
	}
	return s.hasSession(r, cfg.AdminToken)
}

// handleLogin checks the token and sets the session cookie: HttpOnly,
// SameSite=Strict, Path=/, Secure when the request came over TLS. The body
// is JSON {"token":"..."} (the page's script), or a form field token (the
// page without JavaScript, answered 303 to the page). A wrong token is 401;
// with no admin_token set there is nothing to sign in to (409).
func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) {
	token, form, err := loginToken(r)
	if err != nil {
		httpx.Errorf(w, http.StatusBadRequest, "bad_request", "login: %v", err)
		return
	}
	cfg := s.config()
	if cfg == nil || cfg.AdminToken == "" {
		httpx.Error(w, http.StatusConflict, "no_token", "admin_token is not set: this node needs no sign-in")
		return
	}
	if token == "" || !tokenEqual(token, cfg.AdminToken) {
		httpx.Error(w, http.StatusUnauthorized, "", "wrong admin token")
		return
	}
	value, exp := s.sessions.issue(cfg.AdminToken)
	http.SetCookie(w, &http.Cookie{
		Name: SessionCookie, Value: value, Path: "/", Expires: exp, MaxAge: int(SessionTTL / time.Second),
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode,
	})
	w.Header().Set("Cache-Control", "no-store")
	if form {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	httpx.JSON(w, http.StatusOK, ActionResponse{Status: "signed in"})
}

// handleLogout clears the session cookie. The cookie itself stays valid
// until it expires or the token rotates; the browser forgets it.
func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{
		Name: SessionCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode,
	})
	w.Header().Set("Cache-Control", "no-store")
	httpx.JSON(w, http.StatusOK, ActionResponse{Status: "signed out"})
}

// loginToken reads the token of a login request; form says it came from an
// HTML form rather than JSON.
func loginToken(r *http.Request) (token string, form bool, err error) {
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct == "application/x-www-form-urlencoded" {
		if err := r.ParseForm(); err != nil {
			return "", true, err
		}
		return r.PostForm.Get("token"), true, nil
	}
	var req LoginRequest
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return "", false, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return "", false, errors.New("trailing data after the JSON object")
	}
	return req.Token, false, nil
}

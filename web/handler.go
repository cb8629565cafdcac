package web

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"os/exec"
	"strconv"
	"strings"

	"github.com/resman-dev/resman"
)

// Option configures Handler.
type Option func(*config)

type config struct {
	actions bool
	token   string
}

// WithActions enables the POST routes that stop and restart processes.
func WithActions() Option { return func(c *config) { c.actions = true } }

// WithToken makes every route want the header "Authorization: Bearer
// <token>"; a request without it, or with another token, gets 401. An empty
// token leaves the routes open.
func WithToken(token string) Option { return func(c *config) { c.token = token } }

// Handler serves m's status page, JSON and event stream (see the package
// doc). Defaults: read-only (no POST routes) unless WithActions; no token
// unless WithToken. It starts nothing until a request comes: each /events
// connection gets one subscriber actor, stopped when the connection ends.
func Handler(m *resman.Manager, opts ...Option) http.Handler {
	var cfg config
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	return &handler{m: m, cfg: cfg}
}

type handler struct {
	m   *resman.Manager
	cfg config
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.cfg.token != "" && !h.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="resman"`)
		writeError(w, http.StatusUnauthorized, "web: missing or wrong bearer token")
		return
	}
	segs, ok := segments(r.URL)
	if !ok {
		writeError(w, http.StatusBadRequest, "web: malformed path")
		return
	}
	route, allow := h.route(segs)
	if route == nil {
		writeError(w, http.StatusNotFound, "web: no such route")
		return
	}
	if r.Method != allow {
		w.Header().Set("Allow", allow)
		writeError(w, http.StatusMethodNotAllowed, "web: method not allowed")
		return
	}
	if r.Method == http.MethodPost && !sameOrigin(r) {
		writeError(w, http.StatusForbidden, "web: cross-origin request refused")
		return
	}
	route(w, r)
}

// route picks the handler for a path, and the method it takes.
func (h *handler) route(segs []string) (http.HandlerFunc, string) {
	switch {
	case len(segs) == 1 && segs[0] == "":
		return h.page, http.MethodGet
	case len(segs) == 1 && segs[0] == "status":
		return h.status, http.MethodGet
	case len(segs) == 1 && segs[0] == "events":
		return h.events, http.MethodGet
	case len(segs) == 2 && segs[0] == "tail" && segs[1] != "":
		key := segs[1]
		return func(w http.ResponseWriter, r *http.Request) { h.tail(w, r, key) }, http.MethodGet
	case h.cfg.actions && len(segs) == 3 && segs[0] == "processes" && segs[1] != "" &&
		(segs[2] == "stop" || segs[2] == "restart"):
		key, op := segs[1], segs[2]
		return func(w http.ResponseWriter, r *http.Request) { h.act(w, r, key, op) }, http.MethodPost
	}
	return nil, ""
}

// segments splits the escaped path at '/' and unescapes each segment, so a
// key may hold an escaped '/'.
func segments(u *url.URL) ([]string, bool) {
	p := u.EscapedPath()
	if !strings.HasPrefix(p, "/") {
		return nil, false
	}
	raw := strings.Split(p[1:], "/")
	segs := make([]string, len(raw))
	for i, s := range raw {
		v, err := url.PathUnescape(s)
		if err != nil {
			return nil, false
		}
		segs[i] = v
	}
	return segs, true
}

func (h *handler) authorized(r *http.Request) bool {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(got), []byte(h.cfg.token)) == 1
}

// sameOrigin reports whether a request's Origin, if any, names the host it
// was sent to. Browsers send Origin on every cross-origin POST; a client
// that sends none (curl) is no browser driven by another site.
func sameOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	return err == nil && u.Host != "" && strings.EqualFold(u.Host, r.Host)
}

func (h *handler) tail(w http.ResponseWriter, r *http.Request, key string) {
	n := 100
	if s := r.URL.Query().Get("n"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v <= 0 {
			writeError(w, http.StatusBadRequest, "web: n must be a positive number")
			return
		}
		n = v
	}
	lines, err := h.m.Tail(r.Context(), key, n)
	if err != nil {
		writeError(w, errorStatus(err), safeError(err))
		return
	}
	out := make([]outputJSON, len(lines))
	for i, l := range lines {
		out[i] = outputOf(l)
	}
	writeJSON(w, http.StatusOK, out)
}

func (h *handler) act(w http.ResponseWriter, r *http.Request, key, op string) {
	var err error
	if op == "stop" {
		err = h.m.StopProcess(r.Context(), key)
	} else {
		err = h.m.RestartProcess(r.Context(), key)
	}
	if err != nil {
		writeError(w, errorStatus(err), safeError(err))
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"key": key, "done": op})
}

// errorStatus maps the manager's sentinels to HTTP.
func errorStatus(err error) int {
	switch {
	case errors.Is(err, resman.ErrNotRegistered):
		return http.StatusNotFound
	case errors.Is(err, resman.ErrInvalid):
		return http.StatusBadRequest
	case errors.Is(err, resman.ErrClosed):
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

// safeError is an error's text without what could name a command: a start
// that failed says why, not which program or path.
func safeError(err error) string {
	if err == nil {
		return ""
	}
	var cause string
	var ee *exec.Error
	var pe *fs.PathError
	switch {
	case errors.As(err, &ee):
		cause = "start failed: " + ee.Err.Error()
	case errors.As(err, &pe):
		cause = "start failed: " + pe.Op + ": " + pe.Err.Error()
	default:
		return err.Error()
	}
	var re *resman.ResourceError
	if errors.As(err, &re) {
		return fmt.Sprintf("resman: %s %s %q: %s", re.Op, re.Kind, re.Key, cause)
	}
	return cause
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v) // the client went away: nothing to do
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

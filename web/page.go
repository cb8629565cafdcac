package web

import (
	_ "embed"
	"net/http"
	"strings"
)

// page.html is the whole status page: inline CSS and JS, nothing fetched
// from elsewhere (the Content-Security-Policy below enforces it).
//
//go:embed page.html
var pageHTML string

const pageCSP = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; " +
	"connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

func (h *handler) page(w http.ResponseWriter, _ *http.Request) {
	body := pageHTML
	if h.cfg.actions {
		body = strings.Replace(body, `data-actions="off"`, `data-actions="on"`, 1)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", pageCSP)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Referrer-Policy", "no-referrer")
	_, _ = w.Write([]byte(body))
}

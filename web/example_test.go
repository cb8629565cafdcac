package web_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"

	"github.com/resman-dev/resman"
	"github.com/resman-dev/resman/web"
)

// The handler serves a Manager; here a request goes straight to it. In a
// program, mount it on a mux: mux.Handle("/resman/",
// http.StripPrefix("/resman", web.Handler(m))).
func ExampleHandler() {
	m, err := resman.New()
	if err != nil {
		panic(err)
	}
	defer m.Close()
	h := web.Handler(m, web.WithActions())

	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/status", nil))
	body, _ := io.ReadAll(rec.Body)
	fmt.Print(rec.Code, " ", string(body))

	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/processes/db/stop", nil))
	fmt.Print(rec.Code, " ", rec.Body.String())
	// Output:
	// 200 {"processes":[],"tasks":[],"custom_resources":[]}
	// 404 {"error":"resman: stop process \"db\": not registered"}
}

// Package web serves a resman [resman.Manager] over HTTP: a status page for
// people and JSON for programs.
//
// # Routes
//
//	GET  /                        a self-contained HTML page that updates itself from /events
//	GET  /status                  the Manager's Status as JSON, with CPU and memory per running process
//	GET  /events                  text/event-stream: "resman" events and "output" lines, as JSON
//	GET  /tail/{key}?n=100        a supervised process's last n output lines as JSON
//	POST /processes/{key}/stop    Manager.StopProcess     (WithActions only)
//	POST /processes/{key}/restart Manager.RestartProcess  (WithActions only)
//
// Every error is a JSON body {"error":"..."} with a 4xx or 5xx status. A
// POST whose Origin header names another host than the request's gets 403,
// so that a page on another site cannot drive the actions through a
// visitor's browser. No response ever carries a process's environment or
// command line.
//
// # Mounting
//
// The handler's routes start at "/"; mount it under a prefix with
// [http.StripPrefix]:
//
//	mux.Handle("/resman/", http.StripPrefix("/resman", web.Handler(m, web.WithActions())))
//
// With [WithToken], every route wants "Authorization: Bearer <token>": put a
// proxy that adds it in front of a browser.
package web

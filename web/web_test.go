package web_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/resman-dev/resman"
	"github.com/resman-dev/resman/web"
)

// serve starts an httptest server for Handler(m, opts...), closed when the
// test ends.
func serve(t *testing.T, m *resman.Manager, opts ...web.Option) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(web.Handler(m, opts...))
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
	})
	return srv
}

type reply struct {
	code int
	ct   string
	body string
}

func do(t *testing.T, method, url string, header map[string]string) reply {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	require.NoError(t, err)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return reply{code: resp.StatusCode, ct: resp.Header.Get("Content-Type"), body: string(b)}
}

// requireJSONError checks an error reply: the code, and a JSON {"error"}.
func requireJSONError(t *testing.T, r reply, code int) {
	t.Helper()
	require.Equal(t, code, r.code, r.body)
	require.Equal(t, "application/json", r.ct)
	var e struct{ Error string }
	require.NoError(t, json.Unmarshal([]byte(r.body), &e), r.body)
	require.NotEmpty(t, e.Error)
}

type statusDoc struct {
	Processes []struct {
		Key          string    `json:"key"`
		PID          int       `json:"pid"`
		State        string    `json:"state"`
		RegisteredAt time.Time `json:"registered_at"`
		ExitCode     int       `json:"exit_code"`
		Restarts     int       `json:"restarts"`
		DependsOn    []struct {
			Kind string `json:"kind"`
			Key  string `json:"key"`
		} `json:"depends_on"`
		CPUSeconds   float64 `json:"cpu_seconds"`
		MemoryBytes  int64   `json:"memory_bytes"`
		DroppedLines int     `json:"dropped_lines"`
	} `json:"processes"`
	Tasks []struct {
		Key          string    `json:"key"`
		State        string    `json:"state"`
		RegisteredAt time.Time `json:"registered_at"`
		Error        string    `json:"error"`
		Restarts     int       `json:"restarts"`
		DependsOn    []any     `json:"depends_on"`
	} `json:"tasks"`
	CustomResources []struct {
		Key          string    `json:"key"`
		Type         string    `json:"type"`
		State        string    `json:"state"`
		RegisteredAt time.Time `json:"registered_at"`
		DependsOn    []struct {
			Kind string `json:"kind"`
			Key  string `json:"key"`
		} `json:"depends_on"`
	} `json:"custom_resources"`
}

func TestStatus(t *testing.T) {
	m := newManager(t)
	ctx := context.Background()
	require.NoError(t, m.Supervise(ctx, "sleeper", shSpec("echo up; exec sleep 30")))
	_, err := m.Go(ctx, "poller", func(ctx context.Context) error { <-ctx.Done(); return nil })
	require.NoError(t, err)
	require.NoError(t, m.RegisterCustomResource(ctx, "conn", &strings.Builder{},
		func(context.Context, any) error { return nil },
		resman.DependsOn(resman.KindProcess, "sleeper"), resman.DependsOn(resman.KindTask, "poller")))
	srv := serve(t, m)

	r := do(t, "GET", srv.URL+"/status", nil)
	require.Equal(t, 200, r.code, r.body)
	require.Equal(t, "application/json", r.ct)

	// Exactly the fields of the contract.
	var raw map[string][]map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.body), &raw))
	keys := func(m map[string]any) []string {
		var ks []string
		for k := range m {
			ks = append(ks, k)
		}
		return ks
	}
	require.Len(t, raw["processes"], 1)
	assert.ElementsMatch(t, []string{"key", "pid", "state", "registered_at", "exit_code", "restarts",
		"depends_on", "cpu_seconds", "memory_bytes", "dropped_lines"}, keys(raw["processes"][0]))
	require.Len(t, raw["tasks"], 1)
	assert.ElementsMatch(t, []string{"key", "state", "registered_at", "error", "restarts", "depends_on"}, keys(raw["tasks"][0]))
	require.Len(t, raw["custom_resources"], 1)
	assert.ElementsMatch(t, []string{"key", "type", "state", "registered_at", "depends_on"}, keys(raw["custom_resources"][0]))

	var st statusDoc
	require.NoError(t, json.Unmarshal([]byte(r.body), &st))
	p := st.Processes[0]
	assert.Equal(t, "sleeper", p.Key)
	assert.Positive(t, p.PID)
	assert.Equal(t, "running", p.State)
	assert.WithinDuration(t, time.Now(), p.RegisteredAt, time.Minute)
	assert.Positive(t, p.MemoryBytes, "a running process has resident memory")
	assert.NotNil(t, p.DependsOn)
	assert.Empty(t, p.DependsOn)
	assert.Equal(t, "poller", st.Tasks[0].Key)
	assert.Equal(t, "running", st.Tasks[0].State)
	c := st.CustomResources[0]
	assert.Equal(t, "conn", c.Key)
	assert.Equal(t, "*strings.Builder", c.Type)
	assert.Equal(t, "running", c.State)
	require.Len(t, c.DependsOn, 2)
	assert.Equal(t, "process", c.DependsOn[0].Kind)
	assert.Equal(t, "sleeper", c.DependsOn[0].Key)
	assert.Equal(t, "task", c.DependsOn[1].Kind)
	assert.Equal(t, "poller", c.DependsOn[1].Key)
}

// Neither the environment nor the command line of a process ever leaves
// the handler, whatever the route.
func TestNoSecretsLeak(t *testing.T) {
	const envSecret, argSecret = "env-s3cret-7f3a", "arg-s3cret-91bc"
	m := newManager(t)
	ctx := context.Background()
	spec := resman.ProcessSpec{
		Command: []string{"/bin/sh", "-c", "echo started; exec sleep 30", argSecret},
		Env:     []string{"RESMAN_TEST_SECRET=" + envSecret},
	}
	require.NoError(t, m.Supervise(ctx, "secretive", spec))
	// A run whose restart cannot start: its error must not name the program.
	bin := filepath.Join(t.TempDir(), argSecret)
	copyFile(t, "/bin/sleep", bin)
	require.NoError(t, m.Supervise(ctx, "vanishing", resman.ProcessSpec{Command: []string{bin, "30"}},
		resman.WithRestart(resman.RestartPolicy{Mode: resman.RestartAlways, MaxRestarts: 1, Backoff: time.Millisecond})))
	srv := serve(t, m, web.WithActions())

	stream := openEvents(t, srv.URL, nil)
	require.NoError(t, m.RestartProcess(ctx, "secretive"))
	require.NoError(t, os.Remove(bin))
	st, err := m.Status(ctx)
	require.NoError(t, err)
	require.NoError(t, syscall.Kill(st.Processes[1].PID, syscall.SIGKILL))
	var restarted, output, failed bool
	stream.waitFor(t, func(f frame) bool {
		restarted = restarted || f.event == "resman" && strings.Contains(f.data, `"restarted"`)
		output = output || f.event == "output" && strings.Contains(f.data, `"started"`)
		failed = failed || f.event == "resman" && strings.Contains(f.data, `"vanishing"`) && strings.Contains(f.data, `"error"`)
		return restarted && output && failed
	})

	bodies := []reply{
		do(t, "GET", srv.URL+"/", nil),
		do(t, "GET", srv.URL+"/status", nil),
		do(t, "GET", srv.URL+"/tail/secretive", nil),
		do(t, "GET", srv.URL+"/tail/secretive?n=1000", nil),
		do(t, "POST", srv.URL+"/processes/secretive/restart", nil),
		do(t, "POST", srv.URL+"/processes/nope/stop", nil),
		do(t, "POST", srv.URL+"/processes/vanishing/restart", nil), // its program is gone
		do(t, "GET", srv.URL+"/status", nil),
		do(t, "GET", srv.URL+"/nope", nil),
	}
	for _, b := range bodies {
		assert.NotContains(t, b.body, envSecret)
		assert.NotContains(t, b.body, argSecret)
		assert.NotContains(t, b.body, "sleep 30")
	}
	for _, f := range stream.all() {
		assert.NotContains(t, f.data, envSecret)
		assert.NotContains(t, f.data, argSecret)
		assert.NotContains(t, f.data, "sleep 30")
	}
}

func TestAuthAndOrigin(t *testing.T) {
	m := newManager(t)
	require.NoError(t, m.Supervise(context.Background(), "p", shSpec("exec sleep 30")))
	srv := serve(t, m, web.WithToken("t0ken"), web.WithActions())

	for _, path := range []string{"/", "/status", "/events", "/tail/p", "/nope"} {
		requireJSONError(t, do(t, "GET", srv.URL+path, nil), 401)
		requireJSONError(t, do(t, "GET", srv.URL+path, map[string]string{"Authorization": "Bearer wrong"}), 401)
		requireJSONError(t, do(t, "GET", srv.URL+path, map[string]string{"Authorization": "t0ken"}), 401)
	}
	requireJSONError(t, do(t, "POST", srv.URL+"/processes/p/restart", nil), 401)
	ok := map[string]string{"Authorization": "Bearer t0ken"}
	assert.Equal(t, 200, do(t, "GET", srv.URL+"/", ok).code)
	assert.Equal(t, 200, do(t, "GET", srv.URL+"/status", ok).code)
	assert.Equal(t, 200, do(t, "GET", srv.URL+"/tail/p", ok).code)
	openEvents(t, srv.URL, ok) // checks 200 and text/event-stream

	foreign := map[string]string{"Authorization": "Bearer t0ken", "Origin": "http://evil.example"}
	requireJSONError(t, do(t, "POST", srv.URL+"/processes/p/restart", foreign), 403)
	requireJSONError(t, do(t, "POST", srv.URL+"/processes/p/stop", foreign), 403)
	st, err := m.Status(context.Background())
	require.NoError(t, err)
	require.Len(t, st.Processes, 1, "a refused POST did nothing")
	require.Zero(t, st.Processes[0].Restarts)

	same := map[string]string{"Authorization": "Bearer t0ken", "Origin": srv.URL}
	r := do(t, "POST", srv.URL+"/processes/p/stop", same)
	require.Equal(t, 200, r.code, r.body)
	requireJSONError(t, do(t, "POST", srv.URL+"/processes/p/stop", same), 404)
}

func TestActions(t *testing.T) {
	m := newManager(t)
	ctx := context.Background()
	require.NoError(t, m.Supervise(ctx, "p", shSpec("exec sleep 30")))

	// Without WithActions there are no POST routes.
	ro := serve(t, m)
	requireJSONError(t, do(t, "POST", ro.URL+"/processes/p/stop", nil), 404)
	requireJSONError(t, do(t, "POST", ro.URL+"/processes/p/restart", nil), 404)

	srv := serve(t, m, web.WithActions())
	requireJSONError(t, do(t, "POST", srv.URL+"/processes/unknown/stop", nil), 404)
	requireJSONError(t, do(t, "POST", srv.URL+"/processes/unknown/restart", nil), 404)
	requireJSONError(t, do(t, "GET", srv.URL+"/processes/p/stop", nil), 405)
	requireJSONError(t, do(t, "POST", srv.URL+"/status", nil), 405)

	// A process that Supervise did not start cannot be restarted: ErrInvalid.
	require.NoError(t, m.StartProcess(ctx, "plain", exec.Command("sleep", "30")))
	requireJSONError(t, do(t, "POST", srv.URL+"/processes/plain/restart", nil), 400)

	before, err := m.Status(ctx)
	require.NoError(t, err)
	r := do(t, "POST", srv.URL+"/processes/p/restart", nil)
	require.Equal(t, 200, r.code, r.body)
	after, err := m.Status(ctx)
	require.NoError(t, err)
	assert.Equal(t, "p", after.Processes[0].Key)
	assert.NotEqual(t, before.Processes[0].PID, after.Processes[0].PID)

	r = do(t, "POST", srv.URL+"/processes/p/stop", nil)
	require.Equal(t, 200, r.code, r.body)
	after, err = m.Status(ctx)
	require.NoError(t, err)
	require.Len(t, after.Processes, 1)
	assert.Equal(t, "plain", after.Processes[0].Key)
}

func TestMalformedPaths(t *testing.T) {
	m := newManager(t)
	srv := serve(t, m, web.WithActions())
	for _, c := range []struct {
		method, path string
		code         int
	}{
		{"GET", "/nope", 404},
		{"GET", "/status/", 404},
		{"GET", "/status/x", 404},
		{"GET", "/tail", 404},
		{"GET", "/tail/", 404},
		{"GET", "/tail/a/b", 404},
		{"GET", "//status", 404},
		{"POST", "/processes//stop", 404},
		{"POST", "/processes/p", 404},
		{"POST", "/processes/p/kill", 404},
		{"POST", "/processes/p/stop/now", 404},
		{"POST", "/processes/%2e%2e/stop", 404},
		{"DELETE", "/status", 405},
	} {
		t.Run(c.method+c.path, func(t *testing.T) {
			requireJSONError(t, do(t, c.method, srv.URL+c.path, nil), c.code)
		})
	}
}

func TestTail(t *testing.T) {
	m := newManager(t)
	ctx := context.Background()
	require.NoError(t, m.Supervise(ctx, "printer", shSpec("for i in 1 2 3 4 5 6; do echo line$i; done; exec sleep 30"),
		resman.WithReady(resman.ReadyCheck{Output: "line6"})))
	require.NoError(t, m.Supervise(ctx, "complainer", shSpec("echo oops >&2; exec sleep 30"),
		resman.WithReady(resman.ReadyCheck{Output: "oops"})))
	srv := serve(t, m)

	var lines []struct {
		Key       string    `json:"key"`
		PID       int       `json:"pid"`
		Stream    string    `json:"stream"`
		Text      string    `json:"text"`
		At        time.Time `json:"at"`
		Truncated bool      `json:"truncated"`
	}
	r := do(t, "GET", srv.URL+"/tail/printer", nil)
	require.Equal(t, 200, r.code, r.body)
	require.NoError(t, json.Unmarshal([]byte(r.body), &lines))
	require.Len(t, lines, 6)
	assert.Equal(t, "line1", lines[0].Text)
	assert.Equal(t, "stdout", lines[0].Stream)
	assert.Equal(t, "printer", lines[0].Key)
	assert.Positive(t, lines[0].PID)
	assert.False(t, lines[0].At.IsZero())
	assert.Equal(t, "line6", lines[5].Text)
	r = do(t, "GET", srv.URL+"/tail/complainer", nil)
	require.Equal(t, 200, r.code, r.body)
	require.NoError(t, json.Unmarshal([]byte(r.body), &lines))
	require.Len(t, lines, 1)
	assert.Equal(t, "stderr", lines[0].Stream)
	assert.Equal(t, "oops", lines[0].Text)

	r = do(t, "GET", srv.URL+"/tail/printer?n=2", nil)
	require.Equal(t, 200, r.code, r.body)
	require.NoError(t, json.Unmarshal([]byte(r.body), &lines))
	require.Len(t, lines, 2)
	assert.Equal(t, "line5", lines[0].Text)
	assert.Equal(t, "line6", lines[1].Text)

	for _, n := range []string{"0", "-1", "x", "1.5", "99999999999999999999"} {
		requireJSONError(t, do(t, "GET", srv.URL+"/tail/printer?n="+n, nil), 400)
	}
	requireJSONError(t, do(t, "GET", srv.URL+"/tail/unknown", nil), 404)
}

// frame is one server-sent event.
type frame struct {
	event, data string
	seen        int // how many frames of this event with this data so far, this one included
}

// eventStream reads /events on a goroutine of its own, which ends when the
// test does (the request's context is cancelled and the body closed).
type eventStream struct {
	frames chan frame
	seen   []frame
}

func openEvents(t *testing.T, base string, header map[string]string) *eventStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, "GET", base+"/events", nil)
	require.NoError(t, err)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		require.NoError(t, err)
	}
	require.Equal(t, 200, resp.StatusCode)
	require.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	s := &eventStream{frames: make(chan frame, 4096)}
	done := make(chan struct{})
	go func() { // owned by the test: ends when the body is closed
		defer close(done)
		defer close(s.frames)
		sc := bufio.NewScanner(resp.Body)
		var f frame
		counts := map[string]int{}
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if f.event != "" {
					counts[f.event+f.data]++
					f.seen = counts[f.event+f.data]
					s.frames <- f
				}
				f = frame{}
			case strings.HasPrefix(line, "event: "):
				f.event = line[len("event: "):]
			case strings.HasPrefix(line, "data: "):
				f.data = line[len("data: "):]
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		resp.Body.Close()
		<-done
	})
	return s
}

// waitFor reads frames until ok accepts one, for up to 10s.
func (s *eventStream) waitFor(t *testing.T, ok func(frame) bool) frame {
	t.Helper()
	timeout := time.NewTimer(10 * time.Second)
	defer timeout.Stop()
	for {
		select {
		case f, open := <-s.frames:
			require.True(t, open, "the event stream ended")
			s.seen = append(s.seen, f)
			if ok(f) {
				return f
			}
		case <-timeout.C:
			t.Fatalf("no such frame within 10s; seen %v", s.seen)
		}
	}
}

// all returns what was read so far.
func (s *eventStream) all() []frame {
	for {
		select {
		case f, open := <-s.frames:
			if !open {
				return s.seen
			}
			s.seen = append(s.seen, f)
		default:
			return s.seen
		}
	}
}

func TestEvents(t *testing.T) {
	m := newManager(t)
	srv := serve(t, m)
	stream := openEvents(t, srv.URL, nil)
	require.NoError(t, m.Supervise(context.Background(), "talker", shSpec("echo hello-events; exec sleep 30")))

	// The event and the line travel separately: either may come first.
	var event, output *frame
	stream.waitFor(t, func(f frame) bool {
		switch {
		case f.event == "resman" && event == nil:
			event = &f
		case f.event == "output" && output == nil:
			output = &f
		}
		return event != nil && output != nil
	})
	var ev struct {
		Kind string `json:"kind"`
		Key  string `json:"key"`
		Type string `json:"type"`
		PID  int    `json:"pid"`
	}
	require.NoError(t, json.Unmarshal([]byte(event.data), &ev))
	assert.Equal(t, "process", ev.Kind)
	assert.Equal(t, "talker", ev.Key)
	assert.Equal(t, "registered", ev.Type)
	assert.Positive(t, ev.PID)

	var line struct {
		Key    string `json:"key"`
		PID    int    `json:"pid"`
		Stream string `json:"stream"`
		Text   string `json:"text"`
	}
	require.NoError(t, json.Unmarshal([]byte(output.data), &line))
	assert.Equal(t, "talker", line.Key)
	assert.Equal(t, ev.PID, line.PID)
	assert.Equal(t, "stdout", line.Stream)
	assert.Equal(t, "hello-events", line.Text)

	require.NoError(t, m.StopProcess(context.Background(), "talker"))
	stream.waitFor(t, func(f frame) bool { return f.event == "resman" && strings.Contains(f.data, `"stopped"`) })
}

// A manager that shuts down ends the streams it feeds.
func TestEventsEndAtShutdown(t *testing.T) {
	m, err := resman.New()
	require.NoError(t, err)
	srv := serve(t, m)
	stream := openEvents(t, srv.URL, nil)
	require.NoError(t, m.Close())
	timeout := time.NewTimer(10 * time.Second)
	defer timeout.Stop()
	for {
		select {
		case _, open := <-stream.frames:
			if !open {
				requireJSONError(t, do(t, "GET", srv.URL+"/status", nil), 503)
				return
			}
		case <-timeout.C:
			t.Fatal("the stream outlived the manager")
		}
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(to, b, 0o755))
}

// Mounted under a prefix with http.StripPrefix, the routes work as at "/".
func TestMountedUnderPrefix(t *testing.T) {
	m := newManager(t)
	require.NoError(t, m.Supervise(context.Background(), "p", shSpec("echo hi; exec sleep 30"),
		resman.WithReady(resman.ReadyCheck{Output: "hi"})))
	mux := http.NewServeMux()
	mux.Handle("/resman/", http.StripPrefix("/resman", web.Handler(m)))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	r := do(t, "GET", srv.URL+"/resman/", nil)
	require.Equal(t, 200, r.code)
	require.Contains(t, r.ct, "text/html")
	require.Equal(t, 200, do(t, "GET", srv.URL+"/resman/status", nil).code)
	r = do(t, "GET", srv.URL+"/resman/tail/p?n=1", nil)
	require.Equal(t, 200, r.code, r.body)
	require.Contains(t, r.body, `"text":"hi"`)
}

// A client that goes away ends its /events handler: the subscriber actor is
// unsubscribed and stopped before ServeHTTP returns.
func TestEventsEndWithClient(t *testing.T) {
	m := newManager(t)
	h := web.Handler(m)
	returned := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r)
		if r.URL.Path == "/events" {
			returned <- struct{}{}
		}
	}))
	t.Cleanup(srv.Close)

	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, "GET", srv.URL+"/events", nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	require.Equal(t, 200, resp.StatusCode)
	cancel()
	resp.Body.Close()
	select {
	case <-returned:
	case <-time.After(10 * time.Second):
		t.Fatal("the /events handler outlived its client")
	}
	// The manager goes on serving.
	require.NoError(t, m.Supervise(context.Background(), "after", shSpec("exec sleep 30")))
	require.Equal(t, 200, do(t, "GET", srv.URL+"/status", nil).code)
}

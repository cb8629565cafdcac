package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strconv"
	"testing"

	"github.com/resman-dev/resman/web"
)

// BenchmarkStatusJSON: GET /status over HTTP on loopback with 10,000
// resources tracked, the response read whole and its resources counted, against the baseline of
// Manager.Status and encoding/json of the Status it returns (what any JSON
// status costs without the handler). "mixed" has 1,000 running processes
// (whose CPU time and memory the handler reads for each), 4,500 tasks and
// 4,500 custom resources; "tasks" has 10,000 tasks. BENCHMARKS.md has the
// numbers and the command.
func BenchmarkStatusJSON(b *testing.B) {
	for _, tc := range []struct {
		name             string
		procs, tasks, cr int
	}{
		{"mixed", 1000, 4500, 4500},
		{"tasks", 0, 10000, 0},
	} {
		b.Run(tc.name, func(b *testing.B) {
			m := newManager(b)
			ctx := context.Background()
			for i := range tc.procs {
				if err := m.StartProcess(ctx, "p"+strconv.Itoa(i), exec.Command("sleep", "300")); err != nil {
					b.Fatal(err)
				}
			}
			for i := range tc.tasks {
				if _, err := m.Go(ctx, "t"+strconv.Itoa(i), func(ctx context.Context) error { <-ctx.Done(); return nil }); err != nil {
					b.Fatal(err)
				}
			}
			for i := range tc.cr {
				if err := m.RegisterCustomResource(ctx, "c"+strconv.Itoa(i), i, func(context.Context, any) error { return nil }); err != nil {
					b.Fatal(err)
				}
			}
			total := tc.procs + tc.tasks + tc.cr
			srv := httptest.NewServer(web.Handler(m))
			b.Cleanup(srv.Close)
			b.Run("raw=status+json.Marshal", func(b *testing.B) {
				for range b.N {
					st, err := m.Status(ctx)
					if err != nil {
						b.Fatal(err)
					}
					body, err := json.Marshal(st)
					if err != nil {
						b.Fatal(err)
					}
					if len(body) == 0 || len(st.Processes)+len(st.Tasks)+len(st.CustomResources) != total {
						b.Fatalf("status has %d resources, want %d", len(st.Processes)+len(st.Tasks)+len(st.CustomResources), total)
					}
				}
			})
			b.Run("web=GET-status", func(b *testing.B) {
				for range b.N {
					if n := getStatus(b, srv.URL); n != total {
						b.Fatalf("/status lists %d resources, want %d", n, total)
					}
				}
			})
		})
	}
}

// getStatus reads GET /status whole and counts the resources it lists (each
// has one "key" field; a ProcessSpec never goes out, so nothing else does).
func getStatus(b *testing.B, base string) int {
	resp, err := http.Get(base + "/status")
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		b.Fatalf("GET /status: %v %d", err, resp.StatusCode)
	}
	return bytes.Count(body, []byte(`"key":`))
}

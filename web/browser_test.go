package web_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/resman-dev/resman"
	"github.com/resman-dev/resman/web"
)

const chromiumPath = "/usr/bin/chromium"

// TestBrowser drives the status page in Debian's chromium, headless: the
// page lists what is supervised, follows stops and new processes without a
// reload, tails a selected process, and loads nothing from elsewhere. With
// RESMAN_SCREENSHOT=1 it also writes docs/dashboard.png.
func TestBrowser(t *testing.T) {
	if _, err := exec.LookPath(chromiumPath); err != nil {
		t.Fatalf("the browser test needs chromium at %s (apt-get install -y chromium; .ci/run installs it): %v", chromiumPath, err)
	}
	m := newManager(t)
	ctx := context.Background()
	require.NoError(t, m.Supervise(ctx, "db", shSpec("echo 'database system is ready'; exec sleep 60")))
	require.NoError(t, m.Supervise(ctx, "web.1",
		shSpec(`i=0; while :; do i=$((i+1)); echo "GET /api/items 200 $((i%7+2))ms req=$i"; sleep 0.2; done`),
		resman.DependsOn(resman.KindProcess, "db")))
	require.NoError(t, m.Supervise(ctx, "worker", shSpec("echo 'worker waiting for jobs'; exec sleep 60"),
		resman.DependsOn(resman.KindProcess, "db")))
	require.NoError(t, m.Supervise(ctx, "flaky", shSpec("echo 'connecting to queue'; echo 'error: connection refused' >&2; exit 3"),
		resman.WithRestart(resman.RestartPolicy{Mode: resman.RestartOnFailure, Backoff: 200 * time.Millisecond, MaxRestarts: 2})))
	_, err := m.Go(ctx, "metrics-flush", func(ctx context.Context) error { <-ctx.Done(); return nil })
	require.NoError(t, err)
	require.NoError(t, m.RegisterCustomResource(ctx, "tmp-dir", t.TempDir(),
		func(context.Context, any) error { return nil }, resman.DependsOn(resman.KindProcess, "worker")))
	require.NoError(t, m.RegisterCustomResource(ctx, "cache", &sync.Map{},
		func(context.Context, any) error { return nil }, resman.DependsOn(resman.KindProcess, "db")))

	srv := serve(t, m, web.WithActions())

	limit, cancelLimit := context.WithTimeout(ctx, 2*time.Minute) // the browser lives no longer
	defer cancelLimit()
	alloc, cancelAlloc := chromedp.NewExecAllocator(limit,
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1360, 940),
	)
	defer cancelAlloc()
	browser, cancelBrowser := chromedp.NewContext(alloc)
	defer cancelBrowser()

	// Every request the page makes, recorded on chromedp's goroutine and
	// read here once the browser is closed.
	var mu sync.Mutex
	var urls, exceptions []string
	require.NoError(t, chromedp.Listen(browser, func(ev any) {
		switch e := ev.(type) {
		case *network.EventRequestWillBeSent:
			mu.Lock()
			urls = append(urls, e.Request.URL)
			mu.Unlock()
		case *runtime.EventExceptionThrown:
			mu.Lock()
			msg := fmt.Sprintf("%s (line %d)", e.ExceptionDetails.Text, e.ExceptionDetails.LineNumber+1)
			if x := e.ExceptionDetails.Exception; x != nil {
				msg += ": " + x.Description
			}
			exceptions = append(exceptions, msg)
			mu.Unlock()
		}
	}))

	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(browser, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	count := func(sel string) int {
		t.Helper()
		n, err := chromedp.Run(browser, chromedp.Evaluate[int](`document.querySelectorAll(`+strconv.Quote(sel)+`).length`))
		require.NoError(t, err)
		return n
	}
	do("open the page",
		chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := cdp.Call(ctx, tg, network.Enable, network.EnableParams{})
			return err
		}),
		chromedp.Navigate(srv.URL+"/"),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-key="web.1"]`)),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-key="worker"] .badge.running`)),
		chromedp.WaitVisible(chromedp.CSS(`#conn.live`)),
		chromedp.Poll[chromedp.Void](`(window.stillThisPage = true)`),
	)

	// A stop shows without a reload (the custom resource that depends on
	// the worker goes first).
	require.NoError(t, m.StopProcess(ctx, "worker"))
	do("the stopped process leaves the table",
		chromedp.WaitNotPresent(chromedp.CSS(`tr[data-key="worker"]`)),
		chromedp.WaitNotPresent(chromedp.CSS(`tr[data-key="tmp-dir"]`)),
	)
	// So does a new process.
	require.NoError(t, m.Supervise(ctx, "worker.2", shSpec("echo 'worker 2 up'; exec sleep 60"),
		resman.DependsOn(resman.KindProcess, "db")))
	do("the new process appears",
		chromedp.WaitVisible(chromedp.CSS(`tr[data-key="worker.2"] .badge.running`)))

	// Selecting a process shows its output, old lines and then new ones.
	do("select web.1",
		chromedp.Click(chromedp.CSS(`tr[data-key="web.1"]`)),
		chromedp.WaitVisible(chromedp.CSS(`tr.selected[data-key="web.1"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#tail .line`)),
	)
	before := count("#tail .line")
	do("live lines are appended",
		chromedp.Poll[chromedp.Void](`document.querySelectorAll("#tail .line").length > `+strconv.Itoa(before+2),
			chromedp.WithPollingTimeout(20*time.Second)))
	text, err := chromedp.Run(browser, chromedp.Text(chromedp.CSS(`#tail`)))
	require.NoError(t, err)
	require.Contains(t, text, "GET /api/items 200")

	same, err := chromedp.Run(browser, chromedp.Evaluate[bool](`window.stillThisPage === true`))
	require.NoError(t, err)
	require.True(t, same, "the page was reloaded")

	if os.Getenv("RESMAN_SCREENSHOT") != "" {
		// Some history for the picture: the flaky process tries again.
		require.NoError(t, m.RestartProcess(ctx, "flaky"))
		do("events listed", chromedp.Poll[chromedp.Void](`document.querySelectorAll("#events .ev-gave-up").length > 0`))
		do("status settled", chromedp.WaitVisible(chromedp.CSS(`tr[data-key="flaky"] .badge.failed`)))
		png, err := chromedp.Run(browser, chromedp.CaptureScreenshot())
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join("..", "docs", "dashboard.png"), png, 0o644))
	}

	// Close the browser, then look at what it asked for.
	if err := chromedp.Cancel(browser); err != nil && !errors.Is(err, context.Canceled) {
		t.Logf("closing the browser: %v", err)
	}
	cancelAlloc()
	mu.Lock()
	defer mu.Unlock()
	require.Empty(t, exceptions, "the page threw")
	require.NotEmpty(t, urls)
	for _, u := range urls {
		if !strings.HasPrefix(u, srv.URL+"/") {
			t.Errorf("the page loaded %q, not from the test server %s", u, srv.URL)
		}
	}
}

package ready

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/resman-dev/resman/messages"
)

// A probe is one poll of a check: nil when it passed, else what failed.
type probe func(ctx context.Context) error

// newProbe returns the probe of c's target (c is valid and not Output);
// a TCP or HTTP poll gives up after attempt.
func newProbe(c messages.ReadyCheck, attempt time.Duration) probe {
	switch {
	case c.TCP != "":
		return tcpProbe(c.TCP, attempt)
	case c.HTTP != "":
		return httpProbe(c.HTTP, attempt)
	default:
		return funcProbe(c.Func)
	}
}

// tcpProbe passes when addr accepts a connection, which it closes at once.
func tcpProbe(addr string, attempt time.Duration) probe {
	var d net.Dialer
	return func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, attempt)
		defer cancel()
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		_ = conn.Close() // it accepted: that is all we asked
		return nil
	}
}

// httpProbe passes when a GET of url answers 2xx. The client keeps no
// connection alive (so no connection goroutine outlives a poll) and uses no
// proxy (the check is of the run itself).
func httpProbe(url string, attempt time.Duration) probe {
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	return func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, attempt)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		_ = resp.Body.Close()
		if resp.StatusCode < 200 || resp.StatusCode > 299 {
			return fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		return nil
	}
}

// funcProbe passes when fn returns nil. fn runs on a goroutine of its own,
// so a fn that ignores ctx holds up no more than this poll: the probe
// returns when ctx ends.
func funcProbe(fn func(context.Context) error) probe {
	return func(ctx context.Context) error {
		// The goroutine is owned by this poll and never blocks on result; it
		// ends when fn returns, even if that is after Wait has returned.
		result := make(chan error, 1)
		go func() {
			result <- call(ctx, fn)
		}()
		select {
		case err := <-result:
			return err
		case <-ctx.Done():
			select {
			case err := <-result: // both were ready: fn's own result says more
				return err
			default:
				return fmt.Errorf("func still running after its ctx ended (%v)", ctx.Err())
			}
		}
	}
}

// call calls fn, a panic in it becoming its error.
func call(ctx context.Context, fn func(context.Context) error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("func panicked: %v", v)
		}
	}()
	if err := fn(ctx); err != nil {
		return fmt.Errorf("func: %w", err)
	}
	return nil
}

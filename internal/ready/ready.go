// Package ready waits for a run to pass its ready check
// (messages.ReadyCheck): a TCP address that accepts a connection, an HTTP
// URL that answers 2xx, an output line that matches a regexp, or a function
// that returns nil.
//
// Registrations call [Validate] when they are made and [Wait] once a run has
// started. What a failed check does to the run (stop it, count it as a failed
// run, turn the error into the caller's) is theirs to decide.
package ready

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/resman-dev/resman/messages"
)

// ErrOutputEnded: an Output check saw the run's output end (its channel of
// lines closed) before a line matched.
var ErrOutputEnded = errors.New("output ended before a line matched")

// Wait returns nil once c passes. It polls at once and then Interval
// (default 100ms) after each failed poll, and fails with
//   - an error wrapping messages.ErrTimeout, with the last failure seen, when
//     c has not passed within Timeout (default 30s);
//   - ctx's error, wrapped, when ctx ends first;
//   - ErrOutputEnded, wrapped, when lines closes before a line matched;
//   - Validate's error for an invalid c (lines == nil counts as no captured
//     output).
//
// An Output check does not poll: it reads lines, the text of each line the
// run writes, until one matches. A TCP or HTTP poll has its own timeout, the
// larger of Interval and 1s. Func is called with a ctx that ends with the
// Timeout; a panic in it is a failed poll. A Func that ignores its ctx is
// abandoned at the Timeout: Wait returns, and the goroutine calling it ends
// when Func does.
func Wait(ctx context.Context, c messages.ReadyCheck, lines <-chan string) error {
	return wait(ctx, c, lines, nil)
}

// wait is Wait; failed, unless nil, is called with each failed poll (or each
// line that did not match), on Wait's goroutine.
func wait(ctx context.Context, c messages.ReadyCheck, lines <-chan string, failed func(error)) error {
	if err := Validate(c, lines != nil); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%w: ready check not started", err)
	}
	timeout := cmp.Or(c.Timeout, messages.DefaultReadyTimeout)
	interval := cmp.Or(c.Interval, messages.DefaultReadyInterval)
	tctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	var err error
	if c.Output != "" {
		err = watch(tctx, c.Output, lines, failed)
	} else {
		err = poll(tctx, newProbe(c, max(interval, time.Second)), interval, failed)
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrOutputEnded):
		return err
	case ctx.Err() != nil:
		return fmt.Errorf("%w: not ready yet: %v", ctx.Err(), err)
	default:
		return fmt.Errorf("%w: not ready within %v: %v", messages.ErrTimeout, timeout, err)
	}
}

// poll runs p until it passes (nil) or ctx ends (the last failure).
func poll(ctx context.Context, p probe, interval time.Duration, failed func(error)) error {
	// A poll can meet ctx's deadline a moment before ctx reports it (a dial
	// checks the deadline itself), so the clock says when time is up.
	deadline, _ := ctx.Deadline()
	over := func() bool { return ctx.Err() != nil || !time.Now().Before(deadline) }
	timer := time.NewTimer(interval)
	defer timer.Stop()
	var last error
	for {
		err := p(ctx)
		if err == nil {
			return nil
		}
		// A poll cut short by the deadline says less than the one before it.
		if last == nil || !over() {
			last = err
		}
		if failed != nil {
			failed(err)
		}
		timer.Reset(interval)
		select {
		case <-ctx.Done():
			return last
		case <-timer.C:
		}
		if over() { // the timer fired with the deadline: ctx is a moment from ending
			<-ctx.Done()
			return last
		}
	}
}

// watch reads lines until one matches expr (nil), lines closes
// (ErrOutputEnded) or ctx ends (what was seen). Validate has compiled expr.
func watch(ctx context.Context, expr string, lines <-chan string, failed func(error)) error {
	re := regexp.MustCompile(expr)
	var last error = errors.New("no output line yet")
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				return fmt.Errorf("%w %q", ErrOutputEnded, expr)
			}
			if re.MatchString(line) {
				return nil
			}
			last = fmt.Errorf("no output line matched %q; the last was %q", expr, line)
			if failed != nil {
				failed(last)
			}
		case <-ctx.Done():
			return last
		}
	}
}

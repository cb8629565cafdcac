package actors

import (
	"context"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/resman-dev/resman/internal/ready"
	"github.com/resman-dev/resman/messages"
)

// taskLoop is the body of a task that Go started with a restart policy or a
// ready check: it runs fn once per run, checks each run's readiness, and
// applies the policy when a run ends on its own. It lives on the task's own
// goroutine, so the Task stands for the whole supervision (Done closes when
// no restart will follow, Err is the last run's result, Cancel ends it), and
// it reports each step to the supervisor by message. A cancelled task's
// context stops it: no run starts after a cancel.
type taskLoop struct {
	fn     func(context.Context) error
	lc     messages.Lifecycle
	rs     *restarter
	h      *Handle
	report func(msg any)
}

// SupervisedTaskReg starts fn as a task whose runs follow lc's restart
// policy and ready check, and returns its registration. With a ready check,
// the first run's outcome comes as Started (the registration is pending
// until then); each run's end that another follows comes as Exited with
// More, then Restarting and Restarted, or GaveUp; the last run's end comes
// as the task's return.
func SupervisedTaskReg(ctx context.Context, key string, fn func(context.Context) error, lc messages.Lifecycle, report func(msg any)) *Reg {
	r := newReg(messages.KindTask, key, nil)
	r.lc = lc
	l := &taskLoop{fn: fn, lc: lc, rs: newRestarter(lc.Restart), h: r.H, report: report}
	t := messages.StartTask(ctx, l.run)
	r.res = &task{t: t}
	watchReturn(r, t, report)
	return r
}

func (l *taskLoop) run(ctx context.Context) error {
	for first := true; ; first = false {
		began := time.Now()
		err, notReady := l.once(ctx, first)
		if first && notReady != nil {
			// A first start that fails its check is not retried: nothing
			// stays tracked.
			l.report(&Started{H: l.h, Err: fmt.Errorf("%w: %v", messages.ErrTimeout, notReady)})
			return err
		}
		if ctx.Err() != nil {
			return err // ended by a cancel: never restarted
		}
		failed := err != nil || notReady != nil
		if notReady != nil {
			err = fmt.Errorf("%w: %v", messages.ErrTimeout, notReady)
		}
		d, delay := l.rs.next(time.Now(), time.Since(began), !failed)
		if d == stopHere {
			return err
		}
		l.report(&Exited{H: l.h, Err: err, More: true, Restarts: l.rs.restarts})
		if d == giveUp {
			l.report(&GaveUp{H: l.h, Restarts: l.rs.restarts,
				Err: fmt.Errorf("%w: more than %d restarts within %v", messages.ErrRestartLimit, l.rs.p.MaxRestarts, l.rs.p.Window)})
			return err
		}
		l.report(&Restarting{H: l.h, Delay: delay, Restarts: l.rs.restarts})
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return err // a cancel during the backoff cancels the restart
		case <-t.C:
		}
		if ctx.Err() != nil {
			return err // cancelled as the backoff ended: select may pick either
		}
		l.rs.restarts++
		l.report(&Restarted{H: l.h, Restarts: l.rs.restarts, Starting: l.lc.Ready != nil})
	}
}

// once runs fn one time; with a ready check, fn runs on a goroutine of its
// own (owned by once, which waits for it) while the check polls, and a run
// that is not ready in time is cancelled.
func (l *taskLoop) once(ctx context.Context, first bool) (err, notReady error) {
	if l.lc.Ready == nil {
		return l.call(ctx), nil
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- l.call(rctx) }() // owned by once: it waits for it below
	if notReady = ready.Wait(rctx, *l.lc.Ready, nil); notReady != nil {
		cancel()
		return <-done, notReady
	}
	if first {
		l.report(&Started{H: l.h, Ready: true})
	} else {
		l.report(&Ready{H: l.h})
	}
	return <-done, nil
}

// call runs fn, a panic recovered as a *PanicError.
func (l *taskLoop) call(ctx context.Context) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = &messages.PanicError{Value: p, Stack: debug.Stack()}
		}
	}()
	return l.fn(ctx)
}

package actors

import (
	"fmt"
	"time"

	"github.com/resman-dev/resman/messages"
)

// task is the resource of a task registration. An idle task costs no
// goroutine and no child work: the task itself calls back when fn returns.
type task struct {
	t *messages.Task
}

// TaskReg returns the registration of t. Until its child begins ending it,
// a return of fn on its own is reported with report (an *Exited), from fn's
// goroutine.
func TaskReg(key string, t *messages.Task, report func(msg any)) *Reg {
	r := newReg(messages.KindTask, key, &task{t: t})
	watchReturn(r, t, report)
	return r
}

// watchReturn reports t's return on its own as an *Exited, until the child
// removes the hook (unhook) as it begins ending the task: a return that the
// end caused is the end's outcome, not an exit.
func watchReturn(r *Reg, t *messages.Task, report func(msg any)) {
	r.unhook = t.OnReturn(func(err error) { report(&Exited{H: r.H, Err: err}) })
}

func (k *task) eager() bool { return false }

func (k *task) start(*Reg, bool) {}

func (k *task) end(r *Reg, e *End) {
	r.unhook()
	if e.Mode == EndRelease {
		r.finish(&Ended{Mode: EndRelease, Task: k.t})
		return
	}
	k.t.Cancel()
	// No goroutine waits: the task's own return finishes, or a timer does
	// (the sweep's, if it has one).
	if e.Deadline != nil && r.lc.Grace == 0 && e.Deadline.add(r) {
		k.t.OnDone(func(error) { r.finish(cancelled) })
		return
	}
	grace := r.opts().timeout(e.grace(r.lc))
	timer := time.AfterFunc(grace, func() { k.timedOut(r, grace) })
	k.t.OnDone(func(error) {
		timer.Stop()
		r.finish(cancelled)
	})
}

// timedOut reports a task still running at the end of its grace period.
func (k *task) timedOut(r *Reg, grace time.Duration) {
	// Goroutines cannot be killed: report it, and do not forget it.
	r.opts().Logger.Warn("resman: task ignored its cancellation past the grace period; it is still running",
		"key", r.H.Key, "grace", grace)
	r.finish(&Ended{Mode: EndStop, Err: fmt.Errorf("%w: task still running after %v (its goroutine ignores cancellation)", messages.ErrTimeout, grace)})
}

// cancelled is the outcome of every task that returned within its grace
// period; it is never modified.
var cancelled = &Ended{Mode: EndStop}

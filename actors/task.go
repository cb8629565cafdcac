package actors

import (
	"fmt"
	"time"

	"github.com/resman-dev/resman/messages"
)

// task is the resource of a task registration. An idle task costs no
// goroutine and no child work: the task itself calls back when fn returns.
// Its fields past t are owned by the child's Receive.
type task struct {
	t        *messages.Task
	grace    time.Duration // once ending: the grace period
	timer    *time.Timer   // once ending with a grace period of its own: sends lapse
	swept    bool          // once ending: the sweep's Lapse ends the grace period instead
	returned taskReturned  // what the OnDone hook sends: it runs once
}

// taskReturned: a task that the child is ending has returned.
type taskReturned struct{ r *Reg }

// TaskReg returns the registration of t. Until its child begins ending it,
// a return of fn on its own is reported with report (an *Exited), from fn's
// goroutine before Done is closed. That is the supervisor's own watch of
// the task, set up as it registers it, not a report of the child's: whoever
// saw Done closed and asks the supervisor next finds the task exited.
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
		r.conclude(&Ended{Mode: EndRelease, Task: k.t})
		return
	}
	k.t.Cancel()
	k.grace = r.opts().timeout(e.grace(r.lc))
	// No goroutine waits: the task's return tells the child, or the end of
	// the grace period does (the sweep's, if it has one).
	if e.Swept && r.lc.Grace == 0 {
		k.swept = true
	} else {
		c := r.c
		k.timer = time.AfterFunc(k.grace, func() { c.tell(&lapse{r: r}) })
	}
	k.returned.r = r
	k.t.OnDone(func(error) { r.c.tell(&k.returned) })
}

// receive handles the messages about the task that its child is ending.
func (k *task) receive(r *Reg, msg any) {
	switch msg := msg.(type) {
	case *taskReturned:
		if msg.r == r {
			k.ended(r)
		}
	case *lapse:
		if msg.r == r {
			k.lapse(r, msg)
		}
	}
}

// ended handles the return of a task that the child is ending.
func (k *task) ended(r *Reg) {
	if k.timer != nil {
		k.timer.Stop()
	}
	r.conclude(cancelled)
}

// lapse handles the end of the grace period: a task still running is
// reported timed out. Goroutines cannot be killed: it is reported, not
// forgotten.
func (k *task) lapse(r *Reg, l *lapse) {
	if r.over || (l.sweep && !k.swept) || (!l.sweep && k.timer == nil) {
		return // it returned, or the lapse is not its grace period's
	}
	r.opts().Logger.Warn("resman: task ignored its cancellation past the grace period; it is still running",
		"key", r.H.Key, "grace", k.grace)
	r.conclude(&Ended{Mode: EndStop, Err: fmt.Errorf("%w: task still running after %v (its goroutine ignores cancellation)", messages.ErrTimeout, k.grace)})
}

// cancelled is the outcome of every task that returned within its grace
// period; it is never modified.
var cancelled = &Ended{Mode: EndStop}

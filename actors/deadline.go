package actors

import (
	"sync"
	"time"
)

// Deadline is the end of a grace period shared by the ends of one sweep (a
// CleanupAll's): one timer for all of them instead of one each. A task
// whose fn has not returned by then is reported as timed out.
type Deadline struct {
	grace time.Duration

	mu      sync.Mutex // guards the fields below
	timer   *time.Timer
	waiting []*Reg // task registrations ending within it
	over    bool   // expired or stopped: add refuses
}

// NewDeadline starts a grace period of d.
func NewDeadline(d time.Duration) *Deadline {
	dl := &Deadline{grace: d}
	dl.mu.Lock()
	dl.timer = time.AfterFunc(d, dl.expire)
	dl.mu.Unlock()
	return dl
}

// Stop ends the grace period early, once everything it covers has ended.
func (d *Deadline) Stop() {
	if d == nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.over = true
	d.timer.Stop()
	d.waiting = nil
}

// add puts r under the deadline; false if the deadline is over.
func (d *Deadline) add(r *Reg) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.over {
		return false
	}
	d.waiting = append(d.waiting, r)
	return true
}

// expire reports every registration still running as timed out. It runs
// on the timer's goroutine.
func (d *Deadline) expire() {
	d.mu.Lock()
	waiting := d.waiting
	d.waiting, d.over = nil, true
	d.mu.Unlock()
	for _, r := range waiting {
		if !r.finished() {
			r.res.(*task).timedOut(r, d.grace)
		}
	}
}

package actors

import (
	"math/rand/v2"
	"time"

	"github.com/resman-dev/resman/messages"
)

// restarter decides, after each run, whether another follows and when. It
// is owned by whoever runs the runs (a supervised process's child actor, a
// supervised task's goroutine).
type restarter struct {
	p        messages.RestartPolicy // defaults applied
	streak   int                    // consecutive failed runs since the last reset
	recent   []time.Time            // policy restarts within the trailing window
	restarts int                    // runs started after the first, manual restarts included
}

// Restart decisions.
const (
	stopHere = iota // no restart: the run's end is the resource's
	restart         // restart after the delay
	giveUp          // the limit is reached: StateFailed, ErrRestartLimit
)

func newRestarter(p *messages.RestartPolicy) *restarter {
	r := &restarter{}
	if p != nil {
		r.p = *p
	}
	if r.p.Backoff == 0 {
		r.p.Backoff = messages.DefaultBackoff
	}
	if r.p.MaxBackoff == 0 {
		r.p.MaxBackoff = messages.DefaultMaxBackoff
	}
	if r.p.ResetAfter == 0 {
		r.p.ResetAfter = messages.DefaultResetAfter
	}
	if r.p.Window == 0 {
		r.p.Window = messages.DefaultWindow
	}
	return r
}

// next decides after a run that ended on its own at now, having lasted
// lasted; ok reports a success (exit code 0, nil error).
func (r *restarter) next(now time.Time, lasted time.Duration, ok bool) (decision int, delay time.Duration) {
	switch {
	case r.p.Mode == messages.RestartNever, r.p.Mode == messages.RestartOnFailure && ok:
		return stopHere, 0
	}
	if lasted >= r.p.ResetAfter || ok {
		r.streak = 0
	}
	if r.p.MaxRestarts > 0 {
		keep := r.recent[:0]
		for _, t := range r.recent {
			if now.Sub(t) < r.p.Window {
				keep = append(keep, t)
			}
		}
		r.recent = keep
		if len(r.recent) >= r.p.MaxRestarts {
			return giveUp, 0
		}
		r.recent = append(r.recent, now)
	}
	delay = r.p.Backoff
	if !ok {
		r.streak++
		for i := 1; i < r.streak && delay < r.p.MaxBackoff; i++ {
			delay *= 2
		}
		delay = min(delay, r.p.MaxBackoff)
	}
	// A jitter factor in [1, 1.2): restarts of many resources that failed
	// together do not stay in step.
	return restart, delay + time.Duration(rand.Int64N(int64(delay)/5+1))
}

// manual records a restart asked for by hand: the backoff starts over and
// the limit does not count it.
func (r *restarter) manual() {
	r.streak = 0
	r.restarts++
}

// ValidatePolicy says what is wrong with a restart policy (an unknown
// mode, a negative value), or "" if nothing is.
func ValidatePolicy(p messages.RestartPolicy) string {
	switch {
	case p.Mode < messages.RestartNever || p.Mode > messages.RestartAlways:
		return "unknown restart mode"
	case p.Backoff < 0:
		return "negative Backoff"
	case p.MaxBackoff < 0:
		return "negative MaxBackoff"
	case p.ResetAfter < 0:
		return "negative ResetAfter"
	case p.MaxRestarts < 0:
		return "negative MaxRestarts"
	case p.Window < 0:
		return "negative Window"
	}
	return ""
}

package remote

import (
	"context"
	"errors"
	"syscall"
	"time"

	"github.com/resman-dev/resman"
	"github.com/resman-dev/resman/messages"
	"github.com/resman-dev/resman/remote/internal/wire"
)

// The conversions between resman's values and the wire's. Every decode
// accepts any bytes a peer may send: unknown enum values become the zero
// value or a plain error, never a panic.

// sentinels maps each sentinel to its wire code; errors.Is picks the first
// that matches, so the more specific come first.
var sentinels = []struct {
	err  error
	code wire.Sentinel
}{
	{resman.ErrAlreadyRegistered, wire.Sentinel_SENTINEL_ALREADY_REGISTERED},
	{resman.ErrNotRegistered, wire.Sentinel_SENTINEL_NOT_REGISTERED},
	{resman.ErrInvalid, wire.Sentinel_SENTINEL_INVALID},
	{resman.ErrTimeout, wire.Sentinel_SENTINEL_TIMEOUT},
	{resman.ErrPanicked, wire.Sentinel_SENTINEL_PANICKED},
	{resman.ErrClosed, wire.Sentinel_SENTINEL_CLOSED},
	{resman.ErrRestartLimit, wire.Sentinel_SENTINEL_RESTART_LIMIT},
	{resman.ErrUnreachable, wire.Sentinel_SENTINEL_UNREACHABLE},
	{context.Canceled, wire.Sentinel_SENTINEL_CANCELED},
	{context.DeadlineExceeded, wire.Sentinel_SENTINEL_DEADLINE_EXCEEDED},
}

func sentinelOf(err error) wire.Sentinel {
	for _, s := range sentinels {
		if errors.Is(err, s.err) {
			return s.code
		}
	}
	return wire.Sentinel_SENTINEL_NONE
}

func sentinelErr(code wire.Sentinel) error {
	for _, s := range sentinels {
		if s.code == code {
			return s.err
		}
	}
	return nil
}

// encodeErr flattens err: a join becomes its parts, each a *ResourceError
// (kind, key, op and the cause's sentinel and text) or a plain error.
func encodeErr(err error) []*wire.Error {
	if err == nil {
		return nil
	}
	if re, ok := err.(*resman.ResourceError); ok {
		return []*wire.Error{{
			Resource: true, Kind: int32(re.Kind), Key: re.Key, Op: re.Op,
			Sentinel: sentinelOf(re.Err), Text: errText(re.Err),
		}}
	}
	if _, panicked := err.(*resman.PanicError); !panicked {
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			var out []*wire.Error
			for _, e := range j.Unwrap() {
				out = append(out, encodeErr(e)...)
			}
			return out
		}
	}
	var re *resman.ResourceError
	if errors.As(err, &re) {
		return encodeErr(re) // a wrapper around a resource error: keep the resource error
	}
	return []*wire.Error{{Sentinel: sentinelOf(err), Text: err.Error()}}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// remoteError is an error that came over the wire: its text as the peer
// printed it, and the sentinel it wrapped there, so errors.Is still holds.
type remoteError struct {
	text     string
	sentinel error
}

func (e *remoteError) Error() string { return e.text }
func (e *remoteError) Unwrap() error { return e.sentinel }

func decodeOne(w *wire.Error) error {
	if w == nil {
		return nil
	}
	var cause error
	s := sentinelErr(w.Sentinel)
	switch {
	case s != nil && w.Text == s.Error():
		cause = s
	case s != nil || w.Text != "":
		cause = &remoteError{text: w.Text, sentinel: s}
	}
	if !w.Resource {
		if cause == nil {
			cause = &remoteError{text: "resman: remote error"}
		}
		return cause
	}
	return &resman.ResourceError{Kind: resman.Kind(w.Kind), Key: w.Key, Op: w.Op, Err: cause}
}

func decodeErr(ws []*wire.Error) error {
	switch len(ws) {
	case 0:
		return nil
	case 1:
		return decodeOne(ws[0])
	}
	errs := make([]error, 0, len(ws))
	for _, w := range ws {
		errs = append(errs, decodeOne(w))
	}
	return errors.Join(errs...)
}

func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

func encodeRefs(refs []resman.Ref) []*wire.Ref {
	if len(refs) == 0 {
		return nil
	}
	out := make([]*wire.Ref, len(refs))
	for i, r := range refs {
		out[i] = &wire.Ref{Kind: int32(r.Kind), Key: r.Key}
	}
	return out
}

func decodeRefs(refs []*wire.Ref) []resman.Ref {
	if len(refs) == 0 {
		return nil
	}
	out := make([]resman.Ref, len(refs))
	for i, r := range refs {
		out[i] = resman.Ref{Kind: resman.Kind(r.GetKind()), Key: r.GetKey()}
	}
	return out
}

// encodeLifecycle refuses what cannot travel: a Func ready check.
func encodeLifecycle(key string, l messages.Lifecycle) (*wire.Lifecycle, error) {
	w := &wire.Lifecycle{
		DependsOn:  encodeRefs(l.DependsOn),
		StopSignal: int64(l.StopSignal),
		GraceNanos: int64(l.Grace),
	}
	if p := l.Restart; p != nil {
		w.Restart = &wire.RestartPolicy{
			Mode: int32(p.Mode), BackoffNanos: int64(p.Backoff), MaxBackoffNanos: int64(p.MaxBackoff),
			ResetAfterNanos: int64(p.ResetAfter), MaxRestarts: int64(p.MaxRestarts), WindowNanos: int64(p.Window),
		}
	}
	if c := l.Ready; c != nil {
		if c.Func != nil {
			return nil, messages.Invalid(resman.KindProcess, key, "supervise", "a Func ready check cannot be sent to another node")
		}
		w.Ready = &wire.ReadyCheck{
			Tcp: c.TCP, Http: c.HTTP, Output: c.Output,
			TimeoutNanos: int64(c.Timeout), IntervalNanos: int64(c.Interval),
		}
	}
	return w, nil
}

// decodeLifecycle returns options that rebuild the lifecycle on the
// serving node, where Supervise validates them as for a local call.
func decodeLifecycle(w *wire.Lifecycle) []resman.ResourceOption {
	if w == nil {
		return nil
	}
	var opts []resman.ResourceOption
	if p := w.Restart; p != nil {
		opts = append(opts, resman.WithRestart(resman.RestartPolicy{
			Mode: resman.RestartMode(p.Mode), Backoff: time.Duration(p.BackoffNanos),
			MaxBackoff: time.Duration(p.MaxBackoffNanos), ResetAfter: time.Duration(p.ResetAfterNanos),
			MaxRestarts: int(p.MaxRestarts), Window: time.Duration(p.WindowNanos),
		}))
	}
	for _, r := range w.DependsOn {
		opts = append(opts, resman.DependsOn(resman.Kind(r.GetKind()), r.GetKey()))
	}
	if w.StopSignal != 0 {
		opts = append(opts, resman.WithStopSignal(syscall.Signal(w.StopSignal)))
	}
	if w.GraceNanos != 0 {
		opts = append(opts, resman.WithGracePeriod(time.Duration(w.GraceNanos)))
	}
	if c := w.Ready; c != nil {
		opts = append(opts, resman.WithReady(resman.ReadyCheck{
			TCP: c.Tcp, HTTP: c.Http, Output: c.Output,
			Timeout: time.Duration(c.TimeoutNanos), Interval: time.Duration(c.IntervalNanos),
		}))
	}
	return opts
}

func encodeStatus(s resman.Status) *wire.Status {
	w := &wire.Status{
		Processes:       make([]*wire.ProcessStatus, len(s.Processes)),
		Tasks:           make([]*wire.TaskStatus, len(s.Tasks)),
		CustomResources: make([]*wire.CustomResourceStatus, len(s.CustomResources)),
	}
	for i, p := range s.Processes {
		w.Processes[i] = &wire.ProcessStatus{
			Key: p.Key, Pid: int64(p.PID), State: int32(p.State), RegisteredAt: nanos(p.RegisteredAt),
			ExitCode: int64(p.ExitCode), Restarts: int64(p.Restarts), LastExit: nanos(p.LastExit),
			DependsOn: encodeRefs(p.DependsOn), DroppedLines: int64(p.DroppedLines),
		}
	}
	for i, t := range s.Tasks {
		w.Tasks[i] = &wire.TaskStatus{
			Key: t.Key, State: int32(t.State), RegisteredAt: nanos(t.RegisteredAt), Err: encodeErr(t.Err),
			Restarts: int64(t.Restarts), LastExit: nanos(t.LastExit), DependsOn: encodeRefs(t.DependsOn),
		}
	}
	for i, c := range s.CustomResources {
		w.CustomResources[i] = &wire.CustomResourceStatus{
			Key: c.Key, Type: c.Type, State: int32(c.State), RegisteredAt: nanos(c.RegisteredAt),
			DependsOn: encodeRefs(c.DependsOn),
		}
	}
	return w
}

func decodeStatus(w *wire.Status) resman.Status {
	var s resman.Status
	if w == nil {
		return s
	}
	if len(w.Processes) > 0 {
		s.Processes = make([]resman.ProcessStatus, len(w.Processes))
	}
	for i, p := range w.Processes {
		s.Processes[i] = resman.ProcessStatus{
			Key: p.GetKey(), PID: int(p.GetPid()), State: resman.State(p.GetState()),
			RegisteredAt: fromNanos(p.GetRegisteredAt()), ExitCode: int(p.GetExitCode()),
			Restarts: int(p.GetRestarts()), LastExit: fromNanos(p.GetLastExit()),
			DependsOn: decodeRefs(p.GetDependsOn()), DroppedLines: int(p.GetDroppedLines()),
		}
	}
	if len(w.Tasks) > 0 {
		s.Tasks = make([]resman.TaskStatus, len(w.Tasks))
	}
	for i, t := range w.Tasks {
		s.Tasks[i] = resman.TaskStatus{
			Key: t.GetKey(), State: resman.State(t.GetState()), RegisteredAt: fromNanos(t.GetRegisteredAt()),
			Err: decodeErr(t.GetErr()), Restarts: int(t.GetRestarts()), LastExit: fromNanos(t.GetLastExit()),
			DependsOn: decodeRefs(t.GetDependsOn()),
		}
	}
	if len(w.CustomResources) > 0 {
		s.CustomResources = make([]resman.CustomResourceStatus, len(w.CustomResources))
	}
	for i, c := range w.CustomResources {
		s.CustomResources[i] = resman.CustomResourceStatus{
			Key: c.GetKey(), Type: c.GetType(), State: resman.State(c.GetState()),
			RegisteredAt: fromNanos(c.GetRegisteredAt()), DependsOn: decodeRefs(c.GetDependsOn()),
		}
	}
	return s
}

func encodeLines(lines []resman.OutputLine) []*wire.OutputLine {
	out := make([]*wire.OutputLine, len(lines))
	for i, l := range lines {
		out[i] = &wire.OutputLine{Key: l.Key, Pid: int64(l.PID), Stream: l.Stream, Text: l.Text, At: nanos(l.At), Truncated: l.Truncated}
	}
	return out
}

func decodeLines(ws []*wire.OutputLine) []resman.OutputLine {
	if len(ws) == 0 {
		return nil
	}
	out := make([]resman.OutputLine, len(ws))
	for i, l := range ws {
		out[i] = resman.OutputLine{Key: l.GetKey(), PID: int(l.GetPid()), Stream: l.GetStream(), Text: l.GetText(), At: fromNanos(l.GetAt()), Truncated: l.GetTruncated()}
	}
	return out
}

func encodeEvent(e *resman.Event) *wire.Event {
	return &wire.Event{
		Kind: int32(e.Kind), Key: e.Key, Type: int32(e.Type), At: nanos(e.At), Pid: int64(e.PID),
		ExitCode: int64(e.ExitCode), Err: encodeErr(e.Err), DelayNanos: int64(e.Delay), Restarts: int64(e.Restarts),
	}
}

func decodeEvent(w *wire.Event) resman.Event {
	return resman.Event{
		Kind: resman.Kind(w.GetKind()), Key: w.GetKey(), Type: resman.EventType(w.GetType()), At: fromNanos(w.GetAt()),
		PID: int(w.GetPid()), ExitCode: int(w.GetExitCode()), Err: decodeErr(w.GetErr()),
		Delay: time.Duration(w.GetDelayNanos()), Restarts: int(w.GetRestarts()),
	}
}

package resman

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/resman-dev/resman/internal/proc"
)

// WithMeterProvider makes the manager report OpenTelemetry metrics through
// mp's meter "github.com/resman-dev/resman" (no metrics without it; a nil mp
// is ErrInvalid). The instruments:
//
//   - resman.resources (observable up-down counter; attributes resman.kind,
//     resman.state): what is tracked, from a Status snapshot taken at each
//     collection, so its values sum to what Status counts. Attribute values
//     are the String() forms with spaces as '_' ("custom_resource").
//   - resman.operations (counter; resman.kind, resman.op, resman.outcome):
//     every Manager method on a resource; the outcome is "ok" or the short
//     name of the sentinel the error wraps: "timeout", "panicked",
//     "not_registered", "already_registered", "invalid", "closed",
//     "restart_limit", else "error".
//   - resman.operation.duration (histogram, s; resman.kind, resman.op): how
//     long each of those calls took.
//   - resman.restarts (counter; resman.kind): runs restarted, by a restart
//     policy or RestartProcess (each EventRestarted).
//   - process.cpu.time (observable counter, s) and process.memory.usage
//     (observable up-down counter, By), with resman.key and process.pid, for
//     every running process: summed over its cgroup with WithCgroup, else
//     the process's own figures from /proc.
//
// The observable instruments ask the supervisor for a Status (at most 1s)
// at each collection; after Shutdown they report nothing. Only New applies
// it: a supervisor from Props has no Manager to count.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(c *config) { c.meter = &mp }
}

// meterName is the instrumentation scope of resman's instruments.
const meterName = "github.com/resman-dev/resman"

// statusTimeout bounds the Status request of one collection.
const statusTimeout = time.Second

// metrics holds a Manager's instruments.
type metrics struct {
	m          atomic.Pointer[Manager] // set once New has it; nil: observe nothing
	operations metric.Int64Counter
	duration   metric.Float64Histogram
	restarts   metric.Int64Counter
	resources  metric.Int64ObservableUpDownCounter
	cpu        metric.Float64ObservableCounter
	memory     metric.Int64ObservableUpDownCounter
	reg        metric.Registration
}

// newMetrics makes the instruments WithMeterProvider asks for (nil without
// it) and wraps cfg's event hook so that restarts are counted.
func newMetrics(cfg *config) (*metrics, error) {
	if cfg.meter == nil {
		return nil, nil
	}
	if *cfg.meter == nil {
		return nil, fmt.Errorf("resman: new: %w: nil meter provider", ErrInvalid)
	}
	meter := (*cfg.meter).Meter(meterName)
	mt := &metrics{}
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	var err error
	mt.operations, err = meter.Int64Counter("resman.operations",
		metric.WithDescription("Manager operations on resources, by outcome"), metric.WithUnit("{operation}"))
	add(err)
	mt.duration, err = meter.Float64Histogram("resman.operation.duration",
		metric.WithDescription("How long Manager operations on resources took"), metric.WithUnit("s"))
	add(err)
	mt.restarts, err = meter.Int64Counter("resman.restarts",
		metric.WithDescription("Runs restarted, by a restart policy or RestartProcess"), metric.WithUnit("{restart}"))
	add(err)
	mt.resources, err = meter.Int64ObservableUpDownCounter("resman.resources",
		metric.WithDescription("Tracked resources, by kind and state"), metric.WithUnit("{resource}"))
	add(err)
	mt.cpu, err = meter.Float64ObservableCounter("process.cpu.time",
		metric.WithDescription("CPU time of a tracked process (its cgroup with WithCgroup)"), metric.WithUnit("s"))
	add(err)
	mt.memory, err = meter.Int64ObservableUpDownCounter("process.memory.usage",
		metric.WithDescription("Resident memory of a tracked process (its cgroup with WithCgroup)"), metric.WithUnit("By"))
	add(err)
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("resman: new: %w: meter provider: %v", ErrInvalid, err)
	}
	mt.reg, err = meter.RegisterCallback(mt.observe, mt.resources, mt.cpu, mt.memory)
	if err != nil {
		return nil, fmt.Errorf("resman: new: %w: meter provider: %v", ErrInvalid, err)
	}
	user := cfg.hook
	cfg.hook = func(ev Event) {
		if ev.Type == EventRestarted {
			mt.restarts.Add(context.Background(), 1, metric.WithAttributeSet(attribute.NewSet(kindAttr(ev.Kind))))
		}
		if user != nil {
			user(ev)
		}
	}
	return mt, nil
}

// close unregisters the callback (a New that failed after newMetrics).
func (mt *metrics) close() {
	if mt != nil {
		_ = mt.reg.Unregister()
	}
}

// record counts one operation that began at start and ended with err.
func (mt *metrics) record(kind Kind, op string, start time.Time, err error) {
	ctx := context.Background()
	k, o := kindAttr(kind), attribute.String("resman.op", op)
	mt.duration.Record(ctx, time.Since(start).Seconds(), metric.WithAttributeSet(attribute.NewSet(k, o)))
	mt.operations.Add(ctx, 1, metric.WithAttributeSet(attribute.NewSet(k, o, attribute.String("resman.outcome", outcome(err)))))
}

// outcomes maps each sentinel to its outcome name, in the order they are
// tried (a joined error takes the first that matches).
var outcomes = []struct {
	err  error
	name string
}{
	{ErrTimeout, "timeout"},
	{ErrPanicked, "panicked"},
	{ErrNotRegistered, "not_registered"},
	{ErrAlreadyRegistered, "already_registered"},
	{ErrInvalid, "invalid"},
	{ErrClosed, "closed"},
	{ErrRestartLimit, "restart_limit"},
}

// outcome is resman.outcome's value for an operation's error.
func outcome(err error) string {
	if err == nil {
		return "ok"
	}
	for _, o := range outcomes {
		if errors.Is(err, o.err) {
			return o.name
		}
	}
	return "error"
}

// replyErr is the Err field of a reply: every reply struct of the messages
// package has one.
func replyErr(reply any) error {
	v := reflect.ValueOf(reply)
	if v.Kind() != reflect.Pointer || v.IsNil() || v.Elem().Kind() != reflect.Struct {
		return nil
	}
	f := v.Elem().FieldByName("Err")
	if !f.IsValid() || f.IsNil() {
		return nil
	}
	err, _ := f.Interface().(error)
	return err
}

func kindAttr(k Kind) attribute.KeyValue {
	return attribute.String("resman.kind", attrValue(k.String()))
}

func stateAttr(s State) attribute.KeyValue {
	return attribute.String("resman.state", attrValue(s.String()))
}

func attrValue(s string) string { return strings.ReplaceAll(s, " ", "_") }

// kindStates are the states each kind can be in: resman.resources reports
// each of them, zeros included, so a series that empties reads 0 instead
// of vanishing.
var kindStates = []struct {
	kind   Kind
	states []State
}{
	{KindProcess, []State{StateStarting, StateRunning, StateRestarting, StateStopping, StateExited, StateFailed}},
	{KindTask, []State{StateStarting, StateRunning, StateRestarting, StateStopping, StateExited, StateFailed}},
	{KindCustomResource, []State{StateRunning, StateStopping}},
}

// observe is the callback of the observable instruments: one Status
// snapshot per collection. It runs on the collector's goroutine, never the
// supervisor's.
func (mt *metrics) observe(ctx context.Context, o metric.Observer) error {
	m := mt.m.Load()
	if m == nil || m.closed.Load() {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, statusTimeout)
	defer cancel()
	st, err := m.Status(ctx)
	if err != nil {
		if errors.Is(err, ErrClosed) {
			return nil
		}
		return err
	}
	counts := map[Kind]map[State]int64{KindProcess: {}, KindTask: {}, KindCustomResource: {}}
	for _, p := range st.Processes {
		counts[KindProcess][p.State]++
	}
	for _, t := range st.Tasks {
		counts[KindTask][t.State]++
	}
	for _, c := range st.CustomResources {
		counts[KindCustomResource][c.State]++
	}
	for _, ks := range kindStates {
		byState := counts[ks.kind]
		for _, s := range ks.states {
			o.ObserveInt64(mt.resources, byState[s], metric.WithAttributes(kindAttr(ks.kind), stateAttr(s)))
			delete(byState, s)
		}
		for s, n := range byState { // a state this list does not expect
			o.ObserveInt64(mt.resources, n, metric.WithAttributes(kindAttr(ks.kind), stateAttr(s)))
		}
	}
	pids := make([]int, len(st.Processes))
	for i, p := range st.Processes {
		if p.PID > 0 && (p.State == StateRunning || p.State == StateStarting) {
			pids[i] = p.PID
		}
	}
	us, ok := proc.UsagesOf(pids, m.cgroup)
	for i, p := range st.Processes {
		if !ok[i] {
			continue // not running, or it exited since the snapshot
		}
		attrs := metric.WithAttributes(attribute.String("resman.key", p.Key), attribute.Int("process.pid", p.PID))
		o.ObserveFloat64(mt.cpu, us[i].CPU.Seconds(), attrs)
		o.ObserveInt64(mt.memory, us[i].Memory, attrs)
	}
	return nil
}

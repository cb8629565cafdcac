package supervisor

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/resman-dev/resman/actors"
	"github.com/resman-dev/resman/messages"
)

// entry is one registration. Owned by the supervisor's Receive, like the
// whole registry: no lock guards it.
type entry struct {
	h            *actors.Handle
	reg          *actors.Reg   // shared with the child
	req          any           // the request that made it: an Undo names it
	child        *actors.Child // serves this registration until it ends
	state        messages.State
	pending      bool  // a start is in progress: not yet visible in Status
	registeredAt int64 // Unix nanoseconds: a third of a time.Time, for 100,000 entries

	pid      int              // process
	exited   bool             // it exited (a process: maybe not reaped yet) or returned on its own
	exitCode int              // process, once exited
	exit     *os.ProcessState // process, once exited and reaped
	taskErr  error            // task, once returned
	typeName string           // custom resource

	op          string        // the registration's op: "start" or "supervise" for a pending start
	supervised  bool          // made by Supervise: RestartProcess applies
	restarts    int           // runs started after the first
	lastExit    int64         // Unix nanoseconds of the last run's end; 0: none
	gaveUp      error         // it reached its restart limit (wraps ErrRestartLimit)
	restartWait []func(error) // RestartProcess callers

	deps       []*entry    // what it depends on (DependsOn), while it is registered
	dependents []*entry    // the live registrations that depend on it
	held       *actors.End // its End, sent once its dependents are gone
	heldErrs   []error     // its dependents' failures, for an explicit stop of it

	gone     bool           // removed from the registry
	released bool           // handed back with its key freed at once: its events are over
	sweep    *cleanup       // the first CleanupAll or Shutdown that waits for it, if any
	ending   bool           // an End went to the child
	endMode  actors.EndMode // what it asked
	endOp    string         // the op the outcome is reported under
	waiters  []func(*actors.Ended, error)
	started  func(*actors.Started, error) // the start's requester
	exitWait []*actor.PID                 // WaitProcess callers
}

// registry holds the three namespaces, and the registrations being handed
// back whose keys are free already.
type registry struct {
	keys      [4]map[string]*entry // indexed by messages.Kind
	releasing map[*entry]struct{}  // unkeyed, until their child reports
}

func newRegistry() *registry {
	r := &registry{releasing: make(map[*entry]struct{})}
	for k := range r.keys {
		r.keys[k] = make(map[string]*entry)
	}
	return r
}

func (r *registry) get(kind messages.Kind, key string) *entry { return r.keys[kind][key] }

func (r *registry) add(e *entry) {
	r.keys[e.h.Kind][e.h.Key] = e
	e.h.Owner = e
}

func (r *registry) remove(e *entry) {
	r.unkey(e)
	delete(r.releasing, e)
	e.gone = true
}

// unkey frees e's key while its child hands it back: the key may be
// registered again, and Status no longer lists it, but e stays e's
// handle's entry until its child reports.
func (r *registry) unkey(e *entry) {
	if r.keys[e.h.Kind][e.h.Key] == e {
		delete(r.keys[e.h.Kind], e.h.Key)
		r.releasing[e] = struct{}{}
	}
}

// each calls f for every registration, those being handed back included.
func (r *registry) each(f func(*entry)) {
	for _, m := range r.keys {
		for _, e := range m {
			f(e)
		}
	}
	for e := range r.releasing {
		f(e)
	}
}

// of returns the entry of registration h, or nil if it has ended.
func (r *registry) of(h *actors.Handle) *entry {
	if e, _ := h.Owner.(*entry); e != nil && !e.gone {
		return e
	}
	return nil
}

// status builds the snapshot, each slice sorted by key. Pending starts are
// left out: they are not registered until their start succeeds.
func (r *registry) status() messages.Status {
	var st messages.Status
	for _, e := range r.keys[messages.KindProcess] {
		if e.pending {
			continue
		}
		ps := messages.ProcessStatus{Key: e.h.Key, PID: e.pid, State: e.state, RegisteredAt: time.Unix(0, e.registeredAt),
			Restarts: e.restarts, LastExit: e.lastExitTime(), DependsOn: e.reg.Lifecycle().DependsOn, DroppedLines: e.reg.DroppedLines()}
		if e.exited || e.lastExit != 0 {
			ps.ExitCode = e.exitCode
		}
		st.Processes = append(st.Processes, ps)
	}
	for _, e := range r.keys[messages.KindTask] {
		if e.pending {
			continue
		}
		st.Tasks = append(st.Tasks, messages.TaskStatus{Key: e.h.Key, State: e.state, RegisteredAt: time.Unix(0, e.registeredAt), Err: e.taskErr,
			Restarts: e.restarts, LastExit: e.lastExitTime(), DependsOn: e.reg.Lifecycle().DependsOn})
	}
	for _, e := range r.keys[messages.KindCustomResource] {
		st.CustomResources = append(st.CustomResources, messages.CustomResourceStatus{
			Key: e.h.Key, Type: e.typeName, State: e.state, RegisteredAt: time.Unix(0, e.registeredAt), DependsOn: e.reg.Lifecycle().DependsOn})
	}
	slices.SortFunc(st.Processes, func(a, b messages.ProcessStatus) int { return strings.Compare(a.Key, b.Key) })
	slices.SortFunc(st.Tasks, func(a, b messages.TaskStatus) int { return strings.Compare(a.Key, b.Key) })
	slices.SortFunc(st.CustomResources, func(a, b messages.CustomResourceStatus) int { return strings.Compare(a.Key, b.Key) })
	return st
}

func typeName(v any) string { return fmt.Sprintf("%T", v) }

func (e *entry) lastExitTime() time.Time {
	if e.lastExit == 0 {
		return time.Time{}
	}
	return time.Unix(0, e.lastExit)
}

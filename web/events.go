package web

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/resman-dev/resman"
	"github.com/resman-dev/resman/internal/hooks"
	"github.com/resman-dev/resman/messages"
)

// eventJSON is an event in /events.
type eventJSON struct {
	Kind     string    `json:"kind"`
	Key      string    `json:"key"`
	Type     string    `json:"type"`
	At       time.Time `json:"at"`
	PID      int       `json:"pid"`
	ExitCode int       `json:"exit_code"`
	Error    string    `json:"error,omitempty"`
	Delay    float64   `json:"delay_seconds"`
	Restarts int       `json:"restarts"`
}

func eventOf(e resman.Event) eventJSON {
	return eventJSON{
		Kind: e.Kind.String(), Key: e.Key, Type: e.Type.String(), At: e.At, PID: e.PID,
		ExitCode: e.ExitCode, Error: safeError(e.Err), Delay: e.Delay.Seconds(), Restarts: e.Restarts,
	}
}

const (
	streamBuffer    = 1024             // events and lines queued for one slow client
	subscribeWait   = 5 * time.Second  // for the supervisor's reply to Subscribe
	keepalive       = 15 * time.Second // a comment line, so that proxies keep the stream open
	unsubscribeWait = 2 * time.Second
)

// subscriber is the actor behind one /events connection: it subscribes to
// the supervisor and hands what it gets to the connection's goroutine. Its
// Receive never blocks: when the client is slow it drops and counts.
type subscriber struct {
	mgr        *actor.PID
	out        chan<- any   // *messages.Event or *messages.OutputLine
	subscribed chan<- error // the reply to Subscribe; buffered
	dropped    *atomic.Int64
}

func (s *subscriber) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		ctx.Request(s.mgr, &messages.Subscribe{Subscriber: ctx.Self(), Output: true})
	case *messages.SubscribeResponse:
		s.subscribed <- msg.Err
	case *messages.Event, *messages.OutputLine:
		select {
		case s.out <- msg:
		default:
			s.dropped.Add(1)
		}
	}
}

// events streams the manager's events and output lines as server-sent
// events until the client goes away or the manager shuts down.
func (h *handler) events(w http.ResponseWriter, r *http.Request) {
	system := hooks.ActorSystem(h.m)
	select {
	case <-h.m.Done():
		writeError(w, http.StatusServiceUnavailable, "web: events: manager shut down")
		return
	default:
	}
	out := make(chan any, streamBuffer)
	subscribed := make(chan error, 1)
	var dropped atomic.Int64
	pid := system.Root.Spawn(actor.PropsFromProducer(func() actor.Actor {
		return &subscriber{mgr: h.m.PID(), out: out, subscribed: subscribed, dropped: &dropped}
	}))
	defer func() {
		select {
		case <-h.m.Done(): // the supervisor and maybe the system are gone
			system.Root.Stop(pid)
		default:
			_, _ = system.Root.RequestFuture(h.m.PID(), &messages.Unsubscribe{Subscriber: pid}, unsubscribeWait).Result()
			_ = system.Root.StopFuture(pid).Wait()
		}
	}()

	timer := time.NewTimer(subscribeWait)
	defer timer.Stop()
	select {
	case err := <-subscribed:
		if err != nil {
			writeError(w, errorStatus(err), safeError(err))
			return
		}
	case <-timer.C:
		writeError(w, http.StatusServiceUnavailable, "web: events: the manager did not answer")
		return
	case <-r.Context().Done():
		return
	case <-h.m.Done():
		writeError(w, http.StatusServiceUnavailable, "web: events: manager shut down")
		return
	}

	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if _, err := fmt.Fprint(w, ": resman events\nretry: 2000\n\n"); err != nil || rc.Flush() != nil {
		return
	}
	tick := time.NewTicker(keepalive)
	defer tick.Stop()
	var reported int64
	for {
		var err error
		select {
		case msg := <-out:
			err = writeMessage(w, msg)
		case <-tick.C:
			_, err = fmt.Fprint(w, ": keepalive\n\n")
		case <-r.Context().Done():
			return
		case <-h.m.Done():
			return
		}
		if n := dropped.Load(); err == nil && n != reported {
			reported = n
			_, err = fmt.Fprintf(w, "event: dropped\ndata: {\"dropped\":%d}\n\n", n)
		}
		if err != nil || rc.Flush() != nil {
			return
		}
	}
}

func writeMessage(w http.ResponseWriter, msg any) error {
	var name string
	var v any
	switch m := msg.(type) {
	case *messages.Event:
		name, v = "resman", eventOf(*m)
	case *messages.OutputLine:
		name, v = "output", outputOf(*m)
	default:
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "event: %s\ndata: %s\n\n", name, b)
	return err
}

package supervisor_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/resman-dev/resman/messages"
	"github.com/resman-dev/resman/supervisor"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestSupervisorLifecycle(t *testing.T) {
	system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(slog.DiscardHandler)
	}))
	defer system.Shutdown()
	events := make(chan messages.Event, 16)
	props, rt := supervisor.Props(supervisor.Config{DefaultTimeout: time.Second, EventHook: func(e messages.Event) { events <- e }})
	sup := system.Root.Spawn(props)

	ask := func(msg any) any {
		res, err := system.Root.RequestFuture(sup, msg, 10*time.Second).Result()
		require.NoError(t, err)
		return res
	}
	cleaned := make(chan any, 1)
	r := ask(&messages.RegisterCustomResource{Key: "k", Resource: "v", Cleanup: func(_ context.Context, v any) error {
		cleaned <- v
		return nil
	}}).(*messages.RegisterCustomResourceResponse)
	require.NoError(t, r.Err)
	st := ask(&messages.GetStatus{}).(*messages.GetStatusResponse)
	require.Equal(t, "string", st.Status.CustomResources[0].Type)
	require.NoError(t, system.Root.StopFuture(sup).Wait())
	require.Equal(t, "v", <-cleaned, "stopping the supervisor cleans up")
	rt.Wait()
	<-rt.EventsDelivered()
	close(events)
	var types []messages.EventType
	for e := range events {
		types = append(types, e.Type)
	}
	require.Equal(t, []messages.EventType{messages.EventRegistered, messages.EventStopped}, types)
}

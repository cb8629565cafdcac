package resman_test

import (
	"context"
	"errors"
	"os/exec"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/resman-dev/resman"
)

// meteredManager returns a manager reporting to a ManualReader.
func meteredManager(t testing.TB, opts ...resman.Option) (*resman.Manager, *sdkmetric.ManualReader) {
	t.Helper()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	return newManager(t, append([]resman.Option{resman.WithMeterProvider(mp)}, opts...)...), reader
}

func collect(t testing.TB, r *sdkmetric.ManualReader) map[string]metricdata.Metrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, r.Collect(context.Background(), &rm))
	out := map[string]metricdata.Metrics{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			out[m.Name] = m
		}
	}
	return out
}

// attrs reads a data point's attributes as a map.
func attrs(s attribute.Set) map[string]string {
	out := map[string]string{}
	for _, kv := range s.ToSlice() {
		out[string(kv.Key)] = kv.Value.Emit()
	}
	return out
}

// matches reports whether s has every attribute of want.
func matches(s attribute.Set, want map[string]string) bool {
	got := attrs(s)
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	return true
}

// intSum sums the points of an int64 sum metric that match want.
func intSum(m metricdata.Metrics, want map[string]string) int64 {
	var n int64
	if s, ok := m.Data.(metricdata.Sum[int64]); ok {
		for _, p := range s.DataPoints {
			if matches(p.Attributes, want) {
				n += p.Value
			}
		}
	}
	return n
}

func TestWithMeterProviderNilIsInvalid(t *testing.T) {
	_, err := resman.New(resman.WithMeterProvider(nil))
	require.ErrorIs(t, err, resman.ErrInvalid)
}

func TestMetricsResourcesMatchStatus(t *testing.T) {
	m, reader := meteredManager(t)
	ctx := ctxT(t)
	require.NoError(t, m.StartProcess(ctx, "sleeper", sh("exec sleep 300")))
	require.NoError(t, m.Supervise(ctx, "supervised", resman.ProcessSpec{Command: []string{"sleep", "300"}}))
	require.NoError(t, m.StartProcess(ctx, "quitter", sh("exit 3")))
	_, err := m.WaitProcess(ctx, "quitter")
	require.NoError(t, err)
	_, err = m.Go(ctx, "waiter", func(ctx context.Context) error { <-ctx.Done(); return nil })
	require.NoError(t, err)
	task, err := m.Go(ctx, "returner", func(context.Context) error { return nil })
	require.NoError(t, err)
	<-task.Done()
	require.NoError(t, m.RegisterCustomResource(ctx, "thing", 1, func(context.Context, any) error { return nil }))
	require.Eventually(t, func() bool { // the task's return reaches the supervisor
		st, err := m.Status(ctx)
		require.NoError(t, err)
		return st.Tasks[0].State == resman.StateExited
	}, 5*time.Second, time.Millisecond)

	st, err := m.Status(ctx)
	require.NoError(t, err)
	want := map[[2]string]int64{}
	for _, p := range st.Processes {
		want[[2]string{"process", p.State.String()}]++
	}
	for _, k := range st.Tasks {
		want[[2]string{"task", k.State.String()}]++
	}
	for _, c := range st.CustomResources {
		want[[2]string{"custom_resource", c.State.String()}]++
	}
	require.Equal(t, int64(2), want[[2]string{"process", "running"}])
	require.Equal(t, int64(1), want[[2]string{"process", "exited"}])

	res := collect(t, reader)["resman.resources"]
	sum, ok := res.Data.(metricdata.Sum[int64])
	require.True(t, ok, "resman.resources is an int64 sum: %T", res.Data)
	require.False(t, sum.IsMonotonic)
	got := map[[2]string]int64{}
	var total int64
	for _, p := range sum.DataPoints {
		a := attrs(p.Attributes)
		if p.Value != 0 {
			got[[2]string{a["resman.kind"], a["resman.state"]}] = p.Value
		}
		total += p.Value
	}
	require.Equal(t, want, got)
	require.Equal(t, int64(len(st.Processes)+len(st.Tasks)+len(st.CustomResources)), total)
}

func TestMetricsOperations(t *testing.T) {
	m, reader := meteredManager(t)
	ctx := ctxT(t)
	err := m.StopProcess(ctx, "nobody")
	require.ErrorIs(t, err, resman.ErrNotRegistered)
	require.NoError(t, m.RegisterCustomResource(ctx, "c", 1, func(context.Context, any) error { return errors.New("boom") }))
	require.ErrorIs(t, m.RegisterCustomResource(ctx, "c", 1, func(context.Context, any) error { return nil }), resman.ErrAlreadyRegistered)
	require.Error(t, m.CleanupCustomResource(ctx, "c"))
	_, err = m.Tail(ctx, "x", 0)
	require.ErrorIs(t, err, resman.ErrInvalid)

	got := collect(t, reader)
	ops := got["resman.operations"]
	require.Equal(t, int64(1), intSum(ops, map[string]string{"resman.kind": "process", "resman.op": "stop", "resman.outcome": "not_registered"}))
	require.Equal(t, int64(1), intSum(ops, map[string]string{"resman.kind": "custom_resource", "resman.op": "register", "resman.outcome": "ok"}))
	require.Equal(t, int64(1), intSum(ops, map[string]string{"resman.kind": "custom_resource", "resman.op": "register", "resman.outcome": "already_registered"}))
	require.Equal(t, int64(1), intSum(ops, map[string]string{"resman.kind": "custom_resource", "resman.op": "cleanup", "resman.outcome": "error"}))
	require.Equal(t, int64(1), intSum(ops, map[string]string{"resman.kind": "process", "resman.op": "tail", "resman.outcome": "invalid"}))

	dur := got["resman.operation.duration"]
	require.Equal(t, "s", dur.Unit)
	h, ok := dur.Data.(metricdata.Histogram[float64])
	require.True(t, ok, "%T", dur.Data)
	var count uint64
	for _, p := range h.DataPoints {
		if matches(p.Attributes, map[string]string{"resman.kind": "custom_resource", "resman.op": "register"}) {
			count += p.Count
			require.Greater(t, p.Sum, 0.0)
			require.NotContains(t, attrs(p.Attributes), "resman.outcome")
		}
	}
	require.Equal(t, uint64(2), count)
}

func TestMetricsRestarts(t *testing.T) {
	m, reader := meteredManager(t)
	ctx := ctxT(t)
	require.NoError(t, m.Supervise(ctx, "p", resman.ProcessSpec{Command: []string{"sleep", "300"}}))
	require.NoError(t, m.RestartProcess(ctx, "p"))
	restarts := func() int64 {
		return intSum(collect(t, reader)["resman.restarts"], map[string]string{"resman.kind": "process"})
	}
	require.Eventually(t, func() bool { return restarts() == 1 }, 5*time.Second, time.Millisecond, "RestartProcess counts")

	// A policy restart counts too.
	require.NoError(t, m.Supervise(ctx, "crasher", resman.ProcessSpec{Command: []string{"/bin/sh", "-c", "sleep 0.05; exit 1"}},
		resman.WithRestart(resman.RestartPolicy{Mode: resman.RestartOnFailure, Backoff: time.Millisecond})))
	require.Eventually(t, func() bool { return restarts() >= 3 }, 10*time.Second, 5*time.Millisecond)
	require.NoError(t, m.StopProcess(ctx, "crasher"))
}

func TestMetricsProcessUsage(t *testing.T) {
	m, reader := meteredManager(t)
	ctx := ctxT(t)
	busy := exec.Command("/bin/sh", "-c", "while :; do :; done")
	require.NoError(t, m.StartProcess(ctx, "busy", busy))
	pid := busy.Process.Pid
	want := map[string]string{"resman.key": "busy", "process.pid": attribute.IntValue(pid).Emit()}

	got := collect(t, reader)
	require.Equal(t, "s", got["process.cpu.time"].Unit)
	require.Equal(t, "By", got["process.memory.usage"].Unit)
	cpu := func() (float64, int64) {
		got := collect(t, reader)
		var c float64
		if s, ok := got["process.cpu.time"].Data.(metricdata.Sum[float64]); ok {
			require.True(t, s.IsMonotonic)
			for _, p := range s.DataPoints {
				if matches(p.Attributes, want) {
					c = p.Value
				}
			}
		}
		return c, intSum(got["process.memory.usage"], want)
	}
	first, mem := cpu()
	require.Greater(t, mem, int64(0), "its resident memory")
	require.Eventually(t, func() bool {
		c, _ := cpu()
		return c > first+0.05
	}, 10*time.Second, 20*time.Millisecond, "the CPU time of a busy process grows")

	require.NoError(t, m.StopProcess(ctx, "busy"))
	_, mem = cpu()
	require.Zero(t, mem, "a stopped process is no longer reported")
}

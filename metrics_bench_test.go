package resman_test

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"testing"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/resman-dev/resman"
)

// BenchmarkMetricsCollect: one ManualReader.Collect of a manager with 1,000
// started processes (a Status snapshot, resman.resources, and the CPU time
// and memory of each process), against the raw cost of reading
// /proc/<pid>/stat and /proc/<pid>/statm for the same 1,000 PIDs.
// BENCHMARKS.md has the numbers and the command.
func BenchmarkMetricsCollect(b *testing.B) {
	const n = 1000
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	b.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	m := benchManager(b, resman.WithMeterProvider(mp))
	ctx := context.Background()
	pids := make([]int, n)
	for i := range pids {
		cmd := exec.Command("sleep", "300")
		if err := m.StartProcess(ctx, strconv.Itoa(i), cmd); err != nil {
			b.Fatal(err)
		}
		pids[i] = cmd.Process.Pid
	}
	b.Run("raw=read-stat+statm", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			for _, pid := range pids {
				dir := "/proc/" + strconv.Itoa(pid)
				if _, err := os.ReadFile(dir + "/stat"); err != nil {
					b.Fatal(err)
				}
				if _, err := os.ReadFile(dir + "/statm"); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("resman=collect", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			var rm metricdata.ResourceMetrics
			if err := reader.Collect(ctx, &rm); err != nil {
				b.Fatal(err)
			}
			if got := cpuPoints(rm); got != n {
				b.Fatalf("process.cpu.time has %d points, want %d", got, n)
			}
		}
	})
}

func cpuPoints(rm metricdata.ResourceMetrics) int {
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if s, ok := m.Data.(metricdata.Sum[float64]); ok && m.Name == "process.cpu.time" {
				return len(s.DataPoints)
			}
		}
	}
	return 0
}

package resman_test

import (
	"context"
	"fmt"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/resman-dev/resman"
)

func ExampleWithMeterProvider() {
	ctx := context.Background()
	reader := sdkmetric.NewManualReader() // a real program gives an exporter's reader
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(ctx)
	m, _ := resman.New(resman.WithMeterProvider(mp))
	defer m.Close()

	_ = m.RegisterCustomResource(ctx, "conn", 1, func(context.Context, any) error { return nil })
	_ = m.CleanupCustomResource(ctx, "nope")

	var rm metricdata.ResourceMetrics
	_ = reader.Collect(ctx, &rm)
	for _, sm := range rm.ScopeMetrics {
		for _, mt := range sm.Metrics {
			if mt.Name != "resman.operations" {
				continue
			}
			for _, p := range mt.Data.(metricdata.Sum[int64]).DataPoints {
				op, _ := p.Attributes.Value("resman.op")
				outcome, _ := p.Attributes.Value("resman.outcome")
				fmt.Println(op.Emit(), outcome.Emit(), p.Value)
			}
		}
	}
	// Unordered output:
	// register ok 1
	// cleanup not_registered 1
}

func ExampleManager_HandleSignals() {
	m, _ := resman.New()
	stop := m.HandleSignals() // SIGINT, SIGTERM
	defer stop()

	// ... register and start what the program runs ...

	// The first signal starts the shutdown (each process gets its stop
	// signal and grace period); a second one kills what is left at once.
	<-m.Done()
	fmt.Println(m.Shutdown(context.Background())) // the shutdown's result
}

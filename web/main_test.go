package web_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/resman-dev/resman"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// newManager returns a manager that is shut down when the test ends.
func newManager(t testing.TB, opts ...resman.Option) *resman.Manager {
	t.Helper()
	m, err := resman.New(opts...)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		require.NoError(t, m.Shutdown(ctx))
	})
	return m
}

// shSpec runs script under sh.
func shSpec(script string) resman.ProcessSpec {
	return resman.ProcessSpec{Command: []string{"/bin/sh", "-c", script}}
}

package queue

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestOrderDrainAndFinish(t *testing.T) {
	gate := make(chan struct{})
	var got []int
	finished := false
	q := New(func(batch []int) {
		<-gate // a slow consumer never blocks Push
		got = append(got, batch...)
	}, func() { finished = true })
	for i := range 1000 {
		require.True(t, q.Push(i))
	}
	q.Close()
	require.False(t, q.Push(1000), "closed")
	close(gate)
	select {
	case <-q.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("not drained")
	}
	require.True(t, finished)
	require.Len(t, got, 1000)
	for i, v := range got {
		require.Equal(t, i, v)
	}
}

func TestCloseWithoutPush(t *testing.T) {
	q := New(func([]int) { t.Error("nothing to consume") }, func() { t.Error("never ran") })
	q.Close()
	q.Close()
	<-q.Done()
}

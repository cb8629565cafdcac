package output

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/resman-dev/resman/messages"
)

func TestBacklogBounds(t *testing.T) {
	cases := []struct {
		name               string
		maxLines, maxBytes int
		batches            []int // lines of each batch pushed, numbered on from 0; each line has 10 bytes
		wantEvicted        int
		wantFirst          int // number of the oldest line kept
	}{
		{"under both bounds", 100, 1000, []int{10, 20}, 0, 0},
		{"line bound", 25, 1000, []int{10, 20}, 5, 5},
		{"byte bound", 100, 150, []int{10, 20}, 15, 15},
		{"a whole batch evicted", 25, 1000, []int{10, 3, 20}, 8, 8},
		{"one batch over the bound", 5, 1000, []int{12}, 7, 7},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			q := backlog{maxLines: tc.maxLines, maxBytes: tc.maxBytes}
			next, evicted := 0, 0
			for _, n := range tc.batches {
				batch := q.reuse()
				for range n {
					batch = append(batch, numbered(next, 10))
					next++
				}
				evicted += q.push(batch, 10*n)
			}
			require.Equal(t, tc.wantEvicted, evicted)
			require.Equal(t, next-evicted, q.len())
			var got []messages.OutputLine
			for q.len() > 0 {
				batch, front := q.take()
				got = append(got, batch[front:]...)
				q.recycle(batch)
			}
			require.Len(t, got, next-evicted)
			for i, l := range got {
				require.Equal(t, tc.wantFirst+i, l.PID)
			}
			require.Zero(t, q.bytes)
		})
	}
}

func TestBacklogClear(t *testing.T) {
	q := backlog{maxLines: 10, maxBytes: 1000}
	q.push([]messages.OutputLine{numbered(0, 1), numbered(1, 1)}, 2)
	q.push([]messages.OutputLine{numbered(2, 1)}, 1)
	require.Equal(t, 3, q.clear())
	require.Zero(t, q.len())
	require.Zero(t, q.bytes)
	require.Zero(t, q.clear())
}

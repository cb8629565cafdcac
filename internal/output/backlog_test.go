package output

import (
	"fmt"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

// testBatch fills b (a new Batch if nil) with n lines of 10 bytes, numbered
// on from first: each line's text is its number.
func testBatch(b *Batch, first, n int) *Batch {
	if b == nil {
		b = &Batch{}
	}
	var buf []byte
	var spans []span
	for i := range n {
		start := len(buf)
		buf = fmt.Appendf(buf, "%010d", first+i)
		spans = append(spans, span{start: start, end: len(buf)})
	}
	b.fill(Line{Key: "k"}, buf, spans)
	return b
}

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
				evicted += q.push(testBatch(q.reuse(), next, n))
				next += n
			}
			require.Equal(t, tc.wantEvicted, evicted)
			require.Equal(t, next-evicted, q.len())
			var got []int
			for q.len() > 0 {
				b := q.take()
				for i := range b.Len() {
					n, err := strconv.Atoi(string(lineAt(b, i).Text))
					require.NoError(t, err)
					got = append(got, n)
				}
				q.recycle(b)
			}
			require.Len(t, got, next-evicted)
			for i, n := range got {
				require.Equal(t, tc.wantFirst+i, n)
			}
			require.Zero(t, q.bytes)
		})
	}
}

func TestBacklogClear(t *testing.T) {
	q := backlog{maxLines: 10, maxBytes: 1000}
	q.push(testBatch(nil, 0, 2))
	q.push(testBatch(nil, 2, 1))
	require.Equal(t, 3, q.clear())
	require.Zero(t, q.len())
	require.Zero(t, q.bytes)
	require.Zero(t, q.clear())
}

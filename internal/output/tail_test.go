package output

import (
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/resman-dev/resman/messages"
)

func TestTailBounds(t *testing.T) {
	cases := []struct {
		name     string
		count    int // lines appended, numbered from 0
		length   int // bytes of each line's text
		wantKept int
	}{
		{"few", 10, 10, 10},
		{"1,000 lines", 1000, 10, 1000},
		{"over 1,000 lines", 2500, 10, 1000},
		{"1 MiB of 64 KiB lines", 16, 64 << 10, 16},
		{"over 1 MiB of 64 KiB lines", 40, 64 << 10, 16},
		{"over 1 MiB of 2 KiB lines", 1000, 2 << 10, 512},
		{"empty lines count as lines", 1500, 0, 1000},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var tail Tail
			require.Empty(t, tail.Last(10))
			for i := range tc.count {
				tail.Append(numbered(i, tc.length))
			}
			all := tail.Last(tailLines + 1)
			require.Len(t, all, tc.wantKept)
			for i, l := range all {
				require.Equal(t, numbered(tc.count-tc.wantKept+i, tc.length), l, "the newest lines, oldest first")
			}
			require.Equal(t, all[len(all)-3:], tail.Last(3))
			require.Empty(t, tail.Last(0))
			require.Empty(t, tail.Last(-1))
		})
	}
}

// Against a model: what a Tail keeps is the longest run of newest lines
// within both bounds.
func TestTailMixedLengths(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var tail Tail
	var all []messages.OutputLine
	for i := range 5000 {
		length := rng.IntN(200)
		if i < 20 || rng.IntN(50) == 0 { // 20 first: the storage grows while it wraps
			length = 64 << 10
		}
		l := numbered(i, length)
		tail.Append(l)
		all = append(all, l)

		kept, bytes := 0, 0
		for kept < len(all) && kept < tailLines && bytes+len(all[len(all)-1-kept].Text) <= tailBytes {
			bytes += len(all[len(all)-1-kept].Text)
			kept++
		}
		if i < 200 || i%97 == 0 || i > 4900 {
			require.Equal(t, all[len(all)-kept:], tail.Last(tailLines))
		}
	}
}

func TestTailLastIsACopy(t *testing.T) {
	var tail Tail
	tail.Append(messages.OutputLine{Text: "a"})
	got := tail.Last(1)
	got[0].Text = "changed"
	require.Equal(t, "a", tail.Last(1)[0].Text)
}

func TestTailConcurrent(t *testing.T) {
	var tail Tail
	done := make(chan struct{})
	// Owned by the test; it ends after its 5,000 appends.
	go func() {
		defer close(done)
		for i := range 5000 {
			tail.Append(numbered(i, 8))
		}
	}()
	for {
		select {
		case <-done:
			require.Len(t, tail.Last(tailLines), tailLines)
			return
		default:
		}
		lines := tail.Last(50)
		for i := 1; i < len(lines); i++ {
			require.Equal(t, lines[i-1].PID+1, lines[i].PID, "consecutive, oldest first")
		}
	}
}

// numbered is line i of a test: its PID and the start of its Text say i.
func numbered(i, length int) messages.OutputLine {
	text := strconv.Itoa(i)
	if length > 0 {
		text = (text + strings.Repeat(".", length))[:length]
	} else {
		text = ""
	}
	return messages.OutputLine{Key: "k", PID: i, Stream: Stdout, Text: text}
}

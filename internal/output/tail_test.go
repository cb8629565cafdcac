package output

import (
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

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
				tail.Append(line(numbered(i, tc.length)))
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
		tail.Append(line(l))
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
	tail.Append(&Line{Text: []byte("a")})
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
			tail.Append(line(numbered(i, 8)))
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

// line is l as a Capture hands it over.
func line(l messages.OutputLine) *Line {
	return &Line{Key: l.Key, PID: l.PID, Stream: l.Stream, Text: []byte(l.Text), At: l.At, Truncated: l.Truncated}
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

// Against the same model, lines added a read at a time: a read's lines
// share their key, PID, stream and time, and a big line may push out
// every older line, the read's own first lines included.
func TestTailBatches(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var tail Tail
	var all []messages.OutputLine
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	dots := strings.Repeat(".", 64<<10)
	proto := Line{Key: "k", PID: 1, Stream: Stdout}
	byBytes := 0 // reads after which the byte bound held fewer than 1,000 lines
	for read := range 800 {
		proto.At = at
		switch rng.IntN(4) { // one of the three changes, or none
		case 0:
			at = at.Add(time.Millisecond)
		case 1:
			proto.PID++
		case 2:
			proto.Stream = map[string]string{Stdout: Stderr, Stderr: Stdout}[proto.Stream]
		}
		var buf []byte
		var spans []span
		for range rng.IntN(400) {
			length := rng.IntN(100)
			if rng.IntN(40) == 0 {
				length = 64 << 10
			}
			start := len(buf)
			num := strconv.Itoa(len(all))
			buf = append(buf, num...)
			buf = append(buf, dots[:max(length-len(num), 0)]...)
			spans = append(spans, span{start: start, end: len(buf), truncated: length%2 == 1})
			l := proto.OutputLine()
			l.Text, l.Truncated = string(buf[start:]), length%2 == 1
			all = append(all, l)
		}
		var b Batch
		b.fill(proto, buf, spans)
		tail.AppendBatch(&b)

		kept, bytes := 0, 0
		for kept < len(all) && kept < tailLines && bytes+len(all[len(all)-1-kept].Text) <= tailBytes {
			bytes += len(all[len(all)-1-kept].Text)
			kept++
		}
		if kept < min(len(all), tailLines) {
			byBytes++
		}
		if read%10 == 0 || read > 790 {
			require.Equal(t, all[len(all)-kept:], tail.Last(tailLines), "after read %d", read)
		}
		if kept > 0 {
			require.Equal(t, all[len(all)-1:], tail.Last(1))
		}
	}
	require.Greater(t, byBytes, 100, "the byte bound was reached often")
}

// A line as big as the Tail pushes out every other, those of its own read
// too (only Append takes one: a Capture's lines are 64 KiB at most).
func TestTailWholeLine(t *testing.T) {
	var tail Tail
	at := time.Now()
	tail.Append(&Line{Key: "k", PID: 1, Stream: Stdout, At: at, Text: []byte("a")})
	tail.Append(&Line{Key: "k", PID: 1, Stream: Stdout, At: at, Text: make([]byte, tailBytes+10)})
	tail.Append(&Line{Key: "k", PID: 1, Stream: Stdout, At: at, Text: []byte("b")})
	got := tail.Last(10)
	require.Len(t, got, 1)
	require.Equal(t, "b", got[0].Text)
	require.Equal(t, 1, got[0].PID)
}

package output

import (
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/stretchr/testify/require"
)

// lineAt returns line i of b (counted from its first line not dropped).
func lineAt(b *Batch, i int) Line {
	l := b.proto
	l.Text, l.Truncated = b.line(b.first + i)
	return l
}

// piece is what a test expects of one OutputLine.
type piece struct {
	text      string
	truncated bool
}

func TestReadLines(t *testing.T) {
	const k = maxLine
	x := func(n int) string { return strings.Repeat("x", n) }
	cases := []struct {
		name string
		in   string
		want []piece
	}{
		{"nothing", "", nil},
		{"one line", "a\n", []piece{{"a", false}}},
		{"CRLF", "a\r\nb\n", []piece{{"a", false}, {"b", false}}},
		{"only the last CR goes", "a\r\r\n", []piece{{"a\r", false}}},
		{"CR inside a line", "a\rb\n", []piece{{"a\rb", false}}},
		{"empty lines", "\n\r\n\n", []piece{{"", false}, {"", false}, {"", false}}},
		{"empty line between", "a\n\nb\n", []piece{{"a", false}, {"", false}, {"b", false}}},
		{"last line without newline", "a\nbc", []piece{{"a", false}, {"bc", false}}},
		{"last line ends in CR", "a\nbc\r", []piece{{"a", false}, {"bc", false}}},
		{"a lone CR", "\r", []piece{{"", false}}},
		{"200 KiB without newline", x(200 << 10), []piece{{x(k), true}, {x(k), true}, {x(k), true}, {x(200<<10 - 3*k), false}}},
		{"exactly 64 KiB", x(k) + "\n", []piece{{x(k), false}}},
		{"exactly 64 KiB with CRLF", x(k) + "\r\n", []piece{{x(k), false}}},
		{"exactly 64 KiB at EOF with CR", x(k) + "\r", []piece{{x(k), false}}},
		{"one byte over", x(k) + "y\n", []piece{{x(k), true}, {"y", false}}},
		{"two pieces exactly", x(2*k) + "\n", []piece{{x(k), true}, {x(k), false}}},
		{"CR after 64 KiB, no LF", x(k) + "\ry\n", []piece{{x(k), true}, {"\ry", false}}},
		{"long line among short ones", "a\n" + x(70<<10) + "\nb", []piece{{"a", false}, {x(k), true}, {x(70<<10 - k), false}, {"b", false}}},
	}
	readers := []struct {
		name string
		wrap func(io.Reader) io.Reader
	}{
		{"whole", func(r io.Reader) io.Reader { return r }},
		{"byte by byte", iotest.OneByteReader},
		{"halves", iotest.HalfReader},
		{"data with EOF", iotest.DataErrReader},
		{"read error", func(r io.Reader) io.Reader { return io.MultiReader(r, iotest.ErrReader(errors.New("closed"))) }},
	}
	for _, tc := range cases {
		for _, rd := range readers {
			t.Run(tc.name+"/"+rd.name, func(t *testing.T) {
				proto := Line{Key: "k", PID: 7, Stream: Stderr}
				before := time.Now()
				var got []piece
				readLines(rd.wrap(strings.NewReader(tc.in)), proto, func(b *Batch) *Batch {
					for i := range b.Len() {
						l := lineAt(b, i)
						require.Equal(t, "k", l.Key)
						require.Equal(t, 7, l.PID)
						require.Equal(t, Stderr, l.Stream)
						require.False(t, l.At.Before(before))
						got = append(got, piece{string(l.Text), l.Truncated})
					}
					require.Equal(t, len(b.text), b.size(0))
					b.reset()
					return b
				})
				require.Equal(t, tc.want, got)
			})
		}
	}
}

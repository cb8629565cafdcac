package output

import (
	"bytes"
	"io"
	"time"

	"github.com/resman-dev/resman/messages"
)

const (
	// maxLine is the longest text of one line; a longer line is cut.
	maxLine = 64 << 10
	// readBuf holds an unfinished line (at most maxLine+1 bytes: see
	// readLines) and leaves room for a read of at least minRead bytes.
	readBuf = 2 * maxLine
	minRead = maxLine / 2
)

// Line is one line of a process's output as a [Capture] hands it over:
// [messages.OutputLine] with its text as bytes. Text is valid only during
// the call it is handed to (it shares a read's buffer); [Line.OutputLine]
// makes a line that outlives the call.
type Line struct {
	Key       string
	PID       int
	Stream    string // [Stdout] or [Stderr]
	Text      []byte // without the '\n' (and a '\r' before it)
	At        time.Time
	Truncated bool // the line was over 64 KiB: this is its first 64 KiB, and the rest follows as another line
}

// OutputLine returns l with its text copied into a string.
func (l *Line) OutputLine() messages.OutputLine {
	return messages.OutputLine{Key: l.Key, PID: l.PID, Stream: l.Stream, Text: string(l.Text), At: l.At, Truncated: l.Truncated}
}

// Batch is the lines of one read of one stream, as a [Capture] hands them
// to its consumer and its observer: valid only during the call. Their
// texts share one buffer and a line is an offset into it, so a read costs
// a copy and at most one allocation, not an allocation and a record per
// line, and a consumer takes a read's lines in one call (BenchmarkPrefixer
// in cmd/resman: a string per line was a third of the runner's CPU).
type Batch struct {
	proto Line     // Key, PID, Stream and At of every line
	text  []byte   // the lines' texts, back to back
	ends  []uint32 // line i is text[ends[i-1]:ends[i]] (from 0 for the first), cutBit cleared
	first int      // lines before it were dropped (evicted from the queue)

	c   *Capture // the Capture delivering b to its consumer; nil: none (an observer's)
	cut bool     // Each stopped at a Stop, and counted the lines left as dropped
}

// cutBit marks, in Batch.ends, a line that was cut (Truncated).
const cutBit = 1 << 31

// Key is the key of b's lines.
func (b *Batch) Key() string { return b.proto.Key }

// Len is the number of lines in b.
func (b *Batch) Len() int { return len(b.ends) - b.first }

// Each calls fn with each line of b, in order. While b is delivered to a
// consumer, it stops at a line that comes after [Capture.Stop]: the lines
// left then count as dropped (once, if Each is called again). fn's line is
// valid only during the call, and fn must not change it.
func (b *Batch) Each(fn func(*Line)) {
	l := b.proto
	for i := b.first; i < len(b.ends); i++ {
		if b.c != nil && b.c.abandoned.Load() {
			if !b.cut {
				b.cut = true
				b.c.dropped.Add(int64(len(b.ends) - i))
			}
			return
		}
		l.Text, l.Truncated = b.line(i)
		fn(&l)
	}
}

// line returns the text of line i (counted from the read's first line,
// dropped or not) and whether it was cut.
func (b *Batch) line(i int) (text []byte, truncated bool) {
	start := uint32(0)
	if i > 0 {
		start = b.ends[i-1] &^ cutBit
	}
	end := b.ends[i]
	return b.text[start : end&^cutBit : end&^cutBit], end&cutBit != 0
}

// size is the length of the texts of lines i and after.
func (b *Batch) size(i int) int {
	if i == 0 {
		return len(b.text)
	}
	return len(b.text) - int(b.ends[i-1]&^cutBit)
}

// span is a line's place in readLines' buffer before it is copied out.
type span struct {
	start, end int
	truncated  bool
}

// readLines reads r until EOF or a read error and hands its lines to push,
// one batch per read; push takes the batch and returns an empty one (or
// nil) to fill next. The batch's lines are proto with Text, Truncated and
// At set; At is the time the read that completed them returned (one clock
// reading per read, not per line).
func readLines(r io.Reader, proto Line, push func(*Batch) *Batch) {
	buf := make([]byte, readBuf)
	var spans []span
	var b *Batch
	start, end := 0, 0 // buf[start:end] is the line read so far: no '\n' in it
	for {
		switch {
		case start == end:
			start, end = 0, 0
		case len(buf)-end < minRead:
			end = copy(buf, buf[start:end])
			start = 0
		}
		n, err := r.Read(buf[end:])
		proto.At = time.Now()
		scan := end
		end += n
		spans = spans[:0]
		for {
			i := bytes.IndexByte(buf[scan:end], '\n')
			if i < 0 {
				break
			}
			spans = appendLine(spans, buf, start, scan+i)
			start = scan + i + 1
			scan = start
		}
		// An unfinished line goes on in 64 KiB pieces as soon as its text is
		// sure to be longer than the piece: more than maxLine+1 bytes, or
		// maxLine+1 whose last byte is not a '\r' that a '\n' may follow.
		for end-start > maxLine+1 || end-start == maxLine+1 && buf[end-1] != '\r' {
			spans = append(spans, span{start, start + maxLine, true})
			start += maxLine
		}
		if err != nil && start < end {
			spans = appendLine(spans, buf, start, end)
			start = end
		}
		if len(spans) > 0 {
			if b == nil {
				b = &Batch{}
			}
			b.fill(proto, buf, spans)
			b = push(b)
		}
		if err != nil {
			return
		}
	}
}

// appendLine appends the spans of the line buf[start:end] (its '\n' not
// included): one '\r' at its end removed, cut into pieces of maxLine,
// truncated on all pieces but the last.
func appendLine(spans []span, buf []byte, start, end int) []span {
	if end > start && buf[end-1] == '\r' {
		end--
	}
	for end-start > maxLine {
		spans = append(spans, span{start, start + maxLine, true})
		start += maxLine
	}
	return append(spans, span{start, end, false})
}

// fill makes b the lines of buf at spans, their texts copied into b.text.
func (b *Batch) fill(proto Line, buf []byte, spans []span) {
	size := 0
	for _, s := range spans {
		size += s.end - s.start
	}
	// A spare buffer is reused unless it is far bigger than this read
	// needs: a queued batch holds its whole buffer.
	if cap(b.text) < size || cap(b.text) > 4*size+4096 {
		b.text = make([]byte, 0, size)
	}
	b.proto, b.text, b.ends = proto, b.text[:0], b.ends[:0]
	for _, s := range spans {
		b.text = append(b.text, buf[s.start:s.end]...)
		end := uint32(len(b.text))
		if s.truncated {
			end |= cutBit
		}
		b.ends = append(b.ends, end)
	}
}

// reset empties b for reuse.
func (b *Batch) reset() {
	*b = Batch{text: b.text[:0], ends: b.ends[:0]}
}

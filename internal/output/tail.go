package output

import (
	"sync"

	"github.com/resman-dev/resman/messages"
)

const (
	tailLines = 1000    // lines a Tail keeps, at most
	tailBytes = 1 << 20 // their text, at most
)

// Tail keeps the last lines of a process across its runs: up to 1,000 lines
// and 1 MiB of text, whichever bound is reached first (older lines go). It
// keeps their texts as bytes in a ring, and what the lines of a read share
// (key, PID, stream, time) once per read, so that a read costs a copy and
// a small record per line, not an allocation per line; strings are made
// only when the lines are read (BenchmarkPrefixer in cmd/resman). The zero
// value is an empty Tail; it is safe for concurrent use.
type Tail struct {
	mu    sync.Mutex // guards the fields below
	lines ring[tailLine]
	reads ring[tailRead]
	text  []byte // circular, the lines' texts back to back; grows up to tailBytes
	end   int    // where the next text goes: an offset into every text ever appended
	bytes int    // total length of the texts held
}

// tailLine is a line of a Tail: its text is at off, an offset into every
// text ever appended (the ring holds it at off % len(text)). It holds no
// pointer: keeping it costs no write barrier and no garbage collector scan.
type tailLine struct {
	off       int
	len       int32
	truncated bool
}

// tailRead is what the lines of one read share, and how many of them the
// Tail still holds (the oldest lines held belong to the oldest read).
type tailRead struct {
	proto messages.OutputLine // Key, PID, Stream and At
	lines int
}

// Append adds l as the newest line.
func (t *Tail) Append(l *Line) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.read(messages.OutputLine{Key: l.Key, PID: l.PID, Stream: l.Stream, At: l.At})
	t.append(l.Text, l.Truncated)
}

// AppendBatch adds b's lines as the newest lines, in order (as many
// Appends would, under one lock).
func (t *Tail) AppendBatch(b *Batch) {
	if b.Len() == 0 {
		return
	}
	first := max(b.first, len(b.ends)-tailLines) // the others would go at once
	t.mu.Lock()
	defer t.mu.Unlock()
	t.read(messages.OutputLine{Key: b.proto.Key, PID: b.proto.PID, Stream: b.proto.Stream, At: b.proto.At})
	for i := first; i < len(b.ends); i++ {
		t.append(b.line(i))
	}
}

// read starts the record of a read whose lines come next; mu must be held.
// Every record but the newest holds at least a line.
func (t *Tail) read(proto messages.OutputLine) {
	if t.reads.n > 0 {
		switch last := t.reads.at(t.reads.n - 1); {
		case last.lines == 0:
			last.proto = proto
			return
		case last.proto == proto:
			return // the same as the last one's: its lines go on
		}
	}
	t.reads.push(tailRead{proto: proto})
}

// append adds a line of the newest read; mu must be held.
func (t *Tail) append(text []byte, truncated bool) {
	if len(text) > tailBytes { // not a Capture's line (64 KiB at most)
		text = text[:tailBytes]
	}
	for t.lines.n > 0 && (t.lines.n == tailLines || t.bytes+len(text) > tailBytes) {
		t.bytes -= int(t.lines.pop().len)
		oldest := t.reads.at(0)
		if oldest.lines--; oldest.lines == 0 && t.reads.n > 1 {
			t.reads.pop()
		}
	}
	if t.bytes+len(text) > len(t.text) {
		t.growText(t.bytes + len(text))
	}
	t.lines.push(tailLine{off: t.end, len: int32(len(text)), truncated: truncated})
	t.reads.at(t.reads.n-1).lines++
	t.bytes += len(text)
	if len(t.text) > 0 {
		at := t.end % len(t.text)
		if k := copy(t.text[at:], text); k < len(text) {
			copy(t.text, text[k:])
		}
	}
	t.end += len(text)
}

// Last returns a copy of the newest n lines (all of them, if fewer are
// kept), oldest first.
func (t *Tail) Last(n int) []messages.OutputLine {
	t.mu.Lock()
	defer t.mu.Unlock()
	n = min(max(n, 0), t.lines.n)
	out := make([]messages.OutputLine, n)
	if n == 0 {
		return out
	}
	r, left := t.reads.n-1, t.reads.at(t.reads.n-1)
	inRead := 0 // lines of read r already given out
	for i := n - 1; i >= 0; i-- {
		for inRead == left.lines {
			r, inRead = r-1, 0
			left = t.reads.at(r)
		}
		l := t.lines.at(t.lines.n - n + i)
		out[i] = left.proto
		out[i].Text, out[i].Truncated = t.textOf(l), l.truncated
		inRead++
	}
	return out
}

// textOf returns l's text as a string; mu must be held.
func (t *Tail) textOf(l *tailLine) string {
	if l.len == 0 {
		return ""
	}
	n := int(l.len)
	at := l.off % len(t.text)
	if at+n <= len(t.text) {
		return string(t.text[at : at+n])
	}
	return string(t.text[at:]) + string(t.text[:n-(len(t.text)-at)])
}

// growText makes the text ring hold at least need bytes (a power of two,
// up to tailBytes), keeping every text where its offset says.
func (t *Tail) growText(need int) {
	size := max(len(t.text), 4096)
	for size < need {
		size *= 2
	}
	size = min(size, tailBytes)
	text := make([]byte, size)
	if t.lines.n > 0 && len(t.text) > 0 {
		for off := t.lines.at(0).off; off < t.end; {
			from := off % len(t.text)
			k := min(t.end-off, len(t.text)-from, size-off%size)
			copy(text[off%size:], t.text[from:from+k])
			off += k
		}
	}
	t.text = text
}

// ring is a FIFO in a circular slice whose length is a power of two; it
// grows, doubling from 16, as items come (so a quiet process's Tail stays
// small).
type ring[T any] struct {
	items []T
	head  int // index of the oldest item
	n     int // items held
}

// at returns the i-th oldest item.
func (r *ring[T]) at(i int) *T { return &r.items[(r.head+i)&(len(r.items)-1)] }

func (r *ring[T]) push(v T) {
	if r.n == len(r.items) {
		items := make([]T, max(2*len(r.items), 16))
		for i := range r.n {
			items[i] = *r.at(i)
		}
		r.items, r.head = items, 0
	}
	r.n++
	*r.at(r.n - 1) = v
}

// pop removes the oldest item and returns it.
func (r *ring[T]) pop() T {
	p := r.at(0)
	v := *p
	var zero T
	*p = zero // let what it points to go
	r.head = (r.head + 1) & (len(r.items) - 1)
	r.n--
	return v
}

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
// and 1 MiB of text, whichever bound is reached first (older lines go). The
// zero value is an empty Tail; it is safe for concurrent use.
type Tail struct {
	mu    sync.Mutex            // guards the fields below
	lines []messages.OutputLine // circular; grows up to tailLines as lines come
	head  int                   // index of the oldest line
	n     int                   // lines held
	bytes int                   // total len(Text) of the lines held
}

// Append adds l as the newest line.
func (t *Tail) Append(l messages.OutputLine) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.append(l)
}

// AppendLines adds ls as the newest lines, in order (as many Appends would,
// under one lock).
func (t *Tail) AppendLines(ls []messages.OutputLine) {
	if len(ls) > tailLines {
		ls = ls[len(ls)-tailLines:] // the others would go at once
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for i := range ls {
		t.append(ls[i])
	}
}

// append adds l as the newest line; mu must be held.
func (t *Tail) append(l messages.OutputLine) {
	for t.n > 0 && (t.n == tailLines || t.bytes+len(l.Text) > tailBytes) {
		t.bytes -= len(t.lines[t.head].Text)
		t.lines[t.head] = messages.OutputLine{} // let the text go
		t.head = (t.head + 1) % len(t.lines)
		t.n--
	}
	if t.n == len(t.lines) {
		t.grow()
	}
	t.lines[(t.head+t.n)%len(t.lines)] = l
	t.n++
	t.bytes += len(l.Text)
}

// Last returns a copy of the newest n lines (all of them, if fewer are
// kept), oldest first.
func (t *Tail) Last(n int) []messages.OutputLine {
	t.mu.Lock()
	defer t.mu.Unlock()
	n = min(max(n, 0), t.n)
	out := make([]messages.OutputLine, n)
	for i := range out {
		out[i] = t.lines[(t.head+t.n-n+i)%len(t.lines)]
	}
	return out
}

// grow doubles the storage (up to tailLines), so that a quiet process's
// Tail stays small.
func (t *Tail) grow() {
	lines := make([]messages.OutputLine, min(max(2*len(t.lines), 16), tailLines))
	for i := range t.n {
		lines[i] = t.lines[(t.head+i)%len(t.lines)]
	}
	t.lines, t.head = lines, 0
}

package main

import (
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// colors are the ANSI colours of the process types' names, in turn.
var colors = []string{"36", "33", "32", "35", "34", "31", "96", "93", "92", "95", "94", "91"}

// printerBacklog bounds the bytes waiting for the writer: past it, the
// lines' producers wait (and a supervised process's capture drops its
// oldest lines meanwhile, counted in its status), so a stopped terminal
// never grows the runner's memory.
const printerBacklog = 1 << 20

// printerBatch is the room a new buffer of pending lines starts with.
const printerBatch = 64 << 10

// printer writes lines as "HH:MM:SS name.N | text", the name padded to
// the longest and coloured on a terminal. Each write holds whole lines
// only, so lines of different processes never mix: one line per write
// while lines come one at a time, and the lines that arrived during a
// write all in the next one when they come faster than the writer
// writes (group commit: a fast process does not make the output one
// syscall per line). Its methods are safe for concurrent use.
type printer struct {
	w        io.Writer
	color    bool
	width    int
	prefixes map[string]string // name → its padded (and coloured) prefix

	mu       sync.Mutex
	wake     sync.Cond // the writer waits here for lines; producers for room; Close for the end
	pending  []byte    // lines not yet handed to the writer
	spare    [][]byte  // written buffers, for reuse (at most two: one filling, one writing)
	writing  bool      // the writer goroutine runs
	stamp    []byte    // "HH:MM:SS " of stampSec
	lastName string    // the name of the last line, whose prefix is lastPre
	lastPre  string
	stampSec int64
	closed   bool
}

// isTerminal reports whether f is a terminal.
func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// newPrinter returns a printer for names; names[i] gets the i-th colour
// of its type (typeIndex) when color is set.
func newPrinter(w io.Writer, color bool, names []string, typeIndex map[string]int) *printer {
	p := &printer{w: w, color: color, prefixes: map[string]string{}}
	p.wake.L = &p.mu
	for _, n := range names {
		p.width = max(p.width, len(n))
	}
	for _, n := range names {
		p.prefixes[n] = p.prefix(n, typeIndex[n])
	}
	return p
}

func (p *printer) prefix(name string, idx int) string {
	padded := name + strings.Repeat(" ", max(0, p.width-len(name)))
	if !p.color {
		return padded + " | "
	}
	return "\x1b[" + colors[idx%len(colors)] + "m" + padded + " |\x1b[0m "
}

// Line prints one line of name's.
func (p *printer) Line(name string, at time.Time, text string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(p.pending) >= printerBacklog && !p.closed {
		p.wake.Wait()
	}
	if p.closed {
		return
	}
	pre := p.lastPre
	if name != p.lastName || pre == "" {
		var ok bool
		if pre, ok = p.prefixes[name]; !ok {
			pre = p.prefix(name, len(p.prefixes))
			p.prefixes[name] = pre
		}
		p.lastName, p.lastPre = name, pre
	}
	if p.pending == nil {
		if n := len(p.spare); n > 0 {
			p.pending, p.spare[n-1] = p.spare[n-1], nil
			p.spare = p.spare[:n-1]
		} else {
			p.pending = make([]byte, 0, printerBatch)
		}
	}
	if sec := at.Unix(); sec != p.stampSec || p.stamp == nil {
		p.stampSec, p.stamp = sec, at.AppendFormat(p.stamp[:0], "15:04:05 ")
	}
	if need := len(p.pending) + len(p.stamp) + len(pre) + len(text) + 1; need > cap(p.pending) {
		// Double (not Go's 1.25 for big slices): fewer copies while the
		// buffer grows to the backlog's size.
		p.pending = slices.Grow(p.pending, max(need, 2*cap(p.pending))-len(p.pending))
	}
	p.pending = append(p.pending, p.stamp...)
	p.pending = append(p.pending, pre...)
	p.pending = append(p.pending, text...)
	p.pending = append(p.pending, '\n')
	if !p.writing {
		p.writing = true
		go p.write() // owned by the printer: ends when nothing is pending; Close waits for it
	}
}

// Print prints a line of the runner's own, under the name "resman".
func (p *printer) Print(text string) { p.Line("resman", time.Now(), text) }

// write hands the pending lines to w, a batch per write, until none are left.
func (p *printer) write() {
	p.mu.Lock()
	for len(p.pending) > 0 {
		b := p.pending
		p.pending = nil
		p.wake.Broadcast() // room for producers
		p.mu.Unlock()
		_, _ = p.w.Write(b) // a closed stdout loses the lines; nothing to tell
		p.mu.Lock()
		if len(p.spare) < 2 {
			p.spare = append(p.spare, b[:0])
		}
	}
	p.writing = false
	p.wake.Broadcast()
	p.mu.Unlock()
}

// idle waits until every line printed so far was written.
func (p *printer) idle() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.writing {
		p.wake.Wait()
	}
}

// Close writes what is pending, then drops every later line.
func (p *printer) Close() {
	p.idle()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	p.wake.Broadcast()
}

package main

import (
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/resman-dev/resman/internal/output"
)

// colors are the ANSI colours of the process types' names, in turn.
var colors = []string{"36", "33", "32", "35", "34", "31", "96", "93", "92", "95", "94", "91"}

// printerBacklog bounds the bytes waiting for the writer: past it, the
// lines' producers wait (and a supervised process's capture drops its
// oldest lines meanwhile, counted in its status), so a stopped terminal
// never grows the runner's memory.
const printerBacklog = 1 << 20

// printerChunk is the size of the buffers lines wait in. They are made
// once and reused (at most printerBacklog/printerChunk+2 of them), never
// grown: growing a buffer meant copying it and faulting fresh pages in,
// an eighth of the runner's CPU under a flood (BenchmarkPrefixer).
const printerChunk = 64 << 10

// printer writes lines as "HH:MM:SS name.N | text", the name padded to
// the longest and coloured on a terminal. Each write holds whole lines
// only, so lines of different processes never mix: one line per write
// while lines come one at a time, and the lines that arrived during a
// write together in the next one (up to a chunk of 64 KiB) when they come
// faster than the writer writes (group commit: a fast process does not
// make the output one syscall per line). Its methods are safe for
// concurrent use.
type printer struct {
	w        io.Writer
	color    bool
	width    int
	prefixes map[string]string // name → its padded (and coloured) prefix

	mu       sync.Mutex
	wake     sync.Cond // the writer waits here for lines; producers for room; Close for the end
	queue    [][]byte  // chunks of lines for the writer, oldest first; the last one fills
	queued   int       // bytes in queue
	free     [][]byte  // written chunks, for reuse
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
	put(p, name, at, text)
	p.kick()
}

// Output prints a read's lines of a supervised process, under one lock
// (the manager's output goroutine of the process calls it).
func (p *printer) Output(b *output.Batch) {
	p.mu.Lock()
	defer p.mu.Unlock()
	b.Each(p.outputLine)
	p.kick()
}

// outputLine is put for an output line; mu must be held.
func (p *printer) outputLine(l *output.Line) { put(p, l.Key, l.At, l.Text) }

// put adds one line of name's for the writer; mu must be held. text is a
// string or bytes, so that an output line needs no string of its own.
func put[T string | []byte](p *printer, name string, at time.Time, text T) {
	for p.queued >= printerBacklog && !p.closed {
		p.kick()
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
	if sec := at.Unix(); sec != p.stampSec || p.stamp == nil {
		p.stampSec, p.stamp = sec, at.AppendFormat(p.stamp[:0], "15:04:05 ")
	}
	need := len(p.stamp) + len(pre) + len(text) + 1
	last := len(p.queue) - 1
	if last < 0 || cap(p.queue[last])-len(p.queue[last]) < need {
		p.queue = append(p.queue, p.chunk(need))
		last++
	}
	c := p.queue[last]
	c = append(c, p.stamp...)
	c = append(c, pre...)
	c = append(c, text...)
	p.queue[last] = append(c, '\n')
	p.queued += need
}

// kick starts the writer if lines wait and it is not running; mu must be
// held.
func (p *printer) kick() {
	if !p.writing && p.queued > 0 {
		p.writing = true
		go p.write() // owned by the printer: ends when nothing is pending; Close waits for it
	}
}

// Print prints a line of the runner's own, under the name "resman".
func (p *printer) Print(text string) { p.Line("resman", time.Now(), text) }

// chunk returns an empty buffer with room for need bytes; mu must be held.
func (p *printer) chunk(need int) []byte {
	if need > printerChunk {
		return make([]byte, 0, need) // a line longer than a chunk: its own buffer, not kept
	}
	if n := len(p.free); n > 0 {
		c := p.free[n-1]
		p.free[n-1] = nil
		p.free = p.free[:n-1]
		return c
	}
	return make([]byte, 0, printerChunk)
}

// write hands the queued chunks to w, one write each, oldest first, until
// none is left. It takes the chunk still filling too: the lines that come
// meanwhile start the next one.
func (p *printer) write() {
	p.mu.Lock()
	for len(p.queue) > 0 {
		c := p.queue[0]
		p.queue[0] = nil
		p.queue = p.queue[1:]
		p.queued -= len(c)
		p.wake.Broadcast() // room for producers
		p.mu.Unlock()
		_, _ = p.w.Write(c) // a closed stdout loses the lines; nothing to tell
		p.mu.Lock()
		if cap(c) == printerChunk {
			p.free = append(p.free, c[:0])
		}
	}
	p.queue = p.queue[:0:0] // the emptied prefix's array goes
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

package actors

import (
	"context"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/resman-dev/resman/internal/output"
)

// captureGrace bounds how long, after a run is reaped, its output is still
// read: a process that escaped the stop (no cgroup) may hold the pipes.
const captureGrace = 2 * time.Second

// outputs is a supervised process's output across its runs: the tail that
// Tail reads, the count of lines dropped, and where each line goes. Its
// fields are safe for concurrent use: lines arrive on capture goroutines.
type outputs struct {
	tail    output.Tail
	dropped atomic.Int64
	sink    func(*output.Batch) // the manager's consumers (hook, logger, subscribers); may be nil
}

// runOutput is one run's capture: the pipes' read ends and what reads them.
type runOutput struct {
	outR, outW, errR, errW *os.File
	capture                *output.Capture
	feed                   *feed // an Output ready check's lines; nil: none
}

// pipes gives cmd a stdout and a stderr pipe of its own (not through
// os/exec, whose copying goroutines Wait would wait for).
func (o *outputs) pipes(withFeed bool) (*runOutput, error) {
	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		_, _ = outR.Close(), outW.Close()
		return nil, err
	}
	ro := &runOutput{outR: outR, outW: outW, errR: errR, errW: errW}
	if withFeed {
		ro.feed = &feed{ch: make(chan string, 1024)}
	}
	return ro, nil
}

// started closes the write ends the child now holds and starts reading.
func (o *outputs) started(ro *runOutput, key string, pid int) {
	_, _ = ro.outW.Close(), ro.errW.Close()
	ro.capture = output.NewCapture(key, pid, func(b *output.Batch) {
		if o.sink != nil {
			o.sink(b)
		}
	})
	// The tail and a ready check see every line as it is read, whatever a
	// slow consumer drops.
	ro.capture.Observe(func(b *output.Batch) {
		o.tail.AppendBatch(b)
		if ro.feed != nil {
			b.Each(func(l *output.Line) { ro.feed.send(l.Text) })
		}
	})
	ro.capture.Add(output.Stdout, ro.outR)
	ro.capture.Add(output.Stderr, ro.errR)
}

// failed releases the pipes of a run that did not start.
func (ro *runOutput) failed() {
	_, _, _, _ = ro.outR.Close(), ro.outW.Close(), ro.errR.Close(), ro.errW.Close()
}

// ended finishes a reaped run's capture: what is left in the pipes is read
// and delivered, for up to captureGrace; then the pipes are closed. It
// runs on the goroutine that reaped the run, before the run's end is
// reported, so that the end is news only once its lines were delivered (or
// counted as dropped).
func (o *outputs) ended(ro *runOutput) {
	ctx, cancel := context.WithTimeout(context.Background(), captureGrace)
	defer cancel()
	if ro.capture.Wait(ctx) != nil {
		ro.capture.Stop()
	}
	_, _ = ro.outR.Close(), ro.errR.Close()
	ro.feed.stop()
	n := ro.capture.Dropped()
	o.dropped.Add(int64(n))
	select {
	case <-ro.capture.Quiet():
		o.dropped.Add(int64(ro.capture.Dropped() - n))
	default:
		// A consumer call (a slow hook) is still running: the lines its
		// goroutine holds count as dropped once it returns.
		go func() { // owned by the run's output: ends when the hook returns
			<-ro.capture.Quiet()
			o.dropped.Add(int64(ro.capture.Dropped() - n))
		}()
	}
}

// feed hands an Output ready check the lines of a run without ever
// blocking the capture: a full channel drops the line.
type feed struct {
	mu   sync.Mutex
	ch   chan string
	done bool
}

func (f *feed) send(text []byte) {
	if f == nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.done || len(f.ch) == cap(f.ch) { // a string only for a line that is sent
		return
	}
	select {
	case f.ch <- string(text):
	default:
	}
}

// stop ends the feed (the check is over, or the output ended).
func (f *feed) stop() {
	if f == nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.done {
		f.done = true
		close(f.ch)
	}
}

func (f *feed) lines() <-chan string {
	if f == nil {
		return nil
	}
	return f.ch
}

package output

import (
	"bufio"
	"context"
	"io"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/resman-dev/resman/messages"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// collector is a consumer that keeps what it is given.
type collector struct {
	mu    sync.Mutex
	lines []messages.OutputLine
}

func (c *collector) consume(l *Line) {
	c.mu.Lock()
	c.lines = append(c.lines, l.OutputLine())
	c.mu.Unlock()
}

func (c *collector) got() []messages.OutputLine {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]messages.OutputLine(nil), c.lines...)
}

// each is a consumer that hands fn each line of a batch.
func each(fn func(*Line)) func(*Batch) { return func(b *Batch) { b.Each(fn) } }

func texts(lines []messages.OutputLine, stream string) []string {
	var out []string
	for _, l := range lines {
		if l.Stream == stream {
			out = append(out, l.Text)
		}
	}
	return out
}

func wait(t *testing.T, c *Capture) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, c.Wait(ctx))
}

func TestCaptureProcess(t *testing.T) {
	cmd := exec.Command("sh", "-c", `printf 'a\r\nb\nc'`)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	var col collector
	c := NewCapture("web", cmd.Process.Pid, each(col.consume))
	c.Add(Stdout, out)
	wait(t, c) // before cmd.Wait, which closes the pipe
	require.NoError(t, cmd.Wait())

	lines := col.got()
	require.Equal(t, []string{"a", "b", "c"}, texts(lines, Stdout))
	for _, l := range lines {
		require.Equal(t, "web", l.Key)
		require.Equal(t, cmd.Process.Pid, l.PID)
		require.False(t, l.Truncated)
		require.False(t, l.At.IsZero())
	}
	require.Zero(t, c.Dropped())
}

func TestCaptureBothStreams(t *testing.T) {
	cmd := exec.Command("sh", "-c", `for i in 1 2 3 4 5; do echo out$i; echo err$i >&2; done; printf 'end' >&2`)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	var col collector
	c := NewCapture("both", cmd.Process.Pid, each(col.consume))
	c.Add(Stdout, stdout)
	c.Add(Stderr, stderr)
	wait(t, c)
	require.NoError(t, cmd.Wait())

	lines := col.got()
	require.Equal(t, []string{"out1", "out2", "out3", "out4", "out5"}, texts(lines, Stdout))
	require.Equal(t, []string{"err1", "err2", "err3", "err4", "err5", "end"}, texts(lines, Stderr))
	require.Zero(t, c.Dropped())
}

// Across streams, lines reach the consumer in the order they arrived.
func TestCaptureOrderAcrossStreams(t *testing.T) {
	outR, outW, err := os.Pipe()
	require.NoError(t, err)
	errR, errW, err := os.Pipe()
	require.NoError(t, err)
	seen := make(chan messages.OutputLine, 10)
	c := NewCapture("k", 1, each(func(l *Line) { seen <- l.OutputLine() }))
	c.Add(Stdout, outR)
	c.Add(Stderr, errR)

	steps := []struct {
		w    *os.File
		text string
	}{{outW, "o1"}, {errW, "e1"}, {errW, "e2"}, {outW, "o2"}, {errW, "e3"}}
	for _, s := range steps {
		_, err := s.w.WriteString(s.text + "\n")
		require.NoError(t, err)
		select {
		case l := <-seen:
			require.Equal(t, s.text, l.Text)
			require.Equal(t, s.w == errW, l.Stream == Stderr)
		case <-time.After(10 * time.Second):
			t.Fatalf("%q not delivered", s.text)
		}
	}
	require.NoError(t, outW.Close())
	require.NoError(t, errW.Close())
	wait(t, c)
	require.NoError(t, outR.Close())
	require.NoError(t, errR.Close())
}

// A blocked consumer never slows the writer: the oldest lines are dropped,
// and every line is either delivered or counted as dropped.
func TestCaptureDropsOldest(t *testing.T) {
	const written = 200_000
	r, w, err := os.Pipe()
	require.NoError(t, err)
	defer r.Close()

	gate := make(chan struct{})
	blocked := make(chan struct{})
	var delivered []int // only the consumer's goroutine touches it until Wait returns
	c := NewCapture("k", 1, each(func(l *Line) {
		if len(delivered) == 0 {
			close(blocked)
			<-gate
		}
		n, err := strconv.Atoi(string(l.Text))
		if err != nil {
			panic(err)
		}
		delivered = append(delivered, n)
	}))
	eof := make(chan struct{})
	c.Add(Stdout, endSignal{r, eof})

	writerDone := make(chan error, 1)
	// Owned by the test; it ends when every line is written.
	go func() {
		bw := bufio.NewWriter(w)
		for i := range written {
			bw.WriteString(strconv.Itoa(i))
			bw.WriteByte('\n')
		}
		err := bw.Flush()
		if cerr := w.Close(); err == nil {
			err = cerr
		}
		writerDone <- err
	}()
	select {
	case <-blocked:
	case <-time.After(10 * time.Second):
		t.Fatal("consumer never called")
	}
	start := time.Now()
	select {
	case err := <-writerDone:
		require.NoError(t, err)
		t.Logf("writer finished in %v with the consumer blocked", time.Since(start))
	case <-time.After(10 * time.Second):
		close(gate)
		t.Fatal("the writer was held up by a blocked consumer")
	}
	// The reader has everything once it reaches EOF; only then let the consumer go.
	select {
	case <-eof:
	case <-time.After(10 * time.Second):
		t.Fatal("no EOF")
	}
	close(gate)
	wait(t, c)

	require.Equal(t, written, len(delivered)+c.Dropped(), "delivered + dropped == written")
	require.Positive(t, c.Dropped())
	// The consumer got the lines of the read it had in hand when it blocked
	// (the oldest, unless the queue had dropped some before the consumer's
	// goroutine first ran), then the full queue: the newest lines.
	require.Greater(t, len(delivered), queueLines)
	inHand := len(delivered) - queueLines
	for i, n := range delivered[:inHand] {
		require.Equal(t, delivered[0]+i, n, "the batch in hand is delivered whole")
	}
	for i, n := range delivered[inHand:] {
		require.Equal(t, written-queueLines+i, n, "the newest lines, in order")
	}
	t.Logf("delivered %d, dropped %d", len(delivered), c.Dropped())
}

// Stop lets Wait return while the consumer is stuck; the streams are still
// read to their end and their lines counted as dropped.
func TestCaptureStopWithStuckConsumer(t *testing.T) {
	r, w, err := os.Pipe()
	require.NoError(t, err)
	defer r.Close()
	stuck := make(chan struct{})
	release := make(chan struct{})
	var calls int // the consumer's goroutine only
	c := NewCapture("k", 1, each(func(*Line) {
		calls++
		close(stuck)
		<-release
	}))
	c.Add(Stdout, r)
	_, err = w.WriteString("first\nsecond\nthird\n")
	require.NoError(t, err)
	<-stuck

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, c.Wait(ctx), context.DeadlineExceeded, "the stream is open and the consumer stuck")

	c.Stop()
	c.Stop()
	// After Stop, 200 KiB more go through without a reader of the lines.
	_, err = w.WriteString(strings200KiB())
	require.NoError(t, err)
	require.NoError(t, w.Close())
	wait(t, c)

	close(release)
	require.Eventually(t, func() bool { return 1+c.Dropped() == 3+2048 }, 10*time.Second, time.Millisecond,
		"the call in progress delivers one line; the rest is dropped")
	require.Equal(t, 1, calls)
}

// endSignal is a reader that closes end when its Read first fails (EOF).
type endSignal struct {
	io.Reader
	end chan struct{}
}

func (e endSignal) Read(p []byte) (int, error) {
	n, err := e.Reader.Read(p)
	if err != nil {
		close(e.end) // the Capture reads no more after an error
	}
	return n, err
}

// strings200KiB is 2,048 lines of 100 bytes.
func strings200KiB() string {
	b := make([]byte, 0, 2048*100)
	for range 2048 {
		for range 99 {
			b = append(b, 'z')
		}
		b = append(b, '\n')
	}
	return string(b)
}

// Closing the reader ends a stream whose writer stays open (say, held by a
// grandchild); the Capture can then be used again.
func TestCaptureCloseReaderAndAddAgain(t *testing.T) {
	r, w, err := os.Pipe()
	require.NoError(t, err)
	defer w.Close()
	var col collector
	c := NewCapture("k", 1, each(col.consume))
	c.Add(Stdout, r)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, c.Wait(ctx), context.DeadlineExceeded)
	require.NoError(t, r.Close())
	wait(t, c)

	r2, w2, err := os.Pipe()
	require.NoError(t, err)
	defer r2.Close()
	c.Add(Stderr, r2)
	_, err = w2.WriteString("again\n")
	require.NoError(t, err)
	require.NoError(t, w2.Close())
	wait(t, c)
	require.Equal(t, []string{"again"}, texts(col.got(), Stderr))
}

func TestCaptureObserveAndQuiet(t *testing.T) {
	// A consumer stuck on its first line: Observe still sees every line as
	// it is read; after Stop, Wait returns at once, Quiet only once the
	// stuck call returned, and then Dropped counts every other line.
	gate, entered := make(chan struct{}), make(chan struct{}, 1)
	var delivered int
	c := NewCapture("k", 1, each(func(*Line) {
		select {
		case entered <- struct{}{}:
		default:
		}
		<-gate
		delivered++
	}))
	var mu sync.Mutex
	var observed []string
	c.Observe(func(b *Batch) {
		mu.Lock()
		for i := range b.Len() {
			observed = append(observed, string(lineAt(b, i).Text))
		}
		mu.Unlock()
	})
	r, w := io.Pipe()
	c.Add(Stdout, r)
	go func() { // owned by the test: ends once the lines are written
		for i := range 100 {
			_, _ = io.WriteString(w, strconv.Itoa(i)+"\n")
		}
		_ = w.Close()
	}()
	<-entered
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(observed) == 100 }, 10*time.Second, time.Millisecond)
	mu.Lock()
	require.Equal(t, "0", observed[0])
	require.Equal(t, "99", observed[99])
	mu.Unlock()
	c.Stop()
	wait(t, c)
	select {
	case <-c.Quiet():
		t.Fatal("quiet while the consumer call runs")
	default:
	}
	close(gate)
	select {
	case <-c.Quiet():
	case <-time.After(10 * time.Second):
		t.Fatal("not quiet after the consumer returned")
	}
	require.Equal(t, 1, delivered)
	require.Equal(t, 99, c.Dropped(), "every line but the one delivered")
}

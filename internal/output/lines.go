package output

import (
	"bytes"
	"io"
	"time"

	"github.com/resman-dev/resman/messages"
)

const (
	// maxLine is the longest text of one OutputLine; a longer line is cut.
	maxLine = 64 << 10
	// readBuf holds an unfinished line (at most maxLine+1 bytes: see
	// readLines) and leaves room for a read of at least minRead bytes.
	readBuf = 2 * maxLine
	minRead = maxLine / 2
)

// readLines reads r until EOF or a read error and hands its lines to push,
// one batch per read; push takes the batch and returns an empty one (or
// nil) to fill next. Each line is proto with Text, Truncated and At set; At
// is the time the read that completed the line returned (one clock reading
// per read, not per line).
func readLines(r io.Reader, proto messages.OutputLine, push func([]messages.OutputLine) []messages.OutputLine) {
	buf := make([]byte, readBuf)
	var batch []messages.OutputLine
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
		for {
			i := bytes.IndexByte(buf[scan:end], '\n')
			if i < 0 {
				break
			}
			batch = appendLine(batch, proto, buf[start:scan+i])
			start = scan + i + 1
			scan = start
		}
		// An unfinished line goes on in 64 KiB pieces as soon as its text is
		// sure to be longer than the piece: more than maxLine+1 bytes, or
		// maxLine+1 whose last byte is not a '\r' that a '\n' may follow.
		for end-start > maxLine+1 || end-start == maxLine+1 && buf[end-1] != '\r' {
			proto.Text, proto.Truncated = string(buf[start:start+maxLine]), true
			batch = append(batch, proto)
			start += maxLine
		}
		if err != nil && start < end {
			batch = appendLine(batch, proto, buf[start:end])
			start = end
		}
		if len(batch) > 0 {
			batch = push(batch)
		}
		if err != nil {
			return
		}
	}
}

// appendLine appends the line whose bytes (before its '\n') are b: one '\r'
// at its end removed, cut into pieces of maxLine, Truncated on all pieces
// but the last.
func appendLine(batch []messages.OutputLine, proto messages.OutputLine, b []byte) []messages.OutputLine {
	if n := len(b); n > 0 && b[n-1] == '\r' {
		b = b[:n-1]
	}
	for len(b) > maxLine {
		proto.Text, proto.Truncated = string(b[:maxLine]), true
		batch = append(batch, proto)
		b = b[maxLine:]
	}
	proto.Text, proto.Truncated = string(b), false
	return append(batch, proto)
}

// Package output turns what a supervised process writes on stdout and stderr
// into lines, without ever slowing the process down. A line travels as
// bytes ([Line], a read's lines together in a [Batch]: one buffer, each line
// an offset into it); [Line.OutputLine] makes the [messages.OutputLine],
// with a string of its own, that the public API hands out.
//
// # Lines
//
// A stream is split at '\n'; one '\r' before the '\n' is removed (and one at
// the very end of a stream, as [bufio.ScanLines] does). Empty lines are lines
// (Text ""). A line whose text is over 64 KiB is cut into pieces of 64 KiB;
// every piece but the last has Truncated set, so a reader joins pieces up to
// and including the first one without it. A last line without '\n' is
// delivered when the stream ends (EOF, or any read error — e.g. the owner
// closed the pipe).
//
// # Capture
//
// A [Capture] owns one run of a process: [Capture.Add] starts a goroutine
// per stream that reads as fast as the pipe delivers, and one goroutine of
// the Capture hands the lines to the consumer, in order, a read's lines per
// call. Between them is a
// bounded queue (16,384 lines or 4 MiB of text, whichever is reached first)
// that drops its oldest lines when the consumer falls behind; [Capture.Dropped]
// counts them. [Capture.Wait] waits until every stream has ended and every
// line was delivered; [Capture.Stop] abandons what has not been delivered, so
// that a stuck consumer cannot hold Wait.
//
// The caller owns the streams. [os/exec.Cmd.Wait] closes the pipes of
// StdoutPipe and StderrPipe, so Capture.Wait must come first (see the
// example); a stream stays open while any process holds its write end — a
// grandchild may — so a supervisor that gives the process the write end of an
// [os.Pipe] itself can close the read end after a grace period, which ends
// the stream.
//
// # Tail
//
// A [Tail] keeps a process's last lines across its runs (1,000 lines or 1 MiB
// of text, whichever is reached first); an observer feeds it with
// [Tail.AppendBatch] (or [Tail.Append]) and [Tail.Last] reads it, as
// [messages.OutputLine] values.
package output

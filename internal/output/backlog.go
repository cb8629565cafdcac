package output

import "github.com/resman-dev/resman/messages"

// backlog is a Capture's bounded FIFO of lines, kept as the batches its
// readers handed in (one per read): a batch changes hands whole, so a line is
// never copied under the lock (BenchmarkCaptureThroughput). A push past
// either bound evicts the oldest lines. Not safe for concurrent use: the
// Capture locks.
type backlog struct {
	maxLines, maxBytes int

	batches [][]messages.OutputLine // batches[0][front:] are the oldest lines
	front   int
	lines   int                     // lines held
	bytes   int                     // total len(Text) of the lines held
	spare   [][]messages.OutputLine // emptied batches, for the readers to fill again
}

const maxSpare = 4 // emptied batches kept for reuse, at most

func (q *backlog) len() int { return q.lines }

// push takes batch, whose texts total bytes, and reports how many old lines
// it evicted to make room.
func (q *backlog) push(batch []messages.OutputLine, bytes int) (evicted int) {
	q.batches = append(q.batches, batch)
	q.lines += len(batch)
	q.bytes += bytes
	for q.lines > q.maxLines || q.bytes > q.maxBytes {
		q.bytes -= len(q.batches[0][q.front].Text)
		q.front++
		q.lines--
		evicted++
		if q.front == len(q.batches[0]) {
			q.recycle(q.popFront())
		}
	}
	return evicted
}

// take removes the oldest batch: its lines are batch[front:].
func (q *backlog) take() (batch []messages.OutputLine, front int) {
	front = q.front
	batch = q.popFront()
	for _, l := range batch[front:] {
		q.bytes -= len(l.Text)
	}
	q.lines -= len(batch) - front
	return batch, front
}

// clear empties the backlog and reports how many lines it held.
func (q *backlog) clear() int {
	n := q.lines
	for len(q.batches) > 0 {
		q.recycle(q.popFront())
	}
	q.bytes, q.lines = 0, 0
	return n
}

// recycle keeps an emptied batch for reuse.
func (q *backlog) recycle(batch []messages.OutputLine) {
	if len(q.spare) < maxSpare {
		clear(batch) // let the texts go
		q.spare = append(q.spare, batch[:0])
	}
}

// reuse returns an emptied batch to fill again, nil if none is spare.
func (q *backlog) reuse() []messages.OutputLine {
	n := len(q.spare)
	if n == 0 {
		return nil
	}
	batch := q.spare[n-1]
	q.spare[n-1] = nil
	q.spare = q.spare[:n-1]
	return batch
}

func (q *backlog) popFront() []messages.OutputLine {
	batch := q.batches[0]
	q.batches[0] = nil
	q.batches = q.batches[1:]
	q.front = 0
	return batch
}

package output

// backlog is a Capture's bounded FIFO of lines, kept as the batches its
// readers handed in (one per read): a batch changes hands whole, so a line is
// never copied under the lock (BenchmarkCaptureThroughput). A push past
// either bound evicts the oldest lines. Not safe for concurrent use: the
// Capture locks.
type backlog struct {
	maxLines, maxBytes int

	batches []*Batch // batches[0]'s lines are the oldest
	lines   int      // lines held
	bytes   int      // total len(Text) of the lines held
	spare   []*Batch // emptied batches, for the readers to fill again
}

const maxSpare = 4 // emptied batches kept for reuse, at most

func (q *backlog) len() int { return q.lines }

// push takes b and reports how many old lines it evicted to make room.
func (q *backlog) push(b *Batch) (evicted int) {
	q.batches = append(q.batches, b)
	q.lines += b.Len()
	q.bytes += len(b.text)
	for q.lines > q.maxLines || q.bytes > q.maxBytes {
		oldest := q.batches[0]
		text, _ := oldest.line(oldest.first)
		q.bytes -= len(text)
		oldest.first++
		q.lines--
		evicted++
		if oldest.Len() == 0 {
			q.recycle(q.popFront())
		}
	}
	return evicted
}

// take removes the oldest batch (its lines not evicted).
func (q *backlog) take() *Batch {
	b := q.popFront()
	q.bytes -= b.size(b.first)
	q.lines -= b.Len()
	return b
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
func (q *backlog) recycle(b *Batch) {
	if len(q.spare) < maxSpare {
		b.reset()
		q.spare = append(q.spare, b)
	}
}

// reuse returns an emptied batch to fill again, nil if none is spare.
func (q *backlog) reuse() *Batch {
	n := len(q.spare)
	if n == 0 {
		return nil
	}
	b := q.spare[n-1]
	q.spare[n-1] = nil
	q.spare = q.spare[:n-1]
	return b
}

func (q *backlog) popFront() *Batch {
	b := q.batches[0]
	q.batches[0] = nil
	q.batches = q.batches[1:]
	return b
}

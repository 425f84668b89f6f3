package query

// The queue of executions waiting for a worker is one queue per
// organization, served in turn: a worker takes the oldest execution of the
// organization at the front of the ring, and that organization goes to the
// back of the ring if it has more waiting. An organization that submits a
// thousand executions therefore delays another's by at most one of its own
// per worker, instead of a thousand. Within an organization executions run
// in the order they were submitted.

// queues holds the executions waiting for a worker. It is not safe for
// concurrent use: the Service guards it with its mutex.
type queues struct {
	byOrg map[string][]string // ids waiting, oldest first; no empty entries
	ring  []string            // organizations with ids waiting, next served first
	n     int                 // ids waiting, across organizations
}

// push adds execution id of org at the back of org's queue; an organization
// with nothing waiting joins the back of the ring.
func (q *queues) push(org, id string) {
	if q.byOrg == nil {
		q.byOrg = make(map[string][]string)
	}
	waiting, ok := q.byOrg[org]
	if !ok {
		q.ring = append(q.ring, org)
	}
	q.byOrg[org] = append(waiting, id)
	q.n++
}

// pop removes and returns the next execution to run, and false when none is
// waiting.
func (q *queues) pop() (string, bool) {
	if len(q.ring) == 0 {
		return "", false
	}
	org := q.ring[0]
	q.ring[0] = ""
	q.ring = q.ring[1:]
	waiting := q.byOrg[org]
	id := waiting[0]
	if len(waiting) == 1 {
		delete(q.byOrg, org)
	} else {
		waiting[0] = ""
		q.byOrg[org] = waiting[1:]
		q.ring = append(q.ring, org)
	}
	q.n--
	return id, true
}

// len returns the number of executions waiting.
func (q *queues) len() int { return q.n }

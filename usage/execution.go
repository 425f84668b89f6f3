package usage

import "time"

// ExecutionStatus is the state of an asynchronous query execution.
type ExecutionStatus int

const (
	ExecutionQueued    ExecutionStatus = iota // accepted, waiting for a worker
	ExecutionRunning                          // a worker is answering it
	ExecutionComplete                         // answered; its rows are stored
	ExecutionFailed                           // could not be answered; Error says why
	ExecutionCancelled                        // cancelled by its owner before it finished
)

var executionStatuses = enum[ExecutionStatus]{what: "an execution status", field: "state",
	names: []string{"Queued", "Running", "Complete", "Failed", "Cancelled"}}

func (s ExecutionStatus) String() string { return executionStatuses.name(s) }

// Done reports whether s is final: the execution will not change again.
func (s ExecutionStatus) Done() bool { return s >= ExecutionComplete }

// SortKey orders the rows of an execution by one field: "Date",
// "ClientName", a Dimension name or a Metric name.
type SortKey struct {
	Field string
	Desc  bool
}

// Execution is an asynchronous query: submitted by one caller, answered by a
// worker, its rows kept until Expires. Faces tell their operations apart by
// Operation and ClientID, so that an execution is only visible through the
// path that created it.
type Execution struct {
	ID             string
	OrganizationID string // the organization whose events are counted and which owns the execution
	Operation      string // the face's name for the operation that created it
	ClientID       string // the client of a per-client operation's path, else ""
	Name           string // a caller-chosen label, if the operation has one

	Query Query
	// Sort orders the rows after the query's own order (usage.CompareRows),
	// which breaks ties. Empty: the query's order.
	Sort []SortKey
	// Limit truncates the rows to the first Limit after sorting; 0: no limit.
	Limit int

	Status   ExecutionStatus
	Error    *Error // when Failed: what the caller is told
	RowCount int    // rows stored, when Complete
	// ResultBytes is the size of the rows stored, when Complete, as the
	// query service counts it against its organization's limit.
	ResultBytes int64
	// Truncated reports that the answer had more rows than Limit.
	Truncated bool

	Created  time.Time
	Finished time.Time // when Status became final
	Expires  time.Time // after this the execution and its rows are gone
}

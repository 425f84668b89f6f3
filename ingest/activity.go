package ingest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/valyala/fastjson"

	"github.com/usaged/usaged/store"
	"github.com/usaged/usaged/usage"
)

// Limits of activity fields. They are far above any real value and are
// there so that one mistyped number cannot swamp a service's totals.
const (
	maxAttachments     = 10_000  // per message
	maxAttachmentBytes = 1 << 50 // per message
	maxUserCount       = 1_000_000_000
	maxStorageBytes    = 1 << 60
	maxEmailLen        = 320 // the longest address RFC 5321 allows
)

// ActivityStore records the activity events of services. store.ActivityAppender
// satisfies it; ingest asks for no more than it uses, so that its tests and
// other callers need not implement the whole registry.
type ActivityStore interface {
	// AppendActivity records events of service and returns one outcome per
	// event, in order, with the contract of store.ActivityAppender:
	// an ID already recorded for the service at or after dedupeFrom, or
	// earlier in events, is a Duplicate; on a non-nil error nothing of the
	// call may be assumed recorded.
	AppendActivity(ctx context.Context, service usage.GUID, events []usage.Activity, dedupeFrom time.Time) ([]usage.Outcome, error)
}

// Every usage backend is an ActivityStore, since it implements
// store.ActivityAppender.
var _ ActivityStore = store.Usage(nil)

// ActivityBatch is a decoded body of service activity events: the events
// that decoded, each with its position in the body, and an error for each
// element that did not.
type ActivityBatch struct {
	Activities []usage.Activity
	Index      []int        // Index[i] is the position of Activities[i] in the body
	Errors     []EventError // the first elements that are not valid activity events, at most Limits.MaxErrors
	// ErrorsOmitted counts the elements that are not valid activity events
	// beyond those in Errors.
	ErrorsOmitted int
	maxErrors     int // the Limits.MaxErrors the body was decoded with
}

// Len returns the number of elements the body held.
func (b *ActivityBatch) Len() int { return len(b.Activities) + len(b.Errors) + b.ErrorsOmitted }

// DecodeActivity decodes body in format f, in the shapes and within the
// limits of Decode. It fails, with a usage.KindInvalid error, when the body as
// a whole is not a JSON array, an {"events":[…]} object or NDJSON, and with a
// usage.KindTooLarge error when it holds more than lim.MaxEvents elements.
// Every element is checked
// against the rules of its type here, since none needs more than the element
// itself; only the event time's place in the dedupe window is left to
// IngestActivity, which knows the clock. Elements that fail are reported in
// the batch's Errors, one per element, for its first problem, up to
// lim.MaxErrors of them. A property that the element's type does not define
// is such a problem (CodeUnknownField), as it is for Decode, so that no
// misspelt field is dropped unnoticed.
func DecodeActivity(body []byte, f Format, lim Limits) (*ActivityBatch, error) {
	lim = lim.withDefaults()
	var d activityDecoder
	d.errs.max = lim.MaxErrors
	if err := walk(body, f, lim.MaxEvents, &d); err != nil {
		return nil, err
	}
	d.b.Errors, d.b.ErrorsOmitted, d.b.maxErrors = d.errs.list, d.errs.omitted, lim.MaxErrors
	return &d.b, nil
}

// Merge returns r, the outcome of Pipeline.IngestActivity of b.Activities,
// as the outcome of the body b was decoded from, as Batch.Merge does.
func (b *ActivityBatch) Merge(r Result) Result {
	return merge(b.Errors, b.ErrorsOmitted, b.Index, b.maxErrors, r)
}

// IngestActivity checks the times of activities against the dedupe window
// and the clock, appends the others for service, and reports per-event
// outcomes as Ingest does: errors sorted by their position in activities,
// never nil. A non-nil error means nothing of the batch may be assumed
// recorded and the caller must not acknowledge it.
func (p *Pipeline) IngestActivity(ctx context.Context, service usage.GUID, activities []usage.Activity) (Result, error) {
	if p.cfg.Services == nil {
		return Result{}, errors.New("ingest: no activity store is configured (Config.Services)")
	}
	if service.IsZero() {
		// The face takes the service from a route it has already looked
		// up, so a zero one is a bug, not a client's mistake.
		return Result{}, errors.New("ingest: activity for the zero service GUID")
	}
	now := p.cfg.Now()
	from := now.Add(-p.cfg.DedupeWindow)
	bad := errorList{max: p.cfg.Limits.MaxErrors}
	valid := make([]usage.Activity, 0, len(activities))
	for i := range activities {
		a := &activities[i]
		if e, ok := inWindow(a.ID, a.Time, now, from); !ok {
			e.Index = i
			bad.add(e)
			continue
		}
		valid = append(valid, *a)
	}
	res := result(nil, 0, &bad)
	if len(valid) > 0 {
		outs, err := p.cfg.Services.AppendActivity(ctx, service, valid, from)
		if err != nil {
			return Result{}, err
		}
		if len(outs) != len(valid) {
			// Counting a short answer would acknowledge events that may
			// not be recorded.
			return Result{}, fmt.Errorf("ingest: activity store returned %d outcomes for %d events", len(outs), len(valid))
		}
		for _, o := range outs {
			if o == usage.Duplicate {
				res.Duplicates++
			} else {
				res.Accepted++
			}
		}
	}
	return res, nil
}

type activityDecoder struct {
	b    ActivityBatch
	errs errorList
}

func (d *activityDecoder) grow(n int) {
	d.b.Activities = make([]usage.Activity, 0, n)
	d.b.Index = make([]int, 0, n)
}

func (d *activityDecoder) errors() *errorList { return &d.errs }

// activityProps holds the properties of one element by name. They are
// gathered first because the type, which says which of them matter, may come
// last in the object.
type activityProps struct {
	id, time, typ                                    *fastjson.Value
	userGUID, recipients, attachments, attachBytes   *fastjson.Value
	feature                                          *fastjson.Value
	total, pro, guest, disabled, unregistered, bytes *fastjson.Value
	email, firstName, lastName, groupName            *fastjson.Value
	status, groupType, groupGUID, invitedBy, event   *fastjson.Value
}

func (d *activityDecoder) add(i int, o *fastjson.Object) {
	var p activityProps
	var unknown []byte // the first property that is no type's field, valid while o is
	hasUnknown := false
	o.Visit(func(k []byte, v *fastjson.Value) {
		switch string(k) {
		case "id":
			p.id = v
		case "time":
			p.time = v
		case "type":
			p.typ = v
		case "userGuid":
			p.userGUID = v
		case "recipients":
			p.recipients = v
		case "attachments":
			p.attachments = v
		case "attachmentBytes":
			p.attachBytes = v
		case "feature":
			p.feature = v
		case "total":
			p.total = v
		case "pro":
			p.pro = v
		case "guest":
			p.guest = v
		case "disabled":
			p.disabled = v
		case "unregistered":
			p.unregistered = v
		case "bytes":
			p.bytes = v
		case "email":
			p.email = v
		case "firstName":
			p.firstName = v
		case "lastName":
			p.lastName = v
		case "groupName":
			p.groupName = v
		case "status":
			p.status = v
		case "groupType":
			p.groupType = v
		case "groupGuid":
			p.groupGUID = v
		case "invitedBy":
			p.invitedBy = v
		case "event":
			p.event = v
		default:
			if !hasUnknown {
				unknown, hasUnknown = k, true
			}
		}
	})
	r := activityReader{fieldReader{quiet: d.errs.full()}}
	var a usage.Activity
	if hasUnknown {
		// Against the fields of the event's type when it has a valid one,
		// so that the suggestion or the list is one the event can use.
		what, known := "activity events", activityFields
		if p.typ != nil {
			if b, err := p.typ.StringBytes(); err == nil && len(b) < 16 {
				if k, err := usage.ParseActivityKind(string(b)); err == nil {
					what, known = kindEvents[k], kindFields[k]
				}
			}
		}
		r.unknownField(unknown, what, known)
		if p.id != nil { // to name the event in the error, if it can
			if b, err := p.id.StringBytes(); err == nil && len(b) <= usage.MaxEventIDLen {
				a.ID = string(b)
			}
		}
	} else {
		a = r.activity(&p)
	}
	if r.bad != nil {
		r.bad.Index, r.bad.ID = i, a.ID
		d.errs.add(*r.bad)
		return
	}
	d.b.Activities = append(d.b.Activities, a)
	d.b.Index = append(d.b.Index, i)
}

// activityReader checks properties in a fixed order, so that the problem
// reported for an element does not depend on the order of its properties.
// Once one check fails, the later ones do nothing.
type activityReader struct {
	fieldReader
}

var activityTypes = func() string {
	names := make([]string, 0, 5)
	for k := usage.ActivityMessage; k <= usage.ActivityUser; k++ {
		names = append(names, k.String())
	}
	return strings.Join(names, ", ")
}()

// activity reads the activity p describes. Its ID is set whenever it could
// be read, so that a rejection can name the event.
func (r *activityReader) activity(p *activityProps) usage.Activity {
	var a usage.Activity
	a.ID = r.text("id", p.id, usage.MaxEventIDLen, true)
	if a.ID == "" {
		return a
	}
	if ts := r.word("time", p.time, true); ts != "" {
		t, err := parseTime(ts)
		switch {
		case err != nil:
			r.failf(CodeInvalidField, "time %q is not an RFC 3339 date-time with an offset, such as 2026-01-02T15:04:05Z", truncate(ts))
		case t.Before(time.Unix(0, 0)):
			r.failf(CodeInvalidField, "time %s is before 1970-01-01", t.Format(time.RFC3339))
		}
		a.Time = t
	}
	if typ := r.word("type", p.typ, true); typ != "" {
		k, err := usage.ParseActivityKind(truncate(typ))
		if err != nil {
			r.failf(CodeInvalidField, "type %q is not an activity type: use one of %s", truncate(typ), activityTypes)
		}
		a.Kind = k
	}
	if r.bad != nil {
		return a
	}
	r.foreign(p, a.Kind)
	switch a.Kind {
	case usage.ActivityMessage:
		a.User = r.guid("userGuid", p.userGUID, true)
		a.Recipients = r.recipients(p.recipients)
		a.Attachments = r.count("attachments", p.attachments, maxAttachments, false)
		a.AttachmentBytes = r.count("attachmentBytes", p.attachBytes, maxAttachmentBytes, false)
	case usage.ActivityFeature:
		a.User = r.guid("userGuid", p.userGUID, true)
		a.Feature = enum(r, "feature", p.feature, true, usage.ParseFeature)
	case usage.ActivityUsers:
		a.Users = usage.UserCounts{
			Total:        r.count("total", p.total, maxUserCount, true),
			Pro:          r.count("pro", p.pro, maxUserCount, true),
			Guest:        r.count("guest", p.guest, maxUserCount, true),
			Disabled:     r.count("disabled", p.disabled, maxUserCount, true),
			Unregistered: r.count("unregistered", p.unregistered, maxUserCount, true),
		}
	case usage.ActivityStorage:
		a.StorageBytes = r.count("bytes", p.bytes, maxStorageBytes, true)
	case usage.ActivityUser:
		a.UserEvent = enum(r, "event", p.event, true, usage.ParseUserEvent)
		a.User = r.guid("userGuid", p.userGUID, true)
		a.Email = r.text("email", p.email, maxEmailLen, false)
		a.FirstName = r.text("firstName", p.firstName, maxNameLen, false)
		a.LastName = r.text("lastName", p.lastName, maxNameLen, false)
		a.GroupName = r.text("groupName", p.groupName, maxNameLen, false)
		a.Status = enum(r, "status", p.status, false, usage.ParseUserStatus)
		a.GroupType = enum(r, "groupType", p.groupType, false, usage.ParseUserGroupType)
		a.GroupGUID = r.guid("groupGuid", p.groupGUID, false)
		a.InvitedBy = r.guid("invitedBy", p.invitedBy, false)
	}
	return a
}

// typeFields are the properties of each type of activity event beyond id,
// time and type; activityProps.typeField(i) holds the value of typeFields[i].
var typeFields = []struct {
	name  string
	kinds []usage.ActivityKind
}{
	{"userGuid", []usage.ActivityKind{usage.ActivityMessage, usage.ActivityFeature, usage.ActivityUser}},
	{"recipients", []usage.ActivityKind{usage.ActivityMessage}},
	{"attachments", []usage.ActivityKind{usage.ActivityMessage}},
	{"attachmentBytes", []usage.ActivityKind{usage.ActivityMessage}},
	{"feature", []usage.ActivityKind{usage.ActivityFeature}},
	{"total", []usage.ActivityKind{usage.ActivityUsers}},
	{"pro", []usage.ActivityKind{usage.ActivityUsers}},
	{"guest", []usage.ActivityKind{usage.ActivityUsers}},
	{"disabled", []usage.ActivityKind{usage.ActivityUsers}},
	{"unregistered", []usage.ActivityKind{usage.ActivityUsers}},
	{"bytes", []usage.ActivityKind{usage.ActivityStorage}},
	{"event", []usage.ActivityKind{usage.ActivityUser}},
	{"email", []usage.ActivityKind{usage.ActivityUser}},
	{"firstName", []usage.ActivityKind{usage.ActivityUser}},
	{"lastName", []usage.ActivityKind{usage.ActivityUser}},
	{"groupName", []usage.ActivityKind{usage.ActivityUser}},
	{"status", []usage.ActivityKind{usage.ActivityUser}},
	{"groupType", []usage.ActivityKind{usage.ActivityUser}},
	{"groupGuid", []usage.ActivityKind{usage.ActivityUser}},
	{"invitedBy", []usage.ActivityKind{usage.ActivityUser}},
}

// typeField returns the property typeFields[i] names. A switch rather than
// a table of functions: an indirect call would move p to the heap.
func (p *activityProps) typeField(i int) *fastjson.Value {
	switch i {
	case 0:
		return p.userGUID
	case 1:
		return p.recipients
	case 2:
		return p.attachments
	case 3:
		return p.attachBytes
	case 4:
		return p.feature
	case 5:
		return p.total
	case 6:
		return p.pro
	case 7:
		return p.guest
	case 8:
		return p.disabled
	case 9:
		return p.unregistered
	case 10:
		return p.bytes
	case 11:
		return p.event
	case 12:
		return p.email
	case 13:
		return p.firstName
	case 14:
		return p.lastName
	case 15:
		return p.groupName
	case 16:
		return p.status
	case 17:
		return p.groupType
	case 18:
		return p.groupGUID
	case 19:
		return p.invitedBy
	}
	return nil
}

// kindFields[k] names the properties of activity type k, and kindEvents[k]
// how messages name its events.
var kindFields, kindEvents = func() (fields [usage.ActivityUser + 1][]string, events [usage.ActivityUser + 1]string) {
	for k := usage.ActivityMessage; k <= usage.ActivityUser; k++ {
		fields[k] = []string{"id", "time", "type"}
		for _, f := range typeFields {
			if slices.Contains(f.kinds, k) {
				fields[k] = append(fields[k], f.name)
			}
		}
		events[k] = k.String() + " events"
	}
	return
}()

// foreign rejects a property of another type than k, such as bytes on a
// message: it would be ignored, and what the client meant by it lost. A null
// one is as good as none.
func (r *activityReader) foreign(p *activityProps, k usage.ActivityKind) {
	for i, f := range typeFields {
		if v := p.typeField(i); !absent(v) && !slices.Contains(f.kinds, k) {
			r.unknownField([]byte(f.name), kindEvents[k], kindFields[k])
			return
		}
	}
}

// absent reports whether property f was left out; null counts as left out.
func absent(f *fastjson.Value) bool { return f == nil || f.Type() == fastjson.TypeNull }

func (r *activityReader) missing(name string) {
	r.failf(CodeMissingField, "%s is required", name)
}

// word reads a string that its caller parses, and whose parser's error
// message therefore names any problem with it. An empty string is as good as
// none.
func (r *activityReader) word(name string, f *fastjson.Value, required bool) string {
	if r.bad != nil {
		return ""
	}
	var b []byte
	if f != nil {
		b = r.str(name, f)
	}
	if len(b) == 0 {
		if required && r.bad == nil {
			r.missing(name)
		}
		return ""
	}
	return string(b)
}

// text reads a string of at most max bytes without control characters. An
// empty string is as good as none.
func (r *activityReader) text(name string, f *fastjson.Value, max int, required bool) string {
	s := r.word(name, f, required)
	switch {
	case s == "":
		return ""
	case len(s) > max:
		r.failf(CodeInvalidField, "%s is %d bytes long; the limit is %d", name, len(s), max)
		return ""
	case !printable(s):
		r.failf(CodeInvalidField, "%s %q holds control characters or invalid UTF-8", name, truncate(s))
		return ""
	}
	return s
}

// count reads an integer from 0 to max. Only plain integer literals are
// integers, as for the API request events: 2.0 and 2e3 are not.
func (r *activityReader) count(name string, f *fastjson.Value, max int64, required bool) int64 {
	if r.bad != nil {
		return 0
	}
	if absent(f) {
		if required {
			r.missing(name)
		}
		return 0
	}
	n, err := f.Int64()
	switch {
	case err == nil && n < 0:
		r.failf(CodeInvalidField, "%s %d must not be negative", name, n)
	case err == nil && n > max:
		r.failf(CodeInvalidField, "%s %d is more than the limit of %d", name, n, max)
	case err == nil:
		return n
	case f.Type() == fastjson.TypeNumber && integerLiteral(f.String()):
		// Beyond int64, so beyond the limit: say that rather than that it
		// is not an integer.
		if lit := f.String(); lit[0] == '-' {
			r.failf(CodeInvalidField, "%s %s must not be negative", name, truncate(lit))
		} else {
			r.failf(CodeInvalidField, "%s %s is more than the limit of %d", name, truncate(lit), max)
		}
	default:
		r.wrong(name, "an integer", f)
	}
	return 0
}

// integerLiteral reports whether s is a JSON number without fraction or
// exponent.
func integerLiteral(s string) bool {
	s = strings.TrimPrefix(s, "-")
	return s != "" && strings.Trim(s, "0123456789") == ""
}

// guid reads a GUID in any form usage.ParseGUID accepts. The zero GUID
// stands for "none" in the domain, so it is refused where a user must be
// named and taken as absent elsewhere.
func (r *activityReader) guid(name string, f *fastjson.Value, required bool) usage.GUID {
	s := r.word(name, f, required)
	if s == "" {
		return usage.GUID{}
	}
	g, err := usage.ParseGUID(s)
	switch {
	case err != nil:
		r.failf(CodeInvalidField, "%s %q is not a GUID: use 32 hex digits, optionally dashed as 8-4-4-4-12", name, truncate(s))
	case g.IsZero() && required:
		r.failf(CodeInvalidField, "%s %s is the zero GUID, which names no user", name, s)
	}
	return g
}

// enum reads one of the names parse accepts, in any case. The value is
// truncated before parsing, which changes no outcome (every name is shorter
// than the cut) but keeps a huge value out of the message.
func enum[E ~int](r *activityReader, name string, f *fastjson.Value, required bool, parse func(string) (E, error)) E {
	s := r.word(name, f, required)
	if s == "" {
		return 0
	}
	v, err := parse(truncate(s))
	if err != nil {
		r.failf(CodeInvalidField, "%s %v", name, err)
	}
	return v
}

// recipients reads the recipients of a message: user GUIDs, kept once each
// however often they are listed (a message is received once), and e-mail
// addresses of external recipients, accepted but not kept, since reports
// count only the service's own users.
func (r *activityReader) recipients(f *fastjson.Value) []usage.GUID {
	if r.bad != nil || absent(f) {
		return nil
	}
	arr, err := f.Array()
	if err != nil {
		r.wrong("recipients", "an array of strings", f)
		return nil
	}
	var out []usage.GUID
	var seen map[usage.GUID]bool // only for long lists, where scanning out would cost O(n²)
	for i, e := range arr {
		b, err := e.StringBytes()
		if err != nil {
			r.wrong(fmt.Sprintf("recipients[%d]", i), "a string", e)
			return nil
		}
		s := string(b)
		if g, err := usage.ParseGUID(s); err == nil {
			if g.IsZero() {
				r.failf(CodeInvalidField, "recipients[%d] %s is the zero GUID, which names no user", i, s)
				return nil
			}
			switch {
			case seen != nil:
				if !seen[g] {
					seen[g] = true
					out = append(out, g)
				}
			case !slices.Contains(out, g):
				out = append(out, g)
				if len(out) == 16 {
					seen = make(map[usage.GUID]bool, len(arr))
					for _, g := range out {
						seen[g] = true
					}
				}
			}
			continue
		}
		if !email(s) {
			r.failf(CodeInvalidField, "recipients[%d] %q is neither a user GUID nor an e-mail address: name users by GUID and external recipients by address", i, truncate(s))
			return nil
		}
	}
	return out
}

// email reports whether s can be an e-mail address: something on each side
// of exactly one '@', within the length limit, printable. Nothing more is
// checked, since an external recipient is only accepted, never kept.
func email(s string) bool {
	at := strings.IndexByte(s, '@')
	return at > 0 && at < len(s)-1 && strings.IndexByte(s[at+1:], '@') < 0 && len(s) <= maxEmailLen && printable(s)
}

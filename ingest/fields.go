package ingest

import (
	"strings"
)

// An event property that no field of its kind of event has is rejected
// rather than ignored: a mistyped or mis-cased name ("userID") would
// otherwise be dropped silently, the event stored without it, and the
// corrected event then refused as a duplicate, so the mistake could never be
// mended.

// eventFields are the properties of an API request event, in the order of
// the README.
var eventFields = []string{"id", "time", "organizationId", "clientId", "clientName", "templateUri", "httpMethod",
	"status", "userId", "platform", "durationMs", "requestBytes", "responseBytes"}

// activityFields are the properties of an activity event of any type: the
// common ones first, then those of each type.
var activityFields = []string{"id", "time", "type", "userGuid", "recipients", "attachments", "attachmentBytes",
	"feature", "total", "pro", "guest", "disabled", "unregistered", "bytes", "event", "email", "firstName",
	"lastName", "groupName", "status", "groupType", "groupGuid", "invitedBy"}

// unknownField reports property key, which is not one of known, replacing
// any problem found before: a misnamed property explains the others (a
// "userID" makes userId missing), so it is what a client must hear first.
// what names the kind of event in the message.
func (r *fieldReader) unknownField(key []byte, what string, known []string) {
	r.bad = nil
	if r.quiet {
		r.failf(CodeUnknownField, "")
		return
	}
	k := truncate(string(key))
	if s := closestField(string(key), known); s != "" {
		r.failf(CodeUnknownField, "%s is not a field of %s: did you mean %s?", k, what, s)
		return
	}
	r.failf(CodeUnknownField, "%s is not a field of %s: use %s", k, what, strings.Join(known, ", "))
}

// closestField returns the name in known that key most likely meant: one
// equal to it but for case, else the nearest within a small edit distance
// (one edit per three letters, at most two), else "".
func closestField(key string, known []string) string {
	for _, k := range known {
		if strings.EqualFold(k, key) {
			return k
		}
	}
	if len(key) > 64 { // no field name is near one this long
		return ""
	}
	lk := strings.ToLower(key)
	best, bestDist := "", min(2, max(1, len(key)/3))+1
	for _, k := range known {
		if d := editDistance(lk, strings.ToLower(k)); d < bestDist {
			best, bestDist = k, d
		}
	}
	return best
}

// editDistance is the optimal string alignment distance between a and b, in
// bytes: insertions, deletions, substitutions and transpositions of
// neighbours ("emial") each count one.
func editDistance(a, b string) int {
	pp := make([]int, len(b)+1) // the row before prev
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], pp[j-2]+1)
			}
		}
		pp, prev, cur = prev, cur, pp
	}
	return prev[len(b)]
}

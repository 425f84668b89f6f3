package wire

import (
	"encoding/json"
	"strconv"
)

// AppendJSON appends r as encoding/json encodes it, several times faster:
// a large answer holds tens of thousands of rows, and encoding them by
// reflection took as long as the query.
func (r *UsageRow) AppendJSON(b []byte) []byte {
	for _, f := range [...]struct {
		name, value string
	}{{`{"clientId":`, r.ClientID}, {`,"clientName":`, r.ClientName}, {`,"organizationId":`, r.OrganizationID},
		{`,"userId":`, r.UserID}, {`,"templateUri":`, r.TemplateURI}, {`,"httpMethod":`, r.HTTPMethod}} {
		b = appendString(append(b, f.name...), f.value)
	}
	for _, f := range [...]struct {
		name  string
		value int64
	}{{`,"status200":`, r.Status200}, {`,"status300":`, r.Status300}, {`,"status400":`, r.Status400},
		{`,"status500":`, r.Status500}, {`,"status429":`, r.Status429}, {`,"requests":`, r.Requests}} {
		b = strconv.AppendInt(append(b, f.name...), f.value, 10)
	}
	if r.Date != "" {
		b = appendString(append(b, `,"date":`...), r.Date)
	}
	return append(b, '}')
}

// AppendJSON appends r as encoding/json encodes it (see UsageRow.AppendJSON).
func (r *AggregateRow) AppendJSON(b []byte) []byte {
	b = r.UsageRow.AppendJSON(b)
	b = appendString(append(b[:len(b)-1], `,"platform":`...), r.Platform)
	for _, f := range [...]struct {
		name  string
		value *int64
	}{{`,"durationP50":`, r.DurationP50}, {`,"durationP90":`, r.DurationP90}, {`,"durationP95":`, r.DurationP95},
		{`,"durationP99":`, r.DurationP99}, {`,"durationMax":`, r.DurationMax}} {
		if f.value != nil {
			b = strconv.AppendInt(append(b, f.name...), *f.value, 10)
		}
	}
	if r.DurationAvg != nil {
		b = append(append(b, `,"durationAvg":`...), *r.DurationAvg...)
	}
	if r.RequestBytes != nil {
		b = strconv.AppendInt(append(b, `,"requestBytes":`...), *r.RequestBytes, 10)
	}
	if r.ResponseBytes != nil {
		b = strconv.AppendInt(append(b, `,"responseBytes":`...), *r.ResponseBytes, 10)
	}
	return append(b, '}')
}

// Millis returns the number of thousandths v as a JSON number with three
// decimals: 12345 is 12.345, 5 is 0.005.
func Millis(v int64) json.Number {
	neg := v < 0
	u := uint64(v)
	if neg {
		u = -u
	}
	b := make([]byte, 0, 24)
	if neg {
		b = append(b, '-')
	}
	b = strconv.AppendUint(b, u/1000, 10)
	f := u % 1000
	b = append(b, '.', byte('0'+f/100), byte('0'+f/10%10), byte('0'+f%10))
	return json.Number(b)
}

// appendString appends s quoted as encoding/json quotes it: as it is when
// it holds only printable ASCII that needs no escape (ids, names, dates),
// else by encoding/json itself.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

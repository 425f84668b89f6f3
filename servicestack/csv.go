package servicestack

import (
	"bytes"
	"cmp"
	"encoding/base64"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"
)

// encodeCSV writes v as ServiceStack's CsvSerializer does. The rows are the
// elements of a list: v itself when it is one (GET /api/collections), the
// `results` of a paged DTO, or else the DTO alone as one row, without its
// responseStatus. An error DTO is the row ErrorCode,Message,Errors, its
// field errors in JSV ([] when there are none, as JSON's "errors": []).
//
// A text cell that a spreadsheet would run as a formula is defused with a
// leading ' (defuseFormula), as the dashboard's CSV does; numbers are
// written as they are.
//
// Records (structs) get a header row of their PascalCase field names,
// written even when there are no rows, so that an empty page still says
// what its columns are; lists of plain values have no header. Rows end in
// CRLF. A field is quoted, its quotes doubled, only when it holds a quote,
// a comma, CR or LF. Omitted values (nil, omitzero zeros) are empty, numbers
// decimal, Guid and Time as in JSON, and a field holding a record or a list
// is written in JSV, ServiceStack's own notation: {Name:Ann,Email:a@b.c}.
func encodeCSV(b *bytes.Buffer, v any) error {
	if e, ok := v.(errorResponse); ok {
		var errs strings.Builder
		if err := writeJSV(&errs, reflect.ValueOf(e.ResponseStatus.Errors)); err != nil {
			return err
		}
		writeCSVRow(b, []string{"ErrorCode", "Message", "Errors"})
		writeCSVRow(b, []string{defuseFormula(e.ResponseStatus.ErrorCode), defuseFormula(e.ResponseStatus.Message), errs.String()})
		return nil
	}
	rv := indirect(reflect.ValueOf(v))
	if !rv.IsValid() {
		return nil
	}
	switch {
	case isList(rv):
		return writeCSVRows(b, rv)
	case isRecord(rv.Type()):
		if results, ok := resultsOf(rv); ok {
			return writeCSVRows(b, results)
		}
		fields := rowFields(rv.Type())
		writeCSVHeader(b, fields)
		return writeCSVRecord(b, rv, fields)
	}
	s, err := csvCell(rv)
	if err != nil {
		return err
	}
	writeCSVRow(b, []string{s})
	return nil
}

// resultsOf returns the `results` list of a paged DTO.
func resultsOf(v reflect.Value) (reflect.Value, bool) {
	for _, f := range typeFields(v.Type()) {
		if f.name != "results" {
			continue
		}
		fv, ok := fieldByIndex(v, f.index)
		if fv = indirect(fv); ok && fv.IsValid() && isList(fv) {
			return fv, true
		}
	}
	return reflect.Value{}, false
}

// rowFields returns the columns of records of type t: its fields but
// responseStatus, which has no place in a table.
func rowFields(t reflect.Type) []wireField {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	all := typeFields(t)
	i := slices.IndexFunc(all, func(f wireField) bool { return f.name == "responseStatus" })
	if i < 0 {
		return all
	}
	return slices.Delete(slices.Clone(all), i, i+1)
}

// writeCSVRows writes the elements of list as rows.
func writeCSVRows(b *bytes.Buffer, list reflect.Value) error {
	if !isRecord(list.Type().Elem()) {
		for i := range list.Len() {
			s, err := csvCell(list.Index(i))
			if err != nil {
				return err
			}
			writeCSVRow(b, []string{s})
		}
		return nil
	}
	fields := rowFields(list.Type().Elem())
	writeCSVHeader(b, fields)
	for i := range list.Len() {
		rec := indirect(list.Index(i))
		if !rec.IsValid() { // a nil element: a row of empty fields
			writeCSVRow(b, make([]string, len(fields)))
			continue
		}
		if err := writeCSVRecord(b, rec, fields); err != nil {
			return err
		}
	}
	return nil
}

// writeCSVHeader writes the PascalCase names of fields as the header row.
func writeCSVHeader(b *bytes.Buffer, fields []wireField) {
	names := make([]string, len(fields))
	for i, f := range fields {
		names[i] = f.wire
	}
	writeCSVRow(b, names)
}

// writeCSVRecord writes struct v as one row of fields.
func writeCSVRecord(b *bytes.Buffer, v reflect.Value, fields []wireField) error {
	row := make([]string, len(fields))
	for i, f := range fields {
		fv, ok := fieldByIndex(v, f.index)
		if !ok || f.omitted(fv) {
			continue
		}
		var err error
		if row[i], err = csvCell(fv); err != nil {
			return fmt.Errorf("field %s: %w", f.name, err)
		}
	}
	writeCSVRow(b, row)
	return nil
}

// csvCell is the text of one field: plain text for text and scalars, JSV
// for records, lists and maps. Text is defused (defuseFormula); numbers and
// booleans are not text, and a record or a list starts with a bracket.
func csvCell(v reflect.Value) (string, error) {
	v = indirect(v)
	if !v.IsValid() {
		return "", nil
	}
	if s, ok, err := marshalText(v); ok || err != nil {
		return defuseFormula(s), err
	}
	if v.Kind() == reflect.String {
		return defuseFormula(v.String()), nil
	}
	if s, ok, err := scalarText(v); ok || err != nil {
		return s, err
	}
	var sb strings.Builder
	err := writeJSV(&sb, v)
	return sb.String(), err
}

// defuseFormula returns text s with a leading ' when a spreadsheet opening
// the CSV would run it as a formula: when it starts with =, +, -, @, a tab
// or CR, after any leading spaces (which spreadsheets skip). A plain
// decimal number such as -12 or -0.5 is left alone: it reads as the number
// it is. The rule is the dashboard's, which marks its CSV the same way.
//
// ServiceStack's CsvSerializer writes text as it is; this is usaged's one
// change to its CSV, made because names in it come from API keys' holders.
func defuseFormula(s string) string {
	t := strings.TrimLeft(s, " ")
	if t == "" || !strings.ContainsRune("=+-@\t\r", rune(t[0])) || isDecimal(t) {
		return s
	}
	return "'" + s
}

// isDecimal reports whether s is an optional minus sign, digits, and
// optionally a point and more digits: -12, 3.5.
func isDecimal(s string) bool {
	s = strings.TrimPrefix(s, "-")
	whole, frac, hasPoint := strings.Cut(s, ".")
	digits := func(d string) bool { return d != "" && strings.Trim(d, "0123456789") == "" }
	return digits(whole) && (!hasPoint || digits(frac))
}

// writeCSVRow writes one row with CRLF, quoting as ServiceStack does.
func writeCSVRow(b *bytes.Buffer, row []string) {
	for i, s := range row {
		if i > 0 {
			b.WriteByte(',')
		}
		writeCSVField(b, s)
	}
	b.WriteString("\r\n")
}

// writeCSVField writes s, quoted with its quotes doubled only when it holds
// a quote, a comma, CR or LF, which is all RFC 4180 needs.
func writeCSVField(b *bytes.Buffer, s string) { writeQuoted(b, s, "\",\r\n") }

// writeQuoted writes s, in double quotes with its quotes doubled when it
// holds any of special: CSV and JSV quote alike, for different characters.
func writeQuoted(b interface {
	io.ByteWriter
	io.StringWriter
}, s, special string) {
	if !strings.ContainsAny(s, special) {
		b.WriteString(s)
		return
	}
	b.WriteByte('"')
	b.WriteString(strings.ReplaceAll(s, `"`, `""`))
	b.WriteByte('"')
}

// mapEntry is a map entry with its key as written, for writing maps in key
// order so that the output is stable.
type mapEntry struct {
	key string
	val reflect.Value
}

func mapEntries(v reflect.Value) ([]mapEntry, error) {
	var entries []mapEntry
	for it := v.MapRange(); it.Next(); {
		k, err := csvCell(it.Key())
		if err != nil {
			return nil, err
		}
		entries = append(entries, mapEntry{k, it.Value()})
	}
	slices.SortFunc(entries, func(x, y mapEntry) int { return cmp.Compare(x.key, y.key) })
	return entries, nil
}

// writeJSV writes v in ServiceStack's JSV notation: records as
// {Key:value,…} with PascalCase keys and their zero or empty members left
// out, lists as [a,b], maps as {key:value} in key order, and strings quoted
// only when they hold a character of the notation.
func writeJSV(b *strings.Builder, v reflect.Value) error {
	v = indirect(v)
	if !v.IsValid() {
		return nil
	}
	if s, ok, err := marshalText(v); ok || err != nil {
		writeJSVString(b, s)
		return err
	}
	if s, ok, err := scalarText(v); ok || err != nil {
		writeJSVString(b, s)
		return err
	}
	switch v.Kind() {
	case reflect.Struct:
		b.WriteByte('{')
		n := 0
		for _, f := range typeFields(v.Type()) {
			fv, ok := fieldByIndex(v, f.index)
			if !ok || f.omitted(fv) || isZero(fv) || isEmpty(fv) {
				continue
			}
			if n > 0 {
				b.WriteByte(',')
			}
			n++
			b.WriteString(f.wire)
			b.WriteByte(':')
			if err := writeJSV(b, fv); err != nil {
				return err
			}
		}
		b.WriteByte('}')
		return nil
	case reflect.Slice, reflect.Array:
		if v.Type().Elem().Kind() == reflect.Uint8 { // bytes are base64, as in JSON
			writeJSVString(b, base64.StdEncoding.EncodeToString(byteSlice(v)))
			return nil
		}
		b.WriteByte('[')
		for i := range v.Len() {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := writeJSV(b, v.Index(i)); err != nil {
				return err
			}
		}
		b.WriteByte(']')
		return nil
	case reflect.Map:
		entries, err := mapEntries(v)
		if err != nil {
			return err
		}
		b.WriteByte('{')
		for i, e := range entries {
			if i > 0 {
				b.WriteByte(',')
			}
			writeJSVString(b, e.key)
			b.WriteByte(':')
			if err := writeJSV(b, e.val); err != nil {
				return err
			}
		}
		b.WriteByte('}')
		return nil
	}
	return fmt.Errorf("unsupported type %s", v.Type())
}

// writeJSVString writes s as a JSV string: quoted, quotes doubled, when it
// holds a quote, a separator or a bracket of the notation, or a line break.
func writeJSVString(b *strings.Builder, s string) { writeQuoted(b, s, "\",{}[]\r\n") }

// byteSlice returns the bytes of a []byte or [n]byte value, which need not
// be addressable.
func byteSlice(v reflect.Value) []byte {
	if v.Kind() == reflect.Slice && v.CanInterface() {
		return v.Bytes()
	}
	out := make([]byte, v.Len())
	for i := range out {
		out[i] = byte(v.Index(i).Uint())
	}
	return out
}

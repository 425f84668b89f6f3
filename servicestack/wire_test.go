package servicestack

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/usaged/usaged/usage"
)

// The sample DTOs are shaped like the CCC models: an embedded header,
// omitzero optionals, a nested record and a paged envelope.

type sampleContact struct {
	Name        string `json:"name,omitzero"`
	Email       string `json:"email,omitzero"`
	PhoneNumber string `json:"phoneNumber,omitzero"`
}

type sampleHeader struct {
	ServiceGuid  Guid          `json:"serviceGuid"`
	Name         string        `json:"name"`
	CreatedOn    Time          `json:"createdOn"`
	TrialEndDate Time          `json:"trialEndDate,omitzero"`
	Contact      sampleContact `json:"contact,omitzero"`
}

type sampleUsage struct {
	ResponseStatus *ResponseStatus `json:"responseStatus,omitzero"`
	sampleHeader
	IsAlias      bool  `json:"isAlias"`
	MessageCount int64 `json:"messageCount"`
	Ignored      int   `json:"-"`
}

type samplePage struct {
	ResponseStatus *ResponseStatus `json:"responseStatus,omitzero"`
	PageSize       int             `json:"pageSize"`
	Results        []sampleUsage   `json:"results"`
}

var (
	sampleGUID = usage.GUID{0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef}
	sampleTime = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
)

func sample(name string) sampleUsage {
	return sampleUsage{sampleHeader: sampleHeader{ServiceGuid: Guid(sampleGUID), Name: name, CreatedOn: Time(sampleTime)}, MessageCount: 7}
}

// serve runs h behind WithSuffixes for a GET of target with the given
// Accept header (none when empty).
func serve(target, accept string, h http.HandlerFunc) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodGet, target, nil)
	if accept != "" {
		r.Header.Set("Accept", accept)
	}
	w := httptest.NewRecorder()
	WithSuffixes(h).ServeHTTP(w, r)
	return w
}

func TestNegotiate(t *testing.T) {
	f := func(target, accept string, want format, wantCallback string) {
		t.Helper()
		var got format
		var cb string
		serve(target, accept, func(w http.ResponseWriter, r *http.Request) { got, cb = negotiate(r) })
		if got != want || cb != wantCallback {
			t.Errorf("%s (Accept %q): got %s %q, want %s %q", target, accept, got, cb, want, wantCallback)
		}
	}
	// Each rule alone.
	f("/x", "", formatJSON, "")
	f("/x?callback=cb", "", formatJSON, "cb")
	f("/x?format=csv", "", formatCSV, "")
	f("/x?format=xml", "", formatXML, "")
	f("/x?format=json", "", formatJSON, "")
	f("/x.csv", "", formatCSV, "")
	f("/x.xml", "", formatXML, "")
	f("/x.json", "", formatJSON, "")
	f("/x", "text/csv", formatCSV, "")
	f("/x", "application/xml", formatXML, "")
	f("/x", "text/xml", formatXML, "")
	f("/x", "application/json", formatJSON, "")

	// Every precedence pair: callback > format > suffix > Accept > default.
	f("/x?callback=cb&format=xml", "", formatJSON, "cb")
	f("/x.csv?callback=cb", "", formatJSON, "cb")
	f("/x?callback=cb", "text/csv", formatJSON, "cb")
	f("/x.xml?format=csv", "", formatCSV, "")
	f("/x.csv?format=json", "", formatJSON, "")
	f("/x?format=xml", "text/csv", formatXML, "")
	f("/x.csv", "application/xml", formatCSV, "")
	f("/x.json", "text/csv", formatJSON, "")
	f("/x.xml?callback=cb&format=csv", "text/csv", formatJSON, "cb")

	// Keys and values ignore case; empty values are absent.
	f("/x?FORMAT=XmL", "", formatXML, "")
	f("/x?Callback=cb", "", formatJSON, "cb")
	f("/x.CSV", "", formatCSV, "")
	f("/x?callback=&format=csv", "", formatCSV, "")
	f("/x.xml?format=", "", formatXML, "")
	f("/x?format=&format=csv", "", formatCSV, "")
	// A raw ';' in a callback is sanitised like any other character, not
	// dropped; in any other pair, or in the key, it hides the pair, as
	// net/url skips it.
	f("/x?callback=a;b&format=xml", "", formatJSON, "a_b")
	f("/x?callback=cb;alert(1)", "", formatJSON, "cb_alert_1_")
	f("/x?x;callback=a&format=xml", "", formatXML, "")
	f("/x?format=csv;x", "", formatJSON, "")
	// An unknown ?format= is refused by FormatError; its 400 is JSON.
	f("/x.csv?format=jsv", "text/csv", formatJSON, "")
	f("/x?format=html", "", formatJSON, "")

	// Accept: highest q wins, the first among equals; q=0 refuses.
	f("/x", "text/csv;q=0.5, application/xml", formatXML, "")
	f("/x", "application/xml;q=0.5, text/csv;q=0.9", formatCSV, "")
	f("/x", "text/csv, application/xml", formatCSV, "")
	f("/x", "text/csv;q=0", formatJSON, "")
	f("/x", "image/png", formatJSON, "")
	f("/x", "image/png, text/xml;q=0.1", formatXML, "")
	f("/x", "TEXT/CSV; charset=utf-8", formatCSV, "")
	f("/x", "*/*", formatJSON, "")
	f("/x", "application/*;q=0.9, text/csv;q=0.8", formatJSON, "")
	f("/x", "text/csv;q=bogus, application/xml;q=0.1", formatXML, "")
	// A browser asks for HTML first, and JSON stands in for it.
	f("/x", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", formatJSON, "")

	// Accept over several header lines.
	r := httptest.NewRequest(http.MethodGet, "/x", nil)
	r.Header.Add("Accept", "image/png")
	r.Header.Add("Accept", "text/csv")
	if got, _ := negotiate(r); got != formatCSV {
		t.Errorf("two Accept lines: got %s, want csv", got)
	}
}

func TestWithSuffixes(t *testing.T) {
	f := func(target, wantPath, wantRawPath string, want format) {
		t.Helper()
		r := httptest.NewRequest(http.MethodGet, target, nil)
		before := *r.URL
		var got *http.Request
		WithSuffixes(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = r })).ServeHTTP(httptest.NewRecorder(), r)
		if got.URL.Path != wantPath || got.URL.RawPath != wantRawPath {
			t.Errorf("%s: path %q raw %q, want %q raw %q", target, got.URL.Path, got.URL.RawPath, wantPath, wantRawPath)
		}
		if f, _ := negotiate(got); f != want {
			t.Errorf("%s: format %s, want %s", target, f, want)
		}
		if *r.URL != before {
			t.Errorf("%s: the caller's URL changed to %v", target, r.URL)
		}
	}
	f("/api/services/abc/serviceusage.csv", "/api/services/abc/serviceusage", "", formatCSV)
	f("/api/services/abc/serviceusage.XML?x=1", "/api/services/abc/serviceusage", "", formatXML)
	f("/api/collections.json", "/api/collections", "", formatJSON)
	f("/api/services/a%2Fb/usage.csv", "/api/services/a/b/usage", "/api/services/a%2Fb/usage", formatCSV)
	f("/api/services/a%2Fb/usage%2Ecsv", "/api/services/a/b/usage", "", formatCSV)
	f("/api/x.csv/", "/api/x.csv/", "", formatJSON)    // the last segment is empty
	f("/api/.csv", "/api/.csv", "", formatJSON)        // nothing before the suffix
	f("/api/x.csv.json", "/api/x.csv", "", formatJSON) // only one suffix comes off
	f("/api/services.csvx", "/api/services.csvx", "", formatJSON)

	// The point of it: mux patterns without the suffix match, with path values.
	mux := http.NewServeMux()
	var guid string
	mux.HandleFunc("GET /api/services/{ServiceGuid}/serviceusage", func(w http.ResponseWriter, r *http.Request) {
		guid = r.PathValue("ServiceGuid")
		Respond(w, r, "GetServiceUsage", http.StatusOK, sample("a"))
	})
	w := httptest.NewRecorder()
	WithSuffixes(mux).ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/api/services/0123/serviceusage.csv", nil))
	if w.Code != http.StatusOK || guid != "0123" || w.Header().Get("Content-Type") != "text/csv; charset=utf-8" {
		t.Errorf("routed suffix: %d %q guid %q", w.Code, w.Header().Get("Content-Type"), guid)
	}
}

func TestSanitizeCallback(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		if got := sanitizeCallback(in); got != want {
			t.Errorf("sanitizeCallback(%q) = %q, want %q", in, got, want)
		}
	}
	f("cb", "cb")
	f("jQuery_123.done", "jQuery_123.done")
	f("alert(1);//<script>", "alert_1_____script_")
	f("a b\"c'd\ne", "a_b_c_d_e")
	f("ok});alert(document.cookie", "ok___alert_document.cookie")
	f("héllo", "h_llo")       // one rune, one '_'
	f("日本", "__")             // three bytes each, still one '_' each
	f("a😀b", "a_b")           // outside the BMP: .NET sees two chars, we one rune
	f("a\xffb", "a_b")        // invalid UTF-8: one '_' per bad byte
	f("\u2028x\u2029", "_x_") // JavaScript line terminators
}

func TestRespondJSON(t *testing.T) {
	v := sample(`<a&b> "q"`)
	v.Contact = sampleContact{Name: "Ann"}
	w := serve("/x", "", func(w http.ResponseWriter, r *http.Request) { Respond(w, r, "GetServiceUsage", http.StatusCreated, v) })
	want := `{"serviceGuid":"0123456789abcdef0123456789abcdef","name":"<a&b> \"q\"","createdOn":"2026-03-04T05:06:07Z","contact":{"name":"Ann"},"isAlias":false,"messageCount":7}`
	if w.Code != http.StatusCreated || w.Body.String() != want {
		t.Errorf("got %d %s\nwant %s", w.Code, w.Body, want)
	}
	h := w.Header()
	if h.Get("Content-Type") != "application/json; charset=utf-8" || h.Get("Vary") != "Accept" || h.Get("Content-Disposition") != "" {
		t.Errorf("headers: %v", h)
	}

	// Vary is added to what a middleware set, once.
	w = httptest.NewRecorder()
	w.Header().Set("Vary", "Accept-Encoding")
	Respond(w, httptest.NewRequest(http.MethodGet, "/x", nil), "Op", http.StatusOK, v)
	if got := w.Header().Values("Vary"); !slices.Equal(got, []string{"Accept-Encoding", "Accept"}) {
		t.Errorf("Vary: %q", got)
	}

	// Lists are JSON arrays, nil is null.
	w = serve("/x", "", func(w http.ResponseWriter, r *http.Request) {
		Respond(w, r, "Op", http.StatusOK, []sampleContact{{Email: "a@b.c"}})
	})
	if w.Body.String() != `[{"email":"a@b.c"}]` {
		t.Errorf("list: %s", w.Body)
	}
}

func TestRespondUnencodable(t *testing.T) {
	for _, accept := range []string{"application/json", "text/csv", "application/xml"} {
		w := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodGet, "/x", nil)
		r.Header.Set("Accept", accept)
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic for a channel", accept)
				}
			}()
			Respond(w, r, "Op", http.StatusOK, struct {
				C chan int `json:"c"`
			}{make(chan int)})
		}()
		if w.Body.Len() != 0 || len(w.Header()) != 0 {
			t.Errorf("%s: wrote before panicking: %v %q", accept, w.Header(), w.Body)
		}
	}
}

func TestJSONP(t *testing.T) {
	w := serve("/x.csv?callback="+url.QueryEscape("alert(1);//<script>"), "text/csv", func(w http.ResponseWriter, r *http.Request) {
		Respond(w, r, "Op", http.StatusAccepted, sampleContact{Name: "x"})
	})
	if w.Code != http.StatusOK || w.Body.String() != `alert_1_____script_({"name":"x"})` {
		t.Errorf("got %d %s", w.Code, w.Body)
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/javascript; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	if w.Header().Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("no nosniff: %v", w.Header())
	}

	// Errors under JSONP are 200, with the error DTO as the argument.
	w = serve("/x?callback=cb", "", func(w http.ResponseWriter, r *http.Request) {
		RespondError(w, r, "GetServiceUsage", usage.Errorf(usage.KindNotFound, "ServiceGuid", "Service x not found"), nil)
	})
	if want := `cb({"responseStatus":{"errorCode":"NotFound","message":"Service x not found","errors":[]}})`; w.Code != http.StatusOK || w.Body.String() != want {
		t.Errorf("got %d %s, want 200 %s", w.Code, w.Body, want)
	}
}

// readCSV parses a CSV body with encoding/csv, which must accept it.
func readCSV(t *testing.T, body string) [][]string {
	t.Helper()
	rows, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	if err != nil {
		t.Fatalf("encoding/csv cannot read %q: %v", body, err)
	}
	return rows
}

func TestCSVPaged(t *testing.T) {
	hostile := []string{"plain", "a,b", `say "hi"`, "line1\nline2", "cr\rhere", "crlf\r\nhere", "ünïcødé 日本", " padded ", `"`, ""}
	page := samplePage{PageSize: 25}
	for _, s := range hostile {
		page.Results = append(page.Results, sample(s))
	}
	page.Results[1].TrialEndDate = Time(sampleTime.Add(1500 * time.Millisecond))
	page.Results[2].Contact = sampleContact{Name: "Ann", Email: "a@b.c"}
	page.Results[3].Contact = sampleContact{Name: "Lee, Jr.", PhoneNumber: `+1 "555"`}
	page.Results[4].IsAlias = true

	w := serve("/api/services/usage?format=csv", "", func(w http.ResponseWriter, r *http.Request) {
		Respond(w, r, "GetServicesUsage", http.StatusOK, &page)
	})
	if ct, cd := w.Header().Get("Content-Type"), w.Header().Get("Content-Disposition"); ct != "text/csv; charset=utf-8" || cd != `attachment;filename="GetServicesUsage.csv"` {
		t.Errorf("headers %q %q", ct, cd)
	}
	body := w.Body.String()
	lines := strings.SplitAfter(body, "\r\n")
	if want := "ServiceGuid,Name,CreatedOn,TrialEndDate,Contact,IsAlias,MessageCount\r\n"; lines[0] != want {
		t.Errorf("header %q, want %q", lines[0], want)
	}
	if want := "0123456789abcdef0123456789abcdef,plain,2026-03-04T05:06:07Z,,,false,7\r\n"; lines[1] != want {
		t.Errorf("first row %q, want %q", lines[1], want)
	}
	if want := `0123456789abcdef0123456789abcdef,"a,b",2026-03-04T05:06:07Z,2026-03-04T05:06:08.5Z,,false,7` + "\r\n"; lines[2] != want {
		t.Errorf("second row %q, want %q", lines[2], want)
	}
	if !strings.HasSuffix(body, "\r\n") {
		t.Errorf("rows must end in CRLF: %q", body)
	}

	rows := readCSV(t, body)
	if len(rows) != 1+len(hostile) {
		t.Fatalf("%d rows, want %d", len(rows), 1+len(hostile))
	}
	for i, s := range hostile {
		// encoding/csv reads a quoted CRLF as LF; every other byte survives.
		if got, want := rows[i+1][1], strings.ReplaceAll(s, "\r\n", "\n"); got != want {
			t.Errorf("row %d: name %q, want %q", i+1, got, want)
		}
	}
	if rows[5][5] != "true" {
		t.Errorf("bool: %q", rows[5][5])
	}
	// Nested records are JSV, its strings quoted as JSV needs, then the
	// whole field quoted as CSV needs.
	if got, want := rows[3][4], "{Name:Ann,Email:a@b.c}"; got != want {
		t.Errorf("nested %q, want %q", got, want)
	}
	if got, want := rows[4][4], `{Name:"Lee, Jr.",PhoneNumber:"+1 ""555"""}`; got != want {
		t.Errorf("nested %q, want %q", got, want)
	}

	// Only what needs quoting is quoted.
	f := func(in, want string) {
		t.Helper()
		var b bytes.Buffer
		writeCSVField(&b, in)
		if b.String() != want {
			t.Errorf("writeCSVField(%q) = %q, want %q", in, b.String(), want)
		}
	}
	f("abc", "abc")
	f(" lead", " lead")
	f("", "")
	f("a,b", `"a,b"`)
	f(`a"b`, `"a""b"`)
	f("a\rb", "\"a\rb\"")
	f("a\nb", "\"a\nb\"")
	f("日本", "日本")
}

func TestCSVShapes(t *testing.T) {
	f := func(v any, want string) {
		t.Helper()
		w := serve("/x.csv", "", func(w http.ResponseWriter, r *http.Request) { Respond(w, r, "Op", http.StatusOK, v) })
		if got := w.Body.String(); got != want {
			t.Errorf("%T: got %q\nwant %q", v, got, want)
		}
	}
	// One DTO is one row, without its responseStatus.
	f(sample("x"), "ServiceGuid,Name,CreatedOn,TrialEndDate,Contact,IsAlias,MessageCount\r\n"+
		"0123456789abcdef0123456789abcdef,x,2026-03-04T05:06:07Z,,,false,7\r\n")
	// An empty page still has its header.
	f(samplePage{PageSize: 25, Results: []sampleUsage{}}, "ServiceGuid,Name,CreatedOn,TrialEndDate,Contact,IsAlias,MessageCount\r\n")
	// A bare list, and a nil element among pointers.
	f([]*sampleContact{{Name: "a"}, nil, {Email: "e"}}, "Name,Email,PhoneNumber\r\na,,\r\n,,\r\n,e,\r\n")
	// Plain values, and fields holding lists and maps, in JSV.
	f([]string{"a", "b,c"}, "a\r\n\"b,c\"\r\n")
	f(struct {
		Tags  []string          `json:"tags"`
		Meta  map[string]int    `json:"meta"`
		Guids []Guid            `json:"guids"`
		Empty map[string]string `json:"empty"`
		Nil   []string          `json:"nil"`
		Bytes []byte            `json:"bytes"`
	}{[]string{"x", "y]"}, map[string]int{"b": 2, "a": 1}, []Guid{Guid(sampleGUID)}, map[string]string{}, nil, []byte("hi")},
		"Tags,Meta,Guids,Empty,Nil,Bytes\r\n\"[x,\"\"y]\"\"]\",\"{a:1,b:2}\",[0123456789abcdef0123456789abcdef],{},,aGk=\r\n")
	f(nil, "")
}

func TestCSVError(t *testing.T) {
	w := serve("/x?format=csv", "", func(w http.ResponseWriter, r *http.Request) {
		RespondError(w, r, "CreateService", ValidationError(NotEmpty("Name"), NotEmpty("PrimaryDomain")), nil)
	})
	// The field errors are one JSV cell, as ServiceStack writes a list in CSV.
	if w.Code != http.StatusBadRequest || w.Body.String() != "ErrorCode,Message,Errors\r\nNotEmpty,'Name' must not be empty.,"+
		"\"[{ErrorCode:NotEmpty,FieldName:Name,Message:'Name' must not be empty.},{ErrorCode:NotEmpty,FieldName:PrimaryDomain,Message:'Primary Domain' must not be empty.}]\"\r\n" {
		t.Errorf("got %d %q", w.Code, w.Body)
	}
	if cd := w.Header().Get("Content-Disposition"); cd != `attachment;filename="CreateService.csv"` {
		t.Errorf("Content-Disposition %q", cd)
	}

	// Without field errors, the cell is [], as JSON's "errors": [].
	w = serve("/x?format=csv", "", func(w http.ResponseWriter, r *http.Request) {
		RespondError(w, r, "GetServiceUsage", usage.Errorf(usage.KindNotFound, "ServiceGuid", "Service x not found"), nil)
	})
	if got, want := w.Body.String(), "ErrorCode,Message,Errors\r\nNotFound,Service x not found,[]\r\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// xmlElement is a decoded XML element: its name, text and children in
// order, so that tests can check order and structure at once.
type xmlElement struct {
	Name     xml.Name
	Attr     []xml.Attr
	Text     string
	Children []*xmlElement
}

// decodeXML parses a whole document with encoding/xml, which must find it
// well-formed, and returns its root.
func decodeXML(t *testing.T, doc string) *xmlElement {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(doc))
	var stack []*xmlElement
	var root *xmlElement
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed: %v\n%s", err, doc)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			e := &xmlElement{Name: tok.Name, Attr: tok.Attr}
			if len(stack) > 0 {
				top := stack[len(stack)-1]
				top.Children = append(top.Children, e)
			} else if root == nil {
				root = e
			}
			stack = append(stack, e)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 {
				stack[len(stack)-1].Text += string(tok)
			}
		}
	}
	if root == nil {
		t.Fatalf("no root element in %s", doc)
	}
	return root
}

func (e *xmlElement) childNames() []string {
	var names []string
	for _, c := range e.Children {
		names = append(names, c.Name.Local)
	}
	return names
}

func (e *xmlElement) child(name string) *xmlElement {
	for _, c := range e.Children {
		if c.Name.Local == name {
			return c
		}
	}
	return nil
}

func TestXML(t *testing.T) {
	page := samplePage{PageSize: 25, Results: []sampleUsage{sample("<a & b>"), sample("\x00bad")}}
	page.Results[0].Contact = sampleContact{Name: "Ann", Email: "a@b.c"}
	w := serve("/x", "application/xml", func(w http.ResponseWriter, r *http.Request) {
		Respond(w, r, "GetServicesUsage", http.StatusOK, page)
	})
	if ct := w.Header().Get("Content-Type"); ct != "application/xml; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	body := w.Body.String()
	if !strings.HasPrefix(body, `<?xml version="1.0" encoding="utf-8"?><GetServicesUsageResponse xmlns:i="http://www.w3.org/2001/XMLSchema-instance" xmlns="http://schemas.servicestack.net/types">`) {
		t.Errorf("prolog and root: %s", body)
	}
	root := decodeXML(t, body)
	if root.Name != (xml.Name{Space: xmlnsServiceStack, Local: "GetServicesUsageResponse"}) {
		t.Errorf("root %v", root.Name)
	}
	// Every member is written, a null one as i:nil, as DataContractSerializer does.
	if got := root.childNames(); !slices.Equal(got, []string{"PageSize", "ResponseStatus", "Results"}) {
		t.Errorf("root members %v", got)
	}
	if rs := root.child("ResponseStatus"); !isNil(rs) || len(rs.Children) != 0 || rs.Text != "" {
		t.Errorf("null ResponseStatus: %+v", rs)
	}
	results := root.child("Results")
	if got := results.childNames(); !slices.Equal(got, []string{"sampleUsage", "sampleUsage"}) {
		t.Errorf("items %v", got)
	}
	first := results.Children[0]
	want := []string{"Contact", "CreatedOn", "IsAlias", "MessageCount", "Name", "ResponseStatus", "ServiceGuid", "TrialEndDate"}
	if got := first.childNames(); !slices.Equal(got, want) {
		t.Errorf("members %v, want alphabetical %v", got, want)
	}
	if got := first.child("Contact").childNames(); !slices.Equal(got, []string{"Email", "Name", "PhoneNumber"}) {
		t.Errorf("nested members %v", got)
	}
	for name, c := range map[string]*xmlElement{"TrialEndDate": first.child("TrialEndDate"),
		"Contact.PhoneNumber": first.child("Contact").child("PhoneNumber"), "second Contact": results.Children[1].child("Contact")} {
		if !isNil(c) {
			t.Errorf("%s: want i:nil, got %+v", name, c)
		}
	}
	for _, name := range []string{"Name", "Contact", "CreatedOn"} {
		if isNil(first.child(name)) {
			t.Errorf("%s is i:nil", name)
		}
	}
	if !strings.Contains(body, `<TrialEndDate i:nil="true"/>`) {
		t.Errorf("i:nil not written as DataContractSerializer does: %s", body)
	}
	if got := first.child("Name").Text; got != "<a & b>" {
		t.Errorf("escaped text reads back as %q", got)
	}
	// A Guid is dashed, as .NET writes it; JSON and CSV keep ServiceStack's 32 digits.
	if got := first.child("ServiceGuid").Text; got != "01234567-89ab-cdef-0123-456789abcdef" {
		t.Errorf("Guid %q", got)
	}
	if got := first.child("CreatedOn").Text; got != "2026-03-04T05:06:07Z" {
		t.Errorf("Time %q", got)
	}

	// A bare list is an ArrayOf its items; a nil item is i:nil.
	w = serve("/x.xml", "", func(w http.ResponseWriter, r *http.Request) {
		Respond(w, r, "GetCollections", http.StatusOK, []*sampleContact{{Name: "a"}, nil})
	})
	root = decodeXML(t, w.Body.String())
	if root.Name.Local != "ArrayOfsampleContact" || !slices.Equal(root.childNames(), []string{"sampleContact", "sampleContact"}) {
		t.Errorf("bare list: %s", w.Body)
	}
	if !strings.Contains(w.Body.String(), `<sampleContact i:nil="true"/>`) {
		t.Errorf("nil item: %s", w.Body)
	}
}

// isNil reports whether e is an element with i:nil="true".
func isNil(e *xmlElement) bool {
	if e == nil {
		return false
	}
	for _, a := range e.Attr {
		if a.Name.Space == xmlnsInstance && a.Name.Local == "nil" && a.Value == "true" {
			return true
		}
	}
	return false
}

func TestXMLError(t *testing.T) {
	w := serve("/x?format=xml", "", func(w http.ResponseWriter, r *http.Request) {
		RespondError(w, r, "GetServiceUsage", BindError("GetServiceUsage", "ServiceGuid", "<abc>"), nil)
	})
	if w.Code != http.StatusBadRequest {
		t.Errorf("status %d", w.Code)
	}
	root := decodeXML(t, w.Body.String())
	rs := root.child("ResponseStatus")
	if root.Name.Local != "GetServiceUsageResponse" || rs == nil {
		t.Fatalf("shape: %s", w.Body)
	}
	// ServiceStack's ResponseStatus keeps its declared member order.
	if got := rs.childNames(); !slices.Equal(got, []string{"ErrorCode", "Message", "Errors"}) {
		t.Errorf("ResponseStatus members %v", got)
	}
	item := rs.child("Errors").child("ResponseError")
	if item == nil || !slices.Equal(item.childNames(), []string{"ErrorCode", "FieldName", "Message"}) {
		t.Fatalf("errors: %s", w.Body)
	}
	if got := item.child("Message").Text; got != "'<abc>' is an Invalid value for 'ServiceGuid'" {
		t.Errorf("message %q", got)
	}

	// Without field errors, Errors is there and empty: not left out, not nil.
	w = serve("/x?format=xml", "", func(w http.ResponseWriter, r *http.Request) {
		RespondError(w, r, "GetServiceUsage", usage.Errorf(usage.KindNotFound, "ServiceGuid", "Service x not found"), nil)
	})
	rs = decodeXML(t, w.Body.String()).child("ResponseStatus")
	if errs := rs.child("Errors"); errs == nil || isNil(errs) || len(errs.Children) != 0 {
		t.Errorf("empty errors: %s", w.Body)
	}
	if !strings.Contains(w.Body.String(), "<Errors></Errors>") {
		t.Errorf("empty errors: %s", w.Body)
	}
}

func TestGuid(t *testing.T) {
	const canonical = "0123456789abcdef0123456789abcdef"
	ok := func(in string) {
		t.Helper()
		var g Guid
		if err := g.UnmarshalText([]byte(in)); err != nil || g.String() != canonical {
			t.Errorf("UnmarshalText(%q) = %s, %v; want %s", in, g, err, canonical)
		}
		if err := json.Unmarshal([]byte(`"`+in+`"`), &g); err != nil || g != Guid(sampleGUID) {
			t.Errorf("json %q: %s, %v", in, g, err)
		}
	}
	ok(canonical)
	ok("0123456789ABCDEF0123456789ABCDEF")
	ok("01234567-89ab-cdef-0123-456789abcdef")
	ok("01234567-89AB-CDEF-0123-456789ABCDEF")
	ok("{01234567-89ab-cdef-0123-456789abcdef}")
	ok("(01234567-89ab-cdef-0123-456789abcdef)")
	ok("{0123456789abcdef0123456789abcdef}")

	bad := func(in string) {
		t.Helper()
		var g Guid
		if err := g.UnmarshalText([]byte(in)); err == nil {
			t.Errorf("UnmarshalText(%q) = %s, want an error", in, g)
		}
	}
	bad("abc")
	bad("0123456789abcdef0123456789abcde")
	bad("0123456789abcdef0123456789abcdefa")
	bad("0123456789abcdef0123456789abcdeg")
	bad("01234567-89ab-cdef-0123_456789abcdef")
	bad("{01234567-89ab-cdef-0123-456789abcdef")
	bad(" 0123456789abcdef0123456789abcdef")

	var g Guid
	if err := g.UnmarshalText(nil); err != nil || !g.IsZero() {
		t.Errorf("empty: %s %v", g, err)
	}
	b, _ := json.Marshal(struct {
		A Guid `json:"a"`
		B Guid `json:"b,omitzero"`
	}{A: Guid(sampleGUID)})
	if string(b) != `{"a":"`+canonical+`"}` {
		t.Errorf("marshal: %s", b)
	}
}

func TestTime(t *testing.T) {
	f := func(in time.Time, want string) {
		t.Helper()
		if got := Time(in).String(); got != want {
			t.Errorf("Time(%v) = %s, want %s", in, got, want)
		}
		b, _ := json.Marshal(Time(in))
		if string(b) != `"`+want+`"` {
			t.Errorf("json %s", b)
		}
		var back Time
		if err := back.UnmarshalText([]byte(want)); err != nil || !time.Time(back).Equal(in.Truncate(100)) {
			t.Errorf("%s reads back as %v, %v", want, time.Time(back), err)
		}
	}
	f(time.Time{}, "0001-01-01T00:00:00Z")
	f(sampleTime, "2026-03-04T05:06:07Z")
	f(sampleTime.Add(123*time.Millisecond), "2026-03-04T05:06:07.123Z")
	f(sampleTime.Add(100*time.Millisecond), "2026-03-04T05:06:07.1Z")
	f(sampleTime.Add(1234567*time.Nanosecond), "2026-03-04T05:06:07.0012345Z") // .NET's 100 ns tick
	f(time.Date(2026, 3, 4, 7, 6, 7, 0, time.FixedZone("", 2*3600)), "2026-03-04T05:06:07Z")

	b, _ := json.Marshal(struct {
		T Time `json:"t,omitzero"`
	}{})
	if string(b) != `{}` {
		t.Errorf("omitzero: %s", b)
	}
}

func TestParseDate(t *testing.T) {
	ok := func(in string, want time.Time) {
		t.Helper()
		got, err := ParseDate(in)
		if err != nil || !got.Equal(want) || got.Location() != time.UTC {
			t.Errorf("ParseDate(%q) = %v, %v; want %v UTC", in, got, err, want)
		}
	}
	d := func(y int, m time.Month, day, h, min, s, ns int) time.Time {
		return time.Date(y, m, day, h, min, s, ns, time.UTC)
	}
	ok("2026-03-04", d(2026, 3, 4, 0, 0, 0, 0))
	ok("2024-02-29", d(2024, 2, 29, 0, 0, 0, 0))
	ok("2026-03-04T05:06:07Z", d(2026, 3, 4, 5, 6, 7, 0))
	ok("2026-03-04T05:06:07z", d(2026, 3, 4, 5, 6, 7, 0))
	ok("2026-03-04t05:06:07", d(2026, 3, 4, 5, 6, 7, 0))
	ok("2026-03-04T05:06:07", d(2026, 3, 4, 5, 6, 7, 0))
	ok("2026-03-04T05:06", d(2026, 3, 4, 5, 6, 0, 0))
	ok("2026-03-04T05:06Z", d(2026, 3, 4, 5, 6, 0, 0))
	ok("2026-03-04 05:06:07", d(2026, 3, 4, 5, 6, 7, 0))
	ok("2026-03-04T05:06:07.5Z", d(2026, 3, 4, 5, 6, 7, 5e8))
	ok("2026-03-04T05:06:07,25", d(2026, 3, 4, 5, 6, 7, 25e7))
	ok("2026-03-04T05:06:07.123456789Z", d(2026, 3, 4, 5, 6, 7, 123456789))
	ok("2026-03-04T05:06:07+02:00", d(2026, 3, 4, 3, 6, 7, 0))
	ok("2026-03-04T05:06:07-0530", d(2026, 3, 4, 10, 36, 7, 0))
	ok("2026-03-04T05:06+01", d(2026, 3, 4, 4, 6, 0, 0))
	ok("2026-03-04T00:30:00+01:00", d(2026, 3, 3, 23, 30, 0, 0))
	ok("2026-03-04T05:06:07.123-01:00", d(2026, 3, 4, 6, 6, 7, 123e6))
	ok("/Date(0)/", d(1970, 1, 1, 0, 0, 0, 0))
	ok("/Date(1772600767000)/", d(2026, 3, 4, 5, 6, 7, 0))
	ok("/Date(1772600767123+0100)/", d(2026, 3, 4, 5, 6, 7, 123e6))
	ok("/Date(1772600767000-0500)/", d(2026, 3, 4, 5, 6, 7, 0))
	ok("/Date(-86400000)/", d(1969, 12, 31, 0, 0, 0, 0))
	ok("/Date(-1-0100)/", d(1969, 12, 31, 23, 59, 59, 999e6))
	ok("0001-01-01T00:00:00Z", time.Time{})
	ok("9999-12-31T23:59:59.9999999Z", d(9999, 12, 31, 23, 59, 59, 999999900))

	bad := func(in string) {
		t.Helper()
		if got, err := ParseDate(in); err == nil {
			t.Errorf("ParseDate(%q) = %v, want an error", in, got)
		}
	}
	bad("")
	bad("yesterday")
	bad("2026-3-4")
	bad("2026/03/04")
	bad("2026-02-30")
	bad("2026-13-01")
	bad("2026-00-10")
	bad("2026-03-04T")
	bad("2026-03-04T5:06")
	bad("2026-03-04T24:00:00")
	bad("2026-03-04T05:60")
	bad("2026-03-04T05:06:61")
	bad("2026-03-04T05:06:07.")
	bad("2026-03-04T05:06:07.1234567891Z")
	bad("2026-03-04T05:06:07+2:00")
	bad("2026-03-04T05:06:07+24:00")
	bad("2026-03-04T05:06:07-24:00")
	bad("2026-03-04T05:06:07+23:60")
	bad("2026-03-04T05:06:07+0060")
	bad("/Date(0+2400)/")
	bad("/Date(0-0060)/")
	bad("2026-03-04T05:06:07 Z")
	bad("2026-03-04Z")
	bad("+2026-03-04")
	bad("0000-12-31")
	bad("0001-01-01T00:00:00+01:00") // before year 1 in UTC
	bad("/Date()/")
	bad("/Date(abc)/")
	bad("/Date(12+1)/")
	bad("/Date(+12)/")
	bad("/Date(1e3)/")
	bad("/Date(99999999999999999999)/")
	bad("/Date(253402300800000)/") // year 10000
	bad("Date(0)")
}

func BenchmarkRespond(b *testing.B) {
	for _, n := range []int{1, 100, 1000} {
		page := samplePage{PageSize: n}
		for i := range n {
			u := sample(fmt.Sprintf("service %d, \"quoted\"", i))
			u.Contact = sampleContact{Name: "Ann", Email: "a@b.c"}
			page.Results = append(page.Results, u)
		}
		for _, accept := range []string{"application/json", "text/csv", "application/xml"} {
			b.Run(fmt.Sprintf("%s/%d", accept[strings.IndexByte(accept, '/')+1:], n), func(b *testing.B) {
				r := httptest.NewRequest(http.MethodGet, "/x", nil)
				r.Header.Set("Accept", accept)
				b.ReportAllocs()
				for b.Loop() {
					w := httptest.NewRecorder()
					Respond(w, r, "GetServicesUsage", http.StatusOK, &page)
					b.SetBytes(int64(w.Body.Len()))
				}
			})
		}
	}
}

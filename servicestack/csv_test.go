package servicestack

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
)

func TestDefuseFormula(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		if got := defuseFormula(in); got != want {
			t.Errorf("defuseFormula(%q) = %q, want %q", in, got, want)
		}
	}
	// What a spreadsheet would run gets a leading '.
	f("=1+2", "'=1+2")
	f(`=HYPERLINK("http://x.example","click")`, `'=HYPERLINK("http://x.example","click")`)
	f("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0")
	f("-1+cmd|' /C calc'!A0", "'-1+cmd|' /C calc'!A0")
	f("@SUM(A1:A2)", "'@SUM(A1:A2)")
	f("\t=1", "'\t=1")
	f("\r=1", "'\r=1")
	f("\tplain", "'\tplain")
	f("  =1", "'  =1")
	f(" \t-x", "' \t-x")
	f("+5", "'+5")
	f("-", "'-")
	f("-1.", "'-1.")
	f("--1", "'--1")
	// A plain number is a number, whatever its sign or leading spaces.
	f("-12", "-12")
	f("-0.5", "-0.5")
	f("  -3", "  -3")
	// Everything else is as it was.
	f("", "")
	f("   ", "   ")
	f("plain", "plain")
	f("a=b", "a=b")
	f("Lee, Jr.", "Lee, Jr.")
	f("'=quoted", "'=quoted")
	f("\n=1", "\n=1")
	f("日本", "日本")
}

// A text cell is defused in every place CSV writes one — a record's field,
// a list of plain values, an error row — while numbers, negative ones
// included, and every other cell stay byte for byte as they were.
func TestCSVDefusesText(t *testing.T) {
	type row struct {
		Name    string   `json:"name"`
		Code    string   `json:"code,omitzero"`
		Balance int64    `json:"balance"`
		Ratio   float64  `json:"ratio"`
		Tags    []string `json:"tags,omitzero"`
	}
	f := func(v any, want string) {
		t.Helper()
		w := serve("/x.csv", "", func(w http.ResponseWriter, r *http.Request) { Respond(w, r, "Op", http.StatusOK, v) })
		if got := w.Body.String(); got != want {
			t.Errorf("%T: got %q\nwant %q", v, got, want)
		}
	}
	f([]row{
		{Name: "=cmd|' /C calc'!A0", Code: "@x", Balance: -7, Ratio: -0.25},
		{Name: " +1", Code: "-5", Balance: 3, Tags: []string{"=a", "b"}},
		{Name: "Acme, Inc.", Balance: 0},
	}, "Name,Code,Balance,Ratio,Tags\r\n"+
		"'=cmd|' /C calc'!A0,'@x,-7,-0.25,\r\n"+
		"' +1,-5,3,0,\"[=a,b]\"\r\n"+
		"\"Acme, Inc.\",,0,0,\r\n")
	f([]string{"=1", "ok", "-2"}, "'=1\r\nok\r\n-2\r\n")
	f([]int{-1, 2}, "-1\r\n2\r\n")

	w := serve("/x?format=csv", "", func(w http.ResponseWriter, r *http.Request) {
		RespondError(w, r, "Op", ValidationError(FieldError{ErrorCode: "Predicate", FieldName: "Name", Message: "=bad"}), nil)
	})
	// The Errors cell is JSV, which starts with a bracket: no spreadsheet runs it.
	if got, want := w.Body.String(), "ErrorCode,Message,Errors\r\nPredicate,'=bad,\"[{ErrorCode:Predicate,FieldName:Name,Message:=bad}]\"\r\n"; got != want {
		t.Errorf("error row %q, want %q", got, want)
	}

	// The quoting rule still applies to the defused text.
	var b bytes.Buffer
	writeCSVRow(&b, []string{defuseFormula(`=A1,"x"`)})
	if got, want := b.String(), "\"'=A1,\"\"x\"\"\"\r\n"; got != want {
		t.Errorf("quoted %q, want %q", got, want)
	}
}

// FuzzDefuseFormula: the text is kept, at most behind one ', and what is
// not marked never starts, after spaces, with what a spreadsheet runs,
// unless it is a plain number.
func FuzzDefuseFormula(f *testing.F) {
	for _, s := range []string{"=1", " +x", "-1", "-1+1", "@a", "\tx", "\rx", "plain", "", " ", "-", "-.5", "日本"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := defuseFormula(s)
		if got != s && got != "'"+s {
			t.Fatalf("defuseFormula(%q) = %q", s, got)
		}
		if got == s {
			if rest := strings.TrimLeft(s, " "); rest != "" && strings.ContainsRune("=+-@\t\r", rune(rest[0])) && !isDecimal(rest) {
				t.Fatalf("defuseFormula(%q) left a formula", s)
			}
		}
	})
}

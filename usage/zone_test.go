package usage

import "testing"

func TestLoadLocationOnce(t *testing.T) {
	a, err := LoadLocation("Australia/Sydney")
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := LoadLocation("Australia/Sydney"); a != b {
		t.Error("Australia/Sydney loaded twice")
	}
	for _, bad := range []string{"Local", "Mars/Olympus", "../../etc/passwd"} {
		if _, err := LoadLocation(bad); err == nil {
			t.Errorf("%q loaded", bad)
		}
	}
}

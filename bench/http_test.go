package bench

import (
	"bufio"
	"strings"
	"testing"
)

func TestParseRSS(t *testing.T) {
	text := "# HELP process_resident_memory_bytes Resident memory size in bytes.\n# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes 8.2935808e+07\nprocess_start_time_seconds 1.7e+09\n"
	v, ok := ParseRSS(bufio.NewScanner(strings.NewReader(text)))
	if !ok || v != 82935808 {
		t.Fatalf("ParseRSS = %d, %v", v, ok)
	}
	if _, ok := ParseRSS(bufio.NewScanner(strings.NewReader("go_goroutines 7\n"))); ok {
		t.Fatal("ParseRSS found RSS where there is none")
	}
}

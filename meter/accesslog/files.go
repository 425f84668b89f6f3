package accesslog

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/usaged/usaged/usage"
)

// ErrSameFile is the error of Size for a file named twice, whose identical
// lines would be numbered as further occurrences and every line counted
// twice.
var ErrSameFile = errors.New("the same file")

// Size returns the total size of the log files, which must exist and be
// named once each (ErrSameFile).
func Size(files []string) (int64, error) {
	var total int64
	stats := make([]os.FileInfo, 0, len(files))
	for i, name := range files {
		st, err := os.Stat(name)
		if err != nil {
			return 0, err
		}
		for j, prev := range stats {
			if os.SameFile(prev, st) {
				return 0, fmt.Errorf("%s and %s are %w: name each file once", files[j], files[i], ErrSameFile)
			}
		}
		stats = append(stats, st)
		total += st.Size()
	}
	return total, nil
}

// ReadFile reads the events of the log file name as ReadEvents does, and
// tells read, when set, of the bytes it reads. Its errors name the file.
func ReadFile(name string, f Format, ids *EventIDs, a *Attribution, batch int, read func(int), send func([]usage.Event) error, bad func(*ParseError)) (int, error) {
	file, err := os.Open(name)
	if err != nil {
		return 0, err
	}
	defer file.Close()
	var sendErr error
	sendFile := func(evs []usage.Event) error {
		if err := send(evs); err != nil {
			sendErr = fmt.Errorf("sending events of %s: %w", name, err)
			return sendErr
		}
		return nil
	}
	var r io.Reader = file
	if read != nil {
		r = countingReader{file, read}
	}
	n, err := ReadEvents(r, f, ids, a, batch, sendFile, bad)
	if err != nil && err != sendErr {
		return n, fmt.Errorf("%s: %w", name, err)
	}
	return n, err
}

// countingReader tells read of the bytes read.
type countingReader struct {
	r    io.Reader
	read func(int)
}

func (c countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.read(n)
	return n, err
}

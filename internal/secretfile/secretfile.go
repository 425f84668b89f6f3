// Package secretfile keeps secrets in files only their owner can read,
// written so that a crash never leaves a truncated one behind.
package secretfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// LoadOrCreate returns the contents of the secret file at path, creating it
// with mode 0600 from create if it does not exist yet. An empty file is an
// error: a secret that was lost must not silently become a new one.
func LoadOrCreate(path string, create func() ([]byte, error)) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		if len(b) == 0 {
			return nil, fmt.Errorf("%s is empty: delete it to have it generated again", path)
		}
		return b, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	b, err = create()
	if err != nil {
		return nil, err
	}
	if err := WriteAtomic(path, b); err != nil {
		return nil, err
	}
	return b, nil
}

// WriteAtomic writes a 0600 file through a temporary one, so that a crash
// never leaves a truncated secret behind.
func WriteAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

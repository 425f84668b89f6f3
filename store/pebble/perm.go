package pebble

import (
	"io"
	"os"
	"path/filepath"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// The store holds every organization's usage and the registry, client
// secrets' hashes included: only its owner may read it, whatever the umask.
const (
	fileMode os.FileMode = 0o600
	dirMode  os.FileMode = 0o700
)

// privateFS is the operating system's file system with the store's modes:
// Pebble creates files 0666 and directories as asked, less the umask. Each
// file is narrowed right after it is created, before anything is written to
// it, which costs one chmod per file (Pebble creates a few per memtable flush
// and compaction).
type privateFS struct{ vfs.FS }

func (fs privateFS) Unwrap() vfs.FS { return fs.FS }

func (fs privateFS) Create(name string, category vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.Create(name, category)
	return narrow(name, f, err)
}

func (fs privateFS) OpenReadWrite(name string, category vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	f, err := fs.FS.OpenReadWrite(name, category, opts...)
	return narrow(name, f, err)
}

func (fs privateFS) ReuseForWrite(oldname, newname string, category vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.ReuseForWrite(oldname, newname, category)
	return narrow(newname, f, err)
}

func (fs privateFS) Lock(name string) (io.Closer, error) {
	c, err := fs.FS.Lock(name)
	if err == nil {
		if err = os.Chmod(name, fileMode); err != nil {
			c.Close()
			return nil, err
		}
	}
	return c, err
}

func (fs privateFS) MkdirAll(dir string, _ os.FileMode) error {
	return fs.FS.MkdirAll(dir, dirMode)
}

func narrow(name string, f vfs.File, err error) (vfs.File, error) {
	if err != nil {
		return f, err
	}
	if err := os.Chmod(name, fileMode); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// tighten gives an existing store directory and its files the store's modes:
// stores created before they were enforced were readable by everyone.
func tighten(dir string) error {
	if err := os.Chmod(dir, dirMode); err != nil {
		return err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		info, err := e.Info()
		if err != nil {
			return err
		}
		if info.Mode().Perm()&^fileMode != 0 {
			if err := os.Chmod(filepath.Join(dir, e.Name()), info.Mode().Perm()&fileMode); err != nil {
				return err
			}
		}
	}
	return nil
}

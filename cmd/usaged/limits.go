package main

import (
	"fmt"
	"strings"

	"github.com/usaged/usaged/server"
)

// memoryLimit is the --memory-limit flag: "auto", "off" (or 0), or a size.
type memoryLimit struct {
	auto  bool
	bytes int64 // when not auto; 0 means no limit
}

func (m *memoryLimit) String() string {
	switch {
	case m == nil || m.auto:
		return "auto"
	case m.bytes == 0:
		return "off"
	}
	b := byteSize(m.bytes)
	return b.String()
}

func (m *memoryLimit) Set(s string) error {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "auto":
		*m = memoryLimit{auto: true}
		return nil
	case "off", "0":
		*m = memoryLimit{}
		return nil
	}
	var b byteSize
	if err := b.Set(s); err != nil {
		return fmt.Errorf("%q is not a memory limit: want auto, off, or a size such as 4GiB", s)
	}
	*m = memoryLimit{bytes: int64(b)}
	return nil
}

// limit is the server's memory limit for the flag's value.
func (m memoryLimit) limit() *server.MemoryLimit {
	return &server.MemoryLimit{Auto: m.auto, Bytes: m.bytes}
}

package main

import (
	"fmt"
	"strings"
)

// reserveSize is the --disk-reserve flag: a size as byteSize takes it, or 0
// for no reserve.
type reserveSize byteSize

func (r *reserveSize) String() string { return (*byteSize)(r).String() }

func (r *reserveSize) Set(s string) error {
	if strings.TrimSpace(s) == "0" {
		*r = 0
		return nil
	}
	if err := (*byteSize)(r).Set(s); err != nil {
		return fmt.Errorf("%q is not a size: want e.g. 256MiB, 1GiB, or 0 for no reserve", s)
	}
	return nil
}

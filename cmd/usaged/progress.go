package main

import (
	"github.com/usaged/usaged/demo"
	"github.com/usaged/usaged/internal/termout"
)

// What the commands show a person, from packages termout and demo.
type progress = termout.Progress

var (
	startProgress = termout.StartProgress
	group         = termout.Group
	plural        = termout.Plural
	writeJSON     = termout.WriteJSON

	// printServiceDemo shows how to read a service-usage demo with its key.
	printServiceDemo = demo.PrintServices
)

package main

import "github.com/usaged/usaged/internal/termout"

// What the commands show a person, from package termout.
type progress = termout.Progress

var (
	startProgress = termout.StartProgress
	group         = termout.Group
	plural        = termout.Plural
	writeJSON     = termout.WriteJSON
)

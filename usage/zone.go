package usage

import (
	"sync"
	"time"
)

// zones are the time zones loaded so far, by name. A zone never changes
// while the process runs, and there are a few hundred of them, so each is
// loaded once: time.LoadLocation reads and parses the zone's file on every
// call, and every limit or query holding its own copy of, say,
// America/New_York would keep tens of kilobytes each.
var zones sync.Map // string → *time.Location

// LoadLocation is time.LoadLocation, each zone loaded once. "Local", the
// server's own zone, is an error: a client cannot know it.
func LoadLocation(name string) (*time.Location, error) {
	if loc, ok := zones.Load(name); ok {
		return loc.(*time.Location), nil
	}
	if name == "Local" {
		return nil, Errorf(KindInvalid, "", "Local is not an IANA time zone")
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, err
	}
	zones.Store(name, loc)
	return loc, nil
}

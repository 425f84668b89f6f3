package store

import (
	"encoding/base64"
	"strconv"
	"strings"
	"time"

	"github.com/usaged/usaged/usage"
)

// CompareDeliveries orders deliveries newest first, as Webhooks.Deliveries
// lists them: by Time, then ID, both descending.
func CompareDeliveries(a, b *usage.Delivery) int {
	if c := b.Time.Compare(a.Time); c != 0 {
		return c
	}
	return strings.Compare(b.ID, a.ID)
}

// DeliveryCursor is the cursor of the page after d, for backends that page
// deliveries by their (Time, ID) order.
func DeliveryCursor(d *usage.Delivery) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(d.Time.UnixNano(), 10) + "." + d.ID))
}

// ParseDeliveryCursor returns the delivery a DeliveryCursor was made of,
// with just its Time and ID, or a usage.KindInvalid error on field "after".
func ParseDeliveryCursor(cursor string) (usage.Delivery, error) {
	bad := usage.Errorf(usage.KindInvalid, "after", "after %q is not a cursor of this listing: pass the one the previous page returned", cursor)
	b, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil {
		return usage.Delivery{}, bad
	}
	ns, id, ok := strings.Cut(string(b), ".")
	n, err := strconv.ParseInt(ns, 10, 64)
	if !ok || err != nil || id == "" {
		return usage.Delivery{}, bad
	}
	return usage.Delivery{ID: id, Time: time.Unix(0, n).UTC()}, nil
}

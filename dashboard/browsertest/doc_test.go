// Package browsertest drives the usaged dashboard in a headless Chromium
// (chromedp) against a usaged binary built from this repository. It is a
// module of its own, so that the browser driver is no dependency of usaged.
// Without a Chromium the tests skip, unless USAGED_REQUIRE_BROWSER is set
// (CI sets it), when they fail:
//
//	cd dashboard/browsertest && USAGED_REQUIRE_BROWSER=1 go test ./...
package browsertest

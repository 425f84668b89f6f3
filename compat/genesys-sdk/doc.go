// Package genesyssdk holds no code of its own: its tests drive a real
// `usaged serve` process with the official Genesys Cloud Go SDK
// (github.com/mypurecloud/platform-client-sdk-go) and check every answer
// against counts the tests keep themselves.
//
// It is a separate module so that usaged never depends on the SDK, whose one
// package takes minutes and gigabytes of memory to compile. The tests treat
// usaged as a black box: they build the binary from the repository root, talk
// to it over HTTP only, and import none of its packages.
package genesyssdk

// Package ccc is the service-usage HTTP face of usaged: the routes of the
// CCC API under /api (services, their usage reports, collections, partners
// and resellers), reproduced with the conventions of ServiceStack, the
// framework the original is built on.
//
// The conventions themselves (negotiation, suffix routing, binding, the
// CSV and XML writers, ResponseStatus errors) are package servicestack's;
// this package holds the routes, the request binding of each operation and
// the response DTOs.
package ccc

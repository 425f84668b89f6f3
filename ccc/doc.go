// Package ccc is the service-usage HTTP face of usaged: the routes of the
// CCC API under /api (services, their usage reports, collections, partners
// and resellers), reproduced with the conventions of ServiceStack, the
// framework the original is built on.
//
// Every operation answers in the format the request negotiates (JSONP,
// ?format=, a .json/.csv/.xml route suffix, then Accept; JSON by default),
// binds its path and query parameters case-insensitively, and reports a
// failure as its response DTO holding only a ServiceStack ResponseStatus.
// Error kinds map to HTTP statuses through one table, kindResponse.
package ccc

// Package servicestack reproduces the wire conventions of ServiceStack, the
// .NET framework behind the service-usage API that usaged serves, so that a
// face written with it answers as the original does.
//
// A request is answered in the format it negotiates (Respond): JSONP with
// ?callback=, ?format=json|csv|xml, a .json/.csv/.xml route suffix that
// WithSuffixes takes off the path, then Accept; JSON by default. Response
// DTOs are plain structs with json tags: CSV and XML write the fields JSON
// does, under their PascalCase names, with Guid and Time as .NET writes
// them. Path and query parameters bind case-insensitively (Bind, Params),
// JSON bodies too (DecodeJSON).
//
// A failure is answered as the operation's response DTO holding only a
// ResponseStatus (RespondError): BindError and ValidationError word binding
// and validation failures as ServiceStack and FluentValidation do, NewError
// any other, and an error of a usage kind maps to its HTTP status through
// one table, kindResponse.
package servicestack

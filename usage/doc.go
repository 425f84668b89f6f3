// Package usage is the domain of usaged: API request events, the counts kept
// for them, the queries asked of those counts, and the organizations and OAuth
// clients that own them. It depends on the standard library only; HTTP faces,
// stores and the ingest pipeline all speak in these types.
package usage

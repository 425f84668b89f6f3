// Package wire holds the JSON bodies of usaged's Genesys-compatible HTTP
// API: the server in package genesys writes and reads them, and package
// client sends and decodes them, so that each shape is written once. It
// imports only the standard library, so that a client does not pull in the
// server.
//
// Field order and tags are the wire format: changing one changes what
// every client sees.
package wire

import (
	"encoding/json"
	"time"
)

// Entities is the Genesys list envelope.
type Entities[T any] struct {
	Entities []T `json:"entities"`
}

// Organization is an organization of usaged's admin API.
type Organization struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	DateCreated string `json:"dateCreated"`
}

// CreateOrganizationRequest is the body of POST /api/v2/admin/organizations.
type CreateOrganizationRequest struct {
	Name string `json:"name"`
}

// Client is an OAuth client of usaged's admin API. Secret is set only in
// the answer that creates the client.
type Client struct {
	ID                         string   `json:"id"`
	Name                       string   `json:"name"`
	Description                string   `json:"description"`
	Secret                     string   `json:"secret,omitempty"` // only when just created
	Permissions                []string `json:"permissions"`
	AccessTokenValiditySeconds int64    `json:"accessTokenValiditySeconds"`
	OrganizationID             string   `json:"organizationId"`
	DateCreated                string   `json:"dateCreated"`
}

// CreateClientRequest is the body of POST
// /api/v2/admin/organizations/{orgId}/clients.
type CreateClientRequest struct {
	Name                       string   `json:"name"`
	Description                string   `json:"description"`
	Permissions                []string `json:"permissions"`
	AccessTokenValiditySeconds int64    `json:"accessTokenValiditySeconds"` // 0 or absent: the default
}

// TokenResponse is the RFC 6749 access token response of POST /oauth/token.
type TokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
}

// NamedEntity is Genesys' NamedEntity. Unlike most Genesys references it
// has no selfUri.
type NamedEntity struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// TokenOAuthClient is Genesys' OrgOAuthClient, as far as it applies to
// usaged's clients: no roles, scopes or audit users.
type TokenOAuthClient struct {
	ID                  string       `json:"id"`
	Name                string       `json:"name"`
	DateCreated         string       `json:"dateCreated"`
	AuthorizedGrantType string       `json:"authorizedGrantType"`
	State               string       `json:"state"`
	Organization        *NamedEntity `json:"organization"`
}

// TokenInfo is Genesys' TokenInfo, the answer of GET /api/v2/tokens/me.
// usaged has no trustee organizations, so Organization and
// HomeOrganization are always the same. The admin token belongs to no
// organization and no client: it answers with neither, and with every
// permission as its scope.
type TokenInfo struct {
	Organization     *NamedEntity      `json:"organization,omitempty"`
	HomeOrganization *NamedEntity      `json:"homeOrganization,omitempty"`
	AuthorizedScope  []string          `json:"authorizedScope"`
	OAuthClient      *TokenOAuthClient `json:"OAuthClient,omitempty"`
}

// UsageQueryRequest is ApiUsageOrganizationQuery and ApiUsageClientQuery,
// the body of POST /api/v2/usage/query and of POST
// /api/v2/oauth/clients/{clientId}/usage/query. A nil field is absent.
type UsageQueryRequest struct {
	Interval    *string  `json:"interval"`
	Granularity *string  `json:"granularity"`
	Metrics     []string `json:"metrics"`
	GroupBy     []string `json:"groupBy"`
}

// ExecutionResult is UsageExecutionResult: the answer that starts a query.
type ExecutionResult struct {
	ExecutionID string `json:"executionId"`
	ResultsURI  string `json:"resultsUri"`
}

// UsageRow is ApiUsageRow: dimensions not grouped by are empty strings,
// every count is present and metrics not asked for are zero.
type UsageRow struct {
	ClientID       string `json:"clientId"`
	ClientName     string `json:"clientName"`
	OrganizationID string `json:"organizationId"`
	UserID         string `json:"userId"`
	TemplateURI    string `json:"templateUri"`
	HTTPMethod     string `json:"httpMethod"`
	Status200      int64  `json:"status200"`
	Status300      int64  `json:"status300"`
	Status400      int64  `json:"status400"`
	Status500      int64  `json:"status500"`
	Status429      int64  `json:"status429"`
	Requests       int64  `json:"requests"`
	Date           string `json:"date,omitempty"` // only with a granularity
}

// Query statuses of QueryResult.
const (
	QueryRunning  = "Running"
	QueryComplete = "Complete"
	QueryFailed   = "Failed"
)

// QueryResult is ApiUsageQueryResult. ErrorBody is usaged's addition: why
// a Failed execution failed. Results is absent while Running, as in
// Genesys, and present once Complete, as [] when there are no rows: the
// SDKs type it as an array.
type QueryResult struct {
	Results     []UsageRow `json:"results,omitzero"`
	QueryStatus string     `json:"queryStatus"`
	Cursors     *Cursors   `json:"cursors,omitempty"`
	ErrorBody   *ErrorBody `json:"errorBody,omitempty"`
}

// Cursors are the paging cursors of a QueryResult.
type Cursors struct {
	Before string `json:"before,omitempty"`
	After  string `json:"after,omitempty"`
}

// AggregateFilter narrows an AggregateRequest; empty lists do not filter.
type AggregateFilter struct {
	ClientIDs    []string `json:"clientIds"`
	ClientNames  []string `json:"clientNames"`
	UserIDs      []string `json:"userIds"`
	TemplateURIs []string `json:"templateUris"`
	HTTPMethods  []string `json:"httpMethods"`
	Platforms    []string `json:"platforms"`
}

// AggregateRequest is the body of POST /api/v2/usage/aggregate, usaged's
// synchronous query. OrganizationID is for the admin token; a client
// token queries its own organization.
type AggregateRequest struct {
	OrganizationID string           `json:"organizationId"`
	Interval       string           `json:"interval"`
	Granularity    string           `json:"granularity"`
	GroupBy        []string         `json:"groupBy"`
	Metrics        []string         `json:"metrics"`
	Filter         *AggregateFilter `json:"filter"`
	// FillEmpty asks for a row for every bucket of the interval, with zero
	// counts where there were no events: once per group of the answer, or
	// once in all without groupBy.
	FillEmpty bool `json:"fillEmpty"`
	// TimeZone is the IANA time zone (Europe/Berlin) whose days, weeks and
	// months the buckets are; the rows' dates carry its offset. Empty: UTC.
	TimeZone string `json:"timeZone"`
}

// AggregateRow is a Genesys ApiUsageRow with usaged's platform dimension
// and its latency and traffic measures. A measure is present exactly when
// the request's metrics name it, in every row: durations in ms (0 for a
// group without durations: events sent without one, or with 0 ms, are not
// counted), durationAvg with three decimals, bytes as exact sums.
type AggregateRow struct {
	UsageRow
	Platform      string       `json:"platform"`
	DurationP50   *int64       `json:"durationP50,omitempty"`
	DurationP90   *int64       `json:"durationP90,omitempty"`
	DurationP95   *int64       `json:"durationP95,omitempty"`
	DurationP99   *int64       `json:"durationP99,omitempty"`
	DurationMax   *int64       `json:"durationMax,omitempty"`
	DurationAvg   *json.Number `json:"durationAvg,omitempty"`
	RequestBytes  *int64       `json:"requestBytes,omitempty"`
	ResponseBytes *int64       `json:"responseBytes,omitempty"`
}

// AggregateResponse is the answer of POST /api/v2/usage/aggregate: the
// interval answered, widened to whole hours, and the rows.
type AggregateResponse struct {
	Interval string         `json:"interval"`
	Results  []AggregateRow `json:"results"`
}

// Event is an API request event with the field names of POST
// /api/v2/usage/events, as GET /api/v2/usage/events lists it: every field
// present, the time in UTC to the nanosecond.
type Event struct {
	ID             string    `json:"id"`
	Time           time.Time `json:"time"`
	OrganizationID string    `json:"organizationId"`
	ClientID       string    `json:"clientId"`
	ClientName     string    `json:"clientName"`
	UserID         string    `json:"userId"`
	TemplateURI    string    `json:"templateUri"`
	HTTPMethod     string    `json:"httpMethod"`
	Status         int       `json:"status"`
	Platform       string    `json:"platform"`
	DurationMs     int64     `json:"durationMs"`
	RequestBytes   int64     `json:"requestBytes"`
	ResponseBytes  int64     `json:"responseBytes"`
}

// EventPage is the answer of GET /api/v2/usage/events: a page of accepted
// events, the page size asked for and the cursor of the next page, absent
// on the last.
type EventPage struct {
	Entities []Event `json:"entities"`
	PageSize int     `json:"pageSize"`
	Cursor   string  `json:"cursor,omitempty"`
}

// ErrorDetail is one entry of ErrorBody.Details.
type ErrorDetail struct {
	ErrorCode string `json:"errorCode"`
	FieldName string `json:"fieldName,omitempty"`
}

// ErrorBody is the Genesys ErrorBody that every failed /api/v2 request
// answers.
type ErrorBody struct {
	Message           string            `json:"message"`
	Code              string            `json:"code"`
	Status            int               `json:"status"`
	MessageWithParams string            `json:"messageWithParams,omitempty"`
	MessageParams     map[string]string `json:"messageParams,omitempty"`
	ContextID         string            `json:"contextId"`
	Details           []ErrorDetail     `json:"details"`
	Errors            []ErrorBody       `json:"errors"`
}

// LimitWindow is the window of a usage limit: a calendar hour, day, ISO
// week or month ("hour", "day", "week", "month") in an IANA time zone,
// UTC when timeZone is empty, or "rolling": the last minutes whole
// minutes, which the embedded store and the cluster count.
type LimitWindow struct {
	Type     string `json:"type"`
	TimeZone string `json:"timeZone,omitempty"`
	Minutes  int    `json:"minutes,omitempty"`
}

// LimitFilter narrows what a usage limit counts; empty lists do not filter.
type LimitFilter struct {
	UserIDs      []string `json:"userIds,omitempty"`
	TemplateURIs []string `json:"templateUris,omitempty"`
	HTTPMethods  []string `json:"httpMethods,omitempty"`
}

// LimitRequest is the body of POST /api/v2/usage/limits and of PUT
// /api/v2/usage/limits/{limitId}, which replaces the whole limit. Version,
// on PUT, is the version the change was made from: another is a conflict.
type LimitRequest struct {
	Name       string       `json:"name"`
	Scope      string       `json:"scope"` // organization (when empty), client or eachClient
	ClientID   string       `json:"clientId,omitempty"`
	Filter     *LimitFilter `json:"filter,omitempty"`
	Metric     string       `json:"metric"`
	Window     *LimitWindow `json:"window"`
	Value      *float64     `json:"value"`
	Thresholds []int        `json:"thresholds"`
	Enforced   bool         `json:"enforced"`
	Version    *int64       `json:"version,omitempty"`
}

// Limit is a usage limit as the limits routes answer it. Status is present
// when asked for (expand=status).
type Limit struct {
	ID           string       `json:"id"`
	Name         string       `json:"name"`
	Scope        string       `json:"scope"`
	ClientID     string       `json:"clientId,omitempty"`
	Filter       LimitFilter  `json:"filter"`
	Metric       string       `json:"metric"`
	Window       LimitWindow  `json:"window"`
	Value        float64      `json:"value"`
	Thresholds   []int        `json:"thresholds"`
	Enforced     bool         `json:"enforced"`
	Version      int64        `json:"version"`
	DateCreated  string       `json:"dateCreated"`
	DateModified string       `json:"dateModified"`
	Status       *LimitStatus `json:"status,omitempty"`
	SelfURI      string       `json:"selfUri"`
}

// LimitEntityListing is the answer of GET /api/v2/usage/limits, a Genesys
// entity listing.
type LimitEntityListing struct {
	Entities    []Limit `json:"entities"`
	PageSize    int     `json:"pageSize"`
	PageNumber  int     `json:"pageNumber"`
	Total       int     `json:"total"`
	PageCount   int     `json:"pageCount"`
	FirstURI    string  `json:"firstUri"`
	SelfURI     string  `json:"selfUri"`
	LastURI     string  `json:"lastUri"`
	NextURI     string  `json:"nextUri,omitempty"`
	PreviousURI string  `json:"previousUri,omitempty"`
}

// LimitStatus is where a usage limit stands in its current window, counted
// exactly when the server answered (dateEvaluated). The window's bounds
// carry the limit zone's offset; the start is included, the end excluded.
// For a limit on each client, value and percentage are those of the client
// nearest the limit, and clients lists every client the window counted.
type LimitStatus struct {
	LimitID           string              `json:"limitId"`
	Metric            string              `json:"metric"`
	Value             float64             `json:"value"`
	Limit             float64             `json:"limit"`
	Percentage        float64             `json:"percentage"`
	ThresholdsReached []int               `json:"thresholdsReached"`
	WindowStart       string              `json:"windowStart"`
	WindowEnd         string              `json:"windowEnd"`
	DateEvaluated     string              `json:"dateEvaluated"`
	Clients           []ClientLimitStatus `json:"clients,omitempty"`
}

// ClientLimitStatus is one client's part of a LimitStatus.
type ClientLimitStatus struct {
	ClientID   string  `json:"clientId"`
	ClientName string  `json:"clientName"`
	Value      float64 `json:"value"`
	Percentage float64 `json:"percentage"`
}

// LimitStreamLimit is the data of a `limit` event of the limits stream
// (GET /api/v2/usage/limits/stream): an enforced limit, new or of a new
// version, as the limits routes answer it, with its organization.
type LimitStreamLimit struct {
	OrganizationID string `json:"organizationId"`
	Limit
}

// LimitStreamValue is the data of a `value` event of the limits stream:
// the value of an enforced limit's metric in its current window, for a
// limit on each client one client's.
type LimitStreamValue struct {
	OrganizationID string  `json:"organizationId"`
	LimitID        string  `json:"limitId"`
	Version        int64   `json:"version"`
	ClientID       string  `json:"clientId,omitempty"`
	WindowStart    string  `json:"windowStart"` // RFC 3339 in the limit's zone
	WindowEnd      string  `json:"windowEnd"`
	Value          float64 `json:"value"`
}

// LimitStreamRemoved is the data of a `removed` event of the limits
// stream: a limit deleted, or no longer enforced.
type LimitStreamRemoved struct {
	OrganizationID string `json:"organizationId"`
	LimitID        string `json:"limitId"`
}

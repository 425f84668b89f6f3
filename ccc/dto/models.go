package dto

// The wire models of the service-usage API, in its field order. Optional
// fields are omitted when zero (ServiceStack omits nulls); counts are
// always written.

// Contact is a service's contact person.
type Contact struct {
	Name        string `json:"name,omitzero"`
	Email       string `json:"email,omitzero"`
	PhoneNumber string `json:"phoneNumber,omitzero"`
}

// Company is a service's customer.
type Company struct {
	Name          string `json:"name,omitzero"`
	Address       string `json:"address,omitzero"`
	City          string `json:"city,omitzero"`
	StateProvince string `json:"stateProvince,omitzero"`
	PostalCode    string `json:"postalCode,omitzero"`
	Country       string `json:"country,omitzero"`
	Website       string `json:"website,omitzero"`
}

// ServiceHeader is the description of a service that every service and
// service-usage response starts with. Its dates and Guids are .NET value
// types, never null: unset, they are written as 0001-01-01T00:00:00Z and
// the zero Guid, as the vendor's samples show, and not left out. Its
// strings and records are nullable and are left out when empty.
type ServiceHeader struct {
	ServiceGuid    Guid    `json:"serviceGuid"`
	Name           string  `json:"name"`
	Status         string  `json:"status"`
	ServiceCode    string  `json:"serviceCode,omitzero"`
	ReferenceId    string  `json:"referenceId,omitzero"`
	PrimaryDomain  string  `json:"primaryDomain,omitzero"`
	CreatedOn      Time    `json:"createdOn"`
	TrialEndDate   Time    `json:"trialEndDate"`
	EffectiveDate  Time    `json:"effectiveDate"`
	InitialTerm    int     `json:"initialTerm"`
	CollectionGuid Guid    `json:"collectionGuid"`
	CollectionName string  `json:"collectionName,omitzero"`
	ClientGuid     Guid    `json:"clientGuid"`
	Contact        Contact `json:"contact,omitzero"`
	Company        Company `json:"company,omitzero"`
}

// Service is a service as GET /api/services answers it: the header and
// where it sits in the hierarchy.
type Service struct {
	ServiceHeader
	PartnerGuid  Guid `json:"partnerGuid"`
	ResellerGuid Guid `json:"resellerGuid"`
}

// ServiceUsage is the usage of one service in one period.
type ServiceUsage struct {
	ServiceHeader
	PeriodType string `json:"periodType"`
	Period     Time   `json:"period"`

	TotalUserCount        int64 `json:"totalUserCount"`
	ProUserCount          int64 `json:"proUserCount"`
	GuestUserCount        int64 `json:"guestUserCount"`
	DisabledUserCount     int64 `json:"disabledUserCount"`
	UnregisteredUserCount int64 `json:"unregisteredUserCount"`

	FeatureUsageSecureMessagingGateway int64 `json:"featureUsageSecureMessagingGateway"`
	FeatureUsageSecureMessagingPlus    int64 `json:"featureUsageSecureMessagingPlus"`
	FeatureUsageDataLeakPrevention     int64 `json:"featureUsageDataLeakPrevention"`
	FeatureUsageSecureLargeFiles       int64 `json:"featureUsageSecureLargeFiles"`
	FeatureUsageSecureForms            int64 `json:"featureUsageSecureForms"`

	TotalMessageCount      int64 `json:"totalMessageCount"`
	TotalAttachmentCount   int64 `json:"totalAttachmentCount"`
	AttachmentStorageUsage int64 `json:"attachmentStorageUsage"`
}

// Paged is the page envelope of list responses.
type Paged[T any] struct {
	PageSize    int `json:"pageSize"`
	TotalPages  int `json:"totalPages"`
	TotalItems  int `json:"totalItems"`
	CurrentPage int `json:"currentPage"`
	Results     []T `json:"results"`
}

// UserUsage is one user's usage record.
type UserUsage struct {
	UserGuid                 Guid   `json:"userGuid"`
	EmailAddress             string `json:"emailAddress,omitzero"`
	IsAlias                  bool   `json:"isAlias"`
	FirstName                string `json:"firstName,omitzero"`
	LastName                 string `json:"lastName,omitzero"`
	Status                   string `json:"status"`
	CreatedOn                Time   `json:"createdOn,omitzero"`
	RegisteredOn             Time   `json:"registeredOn,omitzero"`
	LastLogin                Time   `json:"lastLogin,omitzero"`
	GroupName                string `json:"groupName,omitzero"`
	GroupType                string `json:"groupType,omitzero"`
	GroupGuid                Guid   `json:"groupGuid,omitzero"`
	TotalMessagesSent        int64  `json:"totalMessagesSent"`
	TotalMessagesReceived    int64  `json:"totalMessagesReceived"`
	TotalAttachmentsCount    int64  `json:"totalAttachmentsCount"`
	TotalAttachmentsSize     int64  `json:"totalAttachmentsSize"`
	TotalInvitationsSent     int64  `json:"totalInvitationsSent"`
	TotalInvitationsAccepted int64  `json:"totalInvitationsAccepted"`
	LastToolbarVersion       string `json:"lastToolbarVersion,omitzero"`
	InvitedByEmailAddress    string `json:"invitedByEmailAddress,omitzero"`
	LastMsgSent              Time   `json:"lastMsgSent,omitzero"`
	LastMsgRetrieved         Time   `json:"lastMsgRetrieved,omitzero"`
	LastActivity             Time   `json:"lastActivity,omitzero"`
}

// ServiceUsersUsage is the per-user usage of a service: the period and a
// page of users.
type ServiceUsersUsage struct {
	ServiceGuid Guid   `json:"serviceGuid"`
	PeriodType  string `json:"periodType"`
	Period      Time   `json:"period"`
	Paged[UserUsage]
}

// ServiceUserUsage is one user's usage in a period.
type ServiceUserUsage struct {
	ServiceGuid Guid      `json:"serviceGuid"`
	PeriodType  string    `json:"periodType"`
	Period      Time      `json:"period"`
	Usage       UserUsage `json:"usage"`
}

// Reseller is a partner's reseller.
type Reseller struct {
	ResellerGuid Guid   `json:"resellerGuid"`
	PartnerGuid  Guid   `json:"partnerGuid"`
	Name         string `json:"name"`
	CreatedOn    Time   `json:"createdOn"`
}

// Partner is a partner (usaged's admin extension).
type Partner struct {
	PartnerGuid Guid   `json:"partnerGuid"`
	Name        string `json:"name"`
	CreatedOn   Time   `json:"createdOn"`
}

// Collection is a collection of services within a site.
type Collection struct {
	CollectionGuid Guid   `json:"collectionGuid"`
	Name           string `json:"name"`
	SiteGuid       Guid   `json:"siteGuid"`
	SiteName       string `json:"siteName,omitzero"`
	PartnerGuid    Guid   `json:"partnerGuid"`
	CreatedOn      Time   `json:"createdOn"`
}

// APIKey describes a key; Key is set only in the answer that creates it.
type APIKey struct {
	Id        string `json:"id"` // hex of the key's SHA-256 digest
	Key       string `json:"key,omitzero"`
	Name      string `json:"name"`
	Scope     string `json:"scope"`
	ScopeGuid Guid   `json:"scopeGuid"`
	CreatedOn Time   `json:"createdOn"`
}

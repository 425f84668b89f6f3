package dto

// The request bodies of the registry operations. GUIDs and dates are
// strings so that the server reports a bad one with its field.

// CreateServiceRequest is the body of POST /api/services.
type CreateServiceRequest struct {
	ServiceGuid    string  `json:"serviceGuid"`
	Name           string  `json:"name"`
	ResellerGuid   string  `json:"resellerGuid"`
	CollectionGuid string  `json:"collectionGuid"`
	Status         string  `json:"status"`
	ServiceCode    string  `json:"serviceCode"`
	ReferenceId    string  `json:"referenceId"`
	PrimaryDomain  string  `json:"primaryDomain"`
	TrialEndDate   string  `json:"trialEndDate"`
	EffectiveDate  string  `json:"effectiveDate"`
	InitialTerm    int     `json:"initialTerm"`
	ClientGuid     string  `json:"clientGuid"`
	Contact        Contact `json:"contact"`
	Company        Company `json:"company"`
}

// UpdateServiceStatusRequest is the body of PUT
// /api/services/{ServiceGuid}/status.
type UpdateServiceStatusRequest struct {
	Status string `json:"status"`
}

// CreateCollectionRequest is the body of POST /api/collections. The admin
// names the partner; a partner's key creates in its own.
type CreateCollectionRequest struct {
	Name        string `json:"name"`
	SiteGuid    string `json:"siteGuid"`
	SiteName    string `json:"siteName"`
	PartnerGuid string `json:"partnerGuid"`
}

// NameRequest is the body of POST /api/partners and of POST
// /api/partners/{PartnerGuid}/resellers.
type NameRequest struct {
	Name string `json:"name"`
}

// CreateAPIKeyRequest is the body of POST /api/apikeys: Scope is Partner,
// Reseller or Service, ScopeGuid the GUID of that entity.
type CreateAPIKeyRequest struct {
	Name      string `json:"name"`
	Scope     string `json:"scope"`
	ScopeGuid string `json:"scopeGuid"`
}

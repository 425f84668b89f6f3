package main

import (
	"context"

	"github.com/usaged/usaged/bench"
	"github.com/usaged/usaged/ccc/dto"
	"github.com/usaged/usaged/client"
	"github.com/usaged/usaged/demo"
	"github.com/usaged/usaged/genesys/wire"
	"github.com/usaged/usaged/internal/termout"
	"github.com/usaged/usaged/usage"
)

// The shapes the tests read the commands' JSON output and the API's
// answers into. The service-usage ones keep GUIDs as strings, as a script
// reading the output would.
type (
	orgBody          = wire.Organization
	clientBody       = wire.Client
	apiError         = client.Error
	benchReport      = bench.IngestReport
	benchQueryReport = bench.QueryReport

	partnerBody struct {
		PartnerGuid string `json:"partnerGuid"`
		Name        string `json:"name"`
		CreatedOn   string `json:"createdOn"`
	}
	resellerBody struct {
		ResellerGuid string `json:"resellerGuid"`
		PartnerGuid  string `json:"partnerGuid"`
		Name         string `json:"name"`
		CreatedOn    string `json:"createdOn"`
	}
	apiKeyBody struct {
		ID        string `json:"id"`
		Key       string `json:"key"`
		Name      string `json:"name"`
		Scope     string `json:"scope"`
		ScopeGuid string `json:"scopeGuid"`
		CreatedOn string `json:"createdOn"`
	}
	serviceBody struct {
		ServiceGuid  string `json:"serviceGuid"`
		Name         string `json:"name"`
		Status       string `json:"status"`
		ResellerGuid string `json:"resellerGuid"`
	}
)

const benchQueryViewer = bench.ViewerName

// createService creates a service named name with domain under the
// reseller with GUID reseller.
func createService(ctx context.Context, api *client.Client, s serviceBody, domain string) (serviceBody, error) {
	out, err := api.CreateService(ctx, dto.CreateServiceRequest{Name: s.Name, PrimaryDomain: domain, ResellerGuid: s.ResellerGuid})
	return serviceBody{ServiceGuid: out.ServiceGuid.String(), Name: out.Name, Status: out.Status, ResellerGuid: out.ResellerGuid.String()}, err
}

// listResellers lists the resellers of the partner with GUID partner.
func listResellers(ctx context.Context, api *client.Client, partner string) ([]resellerBody, error) {
	g, err := usage.ParseGUID(partner)
	if err != nil {
		return nil, err
	}
	xs, err := api.Resellers(ctx, g)
	out := make([]resellerBody, len(xs))
	for i, x := range xs {
		out[i] = resellerBody{ResellerGuid: x.ResellerGuid.String(), PartnerGuid: x.PartnerGuid.String(), Name: x.Name}
	}
	return out, err
}

var _ demo.Progress = (*termout.Progress)(nil)

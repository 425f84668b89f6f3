package openapi

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/usaged/usaged/ccc/dto"
	"github.com/usaged/usaged/dashboard"
	"github.com/usaged/usaged/genesys/wire"
	"github.com/usaged/usaged/ingest"
)

// jsonFields returns the JSON names of t's fields, embedded structs'
// fields included.
func jsonFields(t reflect.Type) []string {
	var names []string
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch {
		case name == "-":
		case f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct:
			names = append(names, jsonFields(f.Type)...)
		case f.Anonymous && name == "" && f.Type.Kind() == reflect.Pointer:
			names = append(names, jsonFields(f.Type.Elem())...)
		case name != "":
			names = append(names, name)
		case f.IsExported():
			names = append(names, f.Name)
		}
	}
	return names
}

// properties returns the property names of a schema, allOf parts included.
func properties(tb testing.TB, doc, schema map[string]any) []string {
	schema = resolve(tb, doc, schema)
	var names []string
	props, _ := schema["properties"].(map[string]any)
	for name := range props {
		names = append(names, name)
	}
	if all, ok := schema["allOf"].([]any); ok {
		for _, part := range all {
			names = append(names, properties(tb, doc, part.(map[string]any))...)
		}
	}
	return names
}

// TestSchemasMatchWireTypes checks that each body the document defines has
// exactly the fields of the Go type the server writes or reads it with.
func TestSchemasMatchWireTypes(t *testing.T) {
	doc := mustDocument(t)
	schemas := doc["components"].(map[string]any)["schemas"].(map[string]any)
	for name, v := range map[string]any{
		"Organization":              wire.Organization{},
		"CreateOrganizationRequest": wire.CreateOrganizationRequest{},
		"Client":                    wire.Client{},
		"CreateClientRequest":       wire.CreateClientRequest{},
		"TokenResponse":             wire.TokenResponse{},
		"NamedEntity":               wire.NamedEntity{},
		"TokenInfo":                 wire.TokenInfo{},
		"AggregateRequest":          wire.AggregateRequest{},
		"AggregateResponse":         wire.AggregateResponse{},
		"LimitRequest":              wire.LimitRequest{},
		"Limit":                     wire.Limit{},
		"LimitWindow":               wire.LimitWindow{},
		"LimitFilter":               wire.LimitFilter{},
		"LimitEntityListing":        wire.LimitEntityListing{},
		"LimitStatus":               wire.LimitStatus{},
		"ErrorBody":                 wire.ErrorBody{},
		"Event":                     wire.Event{},
		"EventPage":                 wire.EventPage{},
		"Webhook":                   wire.Webhook{},
		"WebhookEntities":           wire.WebhookEntities{},
		"WebhookRequest":            wire.WebhookRequest{},
		"WebhookDelivery":           wire.WebhookDelivery{},
		"WebhookDeliveryPage":       wire.WebhookDeliveryPage{},
		"IngestResult":              ingest.Result{},
		"UISession": struct {
			Demo bool `json:"demo"`
			*dashboard.Session
		}{},
		"Partner":                    dto.Partner{},
		"Reseller":                   dto.Reseller{},
		"Collection":                 dto.Collection{},
		"Contact":                    dto.Contact{},
		"Company":                    dto.Company{},
		"Service":                    dto.Service{},
		"ServiceUsage":               dto.ServiceUsage{},
		"PagedService":               dto.Paged[dto.Service]{},
		"UserUsage":                  dto.UserUsage{},
		"ServiceUsersUsage":          dto.ServiceUsersUsage{},
		"ServiceUserUsage":           dto.ServiceUserUsage{},
		"APIKey":                     dto.APIKey{},
		"NameRequest":                dto.NameRequest{},
		"CreateCollectionRequest":    dto.CreateCollectionRequest{},
		"CreateAPIKeyRequest":        dto.CreateAPIKeyRequest{},
		"UpdateServiceStatusRequest": dto.UpdateServiceStatusRequest{},
		"CreateServiceRequest":       dto.CreateServiceRequest{},
	} {
		s, ok := schemas[name].(map[string]any)
		if !ok {
			t.Errorf("no schema %s", name)
			continue
		}
		got, want := properties(t, doc, s), jsonFields(reflect.TypeOf(v))
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("schema %s has properties %v; the wire type has %v", name, got, want)
		}
	}
}

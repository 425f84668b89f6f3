package ccc

import (
	"time"

	"github.com/usaged/usaged/ccc/dto"
)

// The wire models live in package dto, which clients import without the
// server; these names keep the face's code as it reads.
type (
	Guid              = dto.Guid
	Time              = dto.Time
	Contact           = dto.Contact
	Company           = dto.Company
	ServiceHeader     = dto.ServiceHeader
	Service           = dto.Service
	ServiceUsage      = dto.ServiceUsage
	Paged[T any]      = dto.Paged[T]
	UserUsage         = dto.UserUsage
	ServiceUsersUsage = dto.ServiceUsersUsage
	ServiceUserUsage  = dto.ServiceUserUsage
	Reseller          = dto.Reseller
	Partner           = dto.Partner
	Collection        = dto.Collection
	APIKey            = dto.APIKey
)

// parseDate reads a date in any form ServiceStack accepts (dto.ParseDate).
func parseDate(s string) (time.Time, error) { return dto.ParseDate(s) }

package ccc

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/usaged/usaged/reports"
	"github.com/usaged/usaged/servicestack"
	"github.com/usaged/usaged/usage"
)

// Paging limits of the list operations.
const (
	defaultPageSize = 25
	maxPageSize     = 1000
)

// page binds Page and PageSize.
func page(p *servicestack.Params) (page, size int) {
	return p.Int("Page", 1, 1, 1<<30), p.Int("PageSize", defaultPageSize, 1, maxPageSize)
}

// period binds PeriodType (default Daily) and Period (default the day
// containing def; its time of day is ignored), and has the reports service
// check it.
func (s *Server) period(p *servicestack.Params, def time.Time) (usage.Period, error) {
	pt, ok := servicestack.OptEnum(p, "PeriodType", usage.ParsePeriodType, usage.Daily, usage.Monthly)
	if !ok {
		pt = usage.Daily
	}
	day, ok := p.Date("Period")
	if !ok {
		day = def
	}
	if err := p.Err(); err != nil {
		return usage.Period{}, err
	}
	per, err := s.rep.Period(pt, day)
	return per, reportError(err)
}

// reportError words an error of the reports service as ServiceStack would:
// fields past their bounds as FluentValidation's LessThanOrEqual rule, a
// service without reports as 409 ServiceStatusConflict. Others, nil
// included, are returned as they are.
func reportError(err error) error {
	if b, ok := errors.AsType[reports.Bounds](err); ok {
		errs := make([]servicestack.FieldError, len(b))
		for i := range b {
			errs[i] = servicestack.FieldError{ErrorCode: "LessThanOrEqual", FieldName: b[i].Field, Message: b[i].Message}
		}
		return servicestack.ValidationError(errs...)
	}
	if errors.Is(err, reports.ErrNotReportable) {
		ue, _ := errors.AsType[*usage.Error](err)
		return servicestack.NewError(http.StatusConflict, "ServiceStatusConflict", ue.Message)
	}
	return err
}

// usageOf answers the usage of svc in per.
func (s *Server) usageOf(r *http.Request, svc *usage.Service, per usage.Period) (ServiceUsage, error) {
	t, err := s.rep.Totals(r.Context(), svc, per)
	if err != nil {
		return ServiceUsage{}, reportError(err)
	}
	return serviceUsage(header(svc, s.collectionName(svc.CollectionGUID)), per, &t), nil
}

// getServiceUsage answers GET /api/services/{ServiceGuid}/serviceusage: the
// current UTC day so far, or (usaged's extension) the period asked for.
func (s *Server) getServiceUsage(r *http.Request, c *caller) (int, any, error) {
	p := servicestack.Bind(r, "GetServiceUsage")
	svc, err := s.service(p, c)
	if err != nil {
		return 0, nil, err
	}
	per, err := s.period(p, s.rep.Today())
	if err != nil {
		return 0, nil, err
	}
	u, err := s.usageOf(r, &svc, per)
	return 0, u, err
}

// servicesFilter is what GetServicesUsage selects.
type servicesFilter struct {
	partner, reseller, service usage.GUID
	after, before              time.Time
	hasAfter, hasBefore        bool
}

func (f *servicesFilter) keep(s *usage.Service) bool {
	switch {
	case !reports.Reportable(s):
		return false
	case !f.partner.IsZero() && s.PartnerGUID != f.partner,
		!f.reseller.IsZero() && s.ResellerGUID != f.reseller,
		!f.service.IsZero() && s.GUID != f.service:
		return false
	case f.hasAfter && s.CreatedOn.Before(f.after),
		f.hasBefore && s.CreatedOn.After(f.before):
		return false
	}
	return true
}

// getServicesUsage answers GET /api/services/usage: a page of the usage of
// every reportable service the caller sees, in creation order.
func (s *Server) getServicesUsage(r *http.Request, c *caller) (int, any, error) {
	p := servicestack.Bind(r, "GetServicesUsage")
	f := servicesFilter{partner: p.OptGUID("PartnerGuid"), reseller: p.OptGUID("ResellerGuid"), service: p.OptGUID("ServiceGuid")}
	f.after, f.hasAfter = p.Date("CreatedAfterDateTime")
	f.before, f.hasBefore = p.Date("CreatedBeforeDateTime")
	return s.servicesUsage(r, p, c, f)
}

// getResellerServiceUsage answers the deprecated
// GET /api/resellers/{ResellerGuid}/serviceusagelist.
func (s *Server) getResellerServiceUsage(r *http.Request, c *caller) (int, any, error) {
	p := servicestack.Bind(r, "GetResellerServiceUsage")
	f := servicesFilter{reseller: p.GUID("ResellerGuid")}
	if err := p.Err(); err != nil {
		return 0, nil, err
	}
	if _, err := s.as(c).Reseller(f.reseller); err != nil {
		return 0, nil, err
	}
	return s.servicesUsage(r, p, c, f)
}

func (s *Server) servicesUsage(r *http.Request, p *servicestack.Params, c *caller, f servicesFilter) (int, any, error) {
	pg, size := page(p)
	per, err := s.period(p, s.rep.Today())
	if err != nil {
		return 0, nil, err
	}
	// Select the page under the registry's lock, then read usage without it.
	var (
		total int
		lo    = (pg - 1) * size
		sel   []usage.Service
	)
	s.as(c).Services(func(svc *usage.Service) bool {
		if !f.keep(svc) {
			return true
		}
		if total >= lo && total < lo+size {
			sel = append(sel, *svc)
		}
		total++
		return true
	})
	out := Paged[ServiceUsage]{PageSize: size, TotalItems: total, CurrentPage: pg, TotalPages: (total + size - 1) / size, Results: make([]ServiceUsage, 0, len(sel))}
	for i := range sel {
		u, err := s.usageOf(r, &sel[i], per)
		if err != nil {
			return 0, nil, err
		}
		out.Results = append(out.Results, u)
	}
	return 0, out, nil
}

// usersFilter binds the user filters of GetServiceUsersUsage.
type usersFilter struct {
	status    usage.UserStatus
	groupType usage.UserGroupType
	group     usage.GUID
}

func (f *usersFilter) keep(u *usage.UserUsage) bool {
	return (f.status == 0 || u.Status == f.status) &&
		(f.groupType == 0 || u.GroupType == f.groupType) &&
		(f.group.IsZero() || u.GroupGUID == f.group)
}

// getServiceUsersUsage answers GET /api/services/{ServiceGuid}/users/usage.
func (s *Server) getServiceUsersUsage(r *http.Request, c *caller) (int, any, error) {
	p := servicestack.Bind(r, "GetServiceUsersUsage")
	svc, err := s.service(p, c)
	if err != nil {
		return 0, nil, err
	}
	pg, size := page(p)
	var f usersFilter
	f.status, _ = servicestack.OptEnum(p, "UserStatus", usage.ParseUserStatus, usage.UserActive, usage.UserDisabledStatus)
	f.groupType, _ = servicestack.OptEnum(p, "UserGroupType", usage.ParseUserGroupType, usage.GroupProfessional, usage.GroupGuest)
	f.group = p.OptGUID("UserGroupGuid")
	per, err := s.period(p, s.rep.Yesterday())
	if err != nil {
		return 0, nil, err
	}
	users, err := s.rep.Users(r.Context(), &svc, per, usage.GUID{})
	if err != nil {
		return 0, nil, reportError(err)
	}
	var kept []UserUsage
	for i := range users {
		if f.keep(&users[i]) {
			kept = append(kept, userUsage(&users[i]))
		}
	}
	return 0, ServiceUsersUsage{
		ServiceGuid: servicestack.Guid(svc.GUID), PeriodType: per.Type.String(), Period: servicestack.Time(per.Start),
		Paged: paged(kept, pg, size),
	}, nil
}

// getServiceUserUsage answers GET /api/services/{ServiceGuid}/users/{UserGuid}/usage.
func (s *Server) getServiceUserUsage(r *http.Request, c *caller) (int, any, error) {
	p := servicestack.Bind(r, "GetServiceUserUsage")
	svc, err := s.service(p, c)
	if err != nil {
		return 0, nil, err
	}
	user := p.GUID("UserGuid")
	per, err := s.period(p, s.rep.Yesterday())
	if err != nil {
		return 0, nil, err
	}
	users, err := s.rep.Users(r.Context(), &svc, per, user)
	if err != nil {
		return 0, nil, reportError(err)
	}
	if len(users) == 0 {
		// A user is reported once an event has named them before the
		// period's end, so the period is part of the answer: a user first
		// seen today is not found for the default, yesterday, and a 404
		// that did not say so would read as "no such user".
		when, unit := "on "+per.Start.Format(time.DateOnly), "day"
		if per.Type == usage.Monthly {
			when, unit = "in "+per.Start.Format("2006-01"), "month"
		}
		msg := fmt.Sprintf("User %s not found in service %s %s (UTC)", user, svc.GUID, when)
		if p.Value("Period") == "" {
			msg += fmt.Sprintf(", the default Period (yesterday): pass Period=yyyy-MM-dd for another %s", unit)
		}
		return 0, nil, usage.Errorf(usage.KindNotFound, "UserGuid", "%s.", msg)
	}
	return 0, ServiceUserUsage{
		ServiceGuid: servicestack.Guid(svc.GUID), PeriodType: per.Type.String(), Period: servicestack.Time(per.Start),
		Usage: userUsage(&users[0]),
	}, nil
}

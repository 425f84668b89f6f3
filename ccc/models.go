package ccc

import (
	"github.com/usaged/usaged/usage"
)

func header(s *usage.Service, collectionName string) ServiceHeader {
	return ServiceHeader{
		ServiceGuid: Guid(s.GUID), Name: s.Name, Status: s.Status.String(), ServiceCode: s.ServiceCode,
		ReferenceId: s.ReferenceID, PrimaryDomain: s.PrimaryDomain, CreatedOn: Time(s.CreatedOn),
		TrialEndDate: Time(s.TrialEndDate), EffectiveDate: Time(s.EffectiveDate), InitialTerm: s.InitialTerm,
		CollectionGuid: Guid(s.CollectionGUID), CollectionName: collectionName, ClientGuid: Guid(s.ClientGUID),
		Contact: Contact(s.Contact), Company: Company(s.Company),
	}
}

func serviceUsage(h ServiceHeader, p usage.Period, t *usage.ServiceTotals) ServiceUsage {
	return ServiceUsage{
		ServiceHeader: h, PeriodType: p.Type.String(), Period: Time(p.Start),
		TotalUserCount: t.Users.Total, ProUserCount: t.Users.Pro, GuestUserCount: t.Users.Guest,
		DisabledUserCount: t.Users.Disabled, UnregisteredUserCount: t.Users.Unregistered,
		FeatureUsageSecureMessagingGateway: t.Features[usage.FeatureSecureMessagingGateway-1],
		FeatureUsageSecureMessagingPlus:    t.Features[usage.FeatureSecureMessagingPlus-1],
		FeatureUsageDataLeakPrevention:     t.Features[usage.FeatureDataLeakPrevention-1],
		FeatureUsageSecureLargeFiles:       t.Features[usage.FeatureSecureLargeFiles-1],
		FeatureUsageSecureForms:            t.Features[usage.FeatureSecureForms-1],
		TotalMessageCount:                  t.Messages, TotalAttachmentCount: t.Attachments,
		AttachmentStorageUsage: t.StorageBytes,
	}
}

func userUsage(u *usage.UserUsage) UserUsage {
	out := UserUsage{
		UserGuid: Guid(u.User), EmailAddress: u.Email, FirstName: u.FirstName, LastName: u.LastName,
		Status: u.Status.String(), CreatedOn: Time(u.CreatedOn), RegisteredOn: Time(u.RegisteredOn),
		LastLogin: Time(u.LastLogin), GroupName: u.GroupName, GroupGuid: Guid(u.GroupGUID),
		TotalMessagesSent: u.MessagesSent, TotalMessagesReceived: u.MessagesReceived,
		TotalAttachmentsCount: u.AttachmentsCount, TotalAttachmentsSize: u.AttachmentsSize,
		TotalInvitationsSent: u.InvitationsSent, TotalInvitationsAccepted: u.InvitationsAccepted,
		InvitedByEmailAddress: u.InvitedByEmail, LastMsgSent: Time(u.LastMsgSent),
		LastMsgRetrieved: Time(u.LastMsgRetrieved), LastActivity: Time(u.LastActivity),
	}
	if u.GroupType != 0 {
		out.GroupType = u.GroupType.String()
	}
	return out
}

func paged[T any](all []T, page, size int) Paged[T] {
	p := Paged[T]{PageSize: size, TotalItems: len(all), CurrentPage: page, Results: []T{}}
	p.TotalPages = (len(all) + size - 1) / size
	if lo := (page - 1) * size; lo < len(all) {
		p.Results = all[lo:min(lo+size, len(all))]
	}
	return p
}

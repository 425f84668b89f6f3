package demo

import (
	"strconv"
	"strings"
)

// A route template and the methods it answers, with their relative weights.
type template struct {
	uri     string
	methods []string
	weights []float64
	query   bool // an analytics or search query: slower, larger responses
}

// Method mixes. GET dominates everywhere it is allowed, so the overall mix
// comes out as GET ≫ POST > PUT, PATCH > DELETE.
var (
	mixCollection = methodMix{{"GET", 12}, {"POST", 1}}
	mixItem       = methodMix{{"GET", 14}, {"PUT", 1.5}, {"PATCH", 1}, {"DELETE", 0.5}}
	mixSub        = methodMix{{"GET", 12}, {"PUT", 1.2}, {"POST", 1}, {"DELETE", 0.3}}
	mixRead       = methodMix{{"GET", 1}}
	mixAction     = methodMix{{"POST", 1}}
)

type methodMix []struct {
	method string
	weight float64
}

// resource is a Genesys-style collection: api/v2/<path>, api/v2/<path>/{<param>}
// and, under each item, the sub-resources in subs. actions are POST-only
// endpoints on the collection such as "search"; reads are GET-only ones.
type resource struct {
	path    string
	param   string
	subs    []string
	actions []string
	reads   []string
}

var resources = []resource{
	{"users", "userId", []string{"roles", "presences/purecloud", "routingskills", "routinglanguages", "queues", "station", "greetings", "callforwarding", "outofoffice", "profile", "superiors", "directreports", "routingstatus", "skillgroups"}, []string{"search", "bulk"}, []string{"me"}},
	{"conversations", "conversationId", []string{"participants", "participants/{participantId}", "participants/{participantId}/attributes", "participants/{participantId}/wrapup", "recordings", "recordingmetadata", "summaries", "tags", "secureattributes", "suggestions"}, nil, nil},
	{"conversations/calls", "conversationId", []string{"participants/{participantId}", "participants/{participantId}/consult", "participants/{participantId}/wrapupcodes", "maximumparticipants"}, nil, []string{"history"}},
	{"conversations/chats", "conversationId", []string{"communications/{communicationId}/messages", "participants/{participantId}"}, nil, nil},
	{"conversations/emails", "conversationId", []string{"messages", "messages/{messageId}", "participants/{participantId}", "messages/draft"}, nil, nil},
	{"conversations/messages", "conversationId", []string{"communications/{communicationId}/messages", "participants/{participantId}", "messages/bulk"}, []string{"agentless"}, nil},
	{"conversations/callbacks", "conversationId", []string{"participants/{participantId}", "participants/{participantId}/wrapup"}, nil, nil},
	{"routing/queues", "queueId", []string{"members", "users", "wrapupcodes", "mediatypes/{mediaType}/estimatedwaittime", "estimatedwaittime", "assistant"}, nil, []string{"divisionviews"}},
	{"routing/skills", "skillId", nil, nil, nil},
	{"routing/languages", "languageId", nil, nil, nil},
	{"routing/wrapupcodes", "codeId", nil, nil, nil},
	{"routing/skillgroups", "skillGroupId", []string{"members", "members/divisions"}, nil, nil},
	{"routing/email/domains", "domainId", []string{"routes", "routes/{routeId}"}, nil, nil},
	{"routing/sms/phonenumbers", "addressId", nil, nil, nil},
	{"groups", "groupId", []string{"members", "individuals", "greetings", "profile"}, []string{"search"}, nil},
	{"presencedefinitions", "presenceId", nil, nil, nil},
	{"locations", "locationId", []string{"sublocations"}, []string{"search"}, nil},
	{"stations", "stationId", []string{"associateduser"}, nil, nil},
	{"telephony/providers/edges", "edgeId", []string{"lines", "logicalinterfaces", "softwareversions", "metrics", "physicalinterfaces"}, nil, []string{"phones", "sites", "trunks", "didpools"}},
	{"architect/flows", "flowId", []string{"versions", "versions/{versionId}", "latestconfiguration"}, nil, []string{"divisionviews", "outcomes", "milestones"}},
	{"architect/prompts", "promptId", []string{"resources", "resources/{languageCode}"}, nil, nil},
	{"architect/ivrs", "ivrId", nil, nil, nil},
	{"architect/schedules", "scheduleId", nil, nil, nil},
	{"architect/schedulegroups", "scheduleGroupId", nil, nil, nil},
	{"architect/datatables", "datatableId", []string{"rows", "rows/{rowId}", "import/jobs"}, nil, nil},
	{"outbound/campaigns", "campaignId", []string{"stats", "progress", "interactions", "diagnostics", "callback/schedule"}, nil, []string{"all"}},
	{"outbound/contactlists", "contactListId", []string{"contacts", "contacts/{contactId}", "export", "importstatus", "timezonemappingpreview"}, nil, nil},
	{"outbound/dnclists", "dncListId", []string{"phonenumbers", "emailaddresses", "export"}, nil, nil},
	{"outbound/sequences", "sequenceId", nil, nil, nil},
	{"quality/evaluations", "evaluationId", nil, []string{"query"}, nil},
	{"quality/forms/evaluations", "formId", []string{"versions"}, nil, nil},
	{"quality/calibrations", "calibrationId", nil, nil, nil},
	{"recording/jobs", "jobId", []string{"failedrecordings"}, nil, nil},
	{"recording/mediaretentionpolicies", "policyId", nil, nil, nil},
	{"workforcemanagement/managementunits", "managementUnitId", []string{"users", "agents/{agentId}", "activitycodes", "timeoffrequests", "workplans", "adherence", "settings"}, nil, nil},
	{"workforcemanagement/businessunits", "businessUnitId", []string{"schedules", "weeks/{weekId}/schedules", "forecasts", "servicegoaltemplates", "planninggroups", "intraday"}, nil, nil},
	{"authorization/roles", "roleId", []string{"users", "subjectgrants", "comparedefault/{rightRoleId}"}, nil, nil},
	{"authorization/divisions", "divisionId", []string{"objects/{objectType}"}, nil, []string{"home", "limit"}},
	{"authorization/subjects", "subjectId", []string{"divisions/{divisionId}/roles/{roleId}"}, nil, []string{"me"}},
	{"oauth/clients", "clientId", []string{"secret", "usage/summary"}, nil, nil},
	{"externalcontacts/contacts", "contactId", []string{"notes", "notes/{noteId}", "unresolved"}, nil, nil},
	{"externalcontacts/organizations", "externalOrganizationId", []string{"contacts", "notes", "relationships"}, nil, nil},
	{"knowledge/knowledgebases", "knowledgeBaseId", []string{"documents", "documents/{documentId}", "categories", "labels", "search"}, nil, nil},
	{"scripts", "scriptId", []string{"pages", "pages/{pageId}", "export"}, nil, []string{"published"}},
	{"notifications/channels", "channelId", []string{"subscriptions"}, nil, nil},
	{"webdeployments/deployments", "deploymentId", []string{"configurations"}, nil, nil},
	{"integrations", "integrationId", []string{"config/current"}, nil, []string{"types", "actions"}},
	{"journey/actionmaps", "actionMapId", nil, nil, nil},
	{"speechandtextanalytics/topics", "topicId", nil, nil, []string{"general", "publishjobs"}},
	{"learning/modules", "moduleId", []string{"rule", "jobs"}, nil, nil},
	{"contentmanagement/documents", "documentId", []string{"content", "audits"}, nil, nil},
	{"voicemail/messages", "messageId", []string{"media"}, nil, nil},
	{"teams", "teamId", []string{"members"}, []string{"search"}, nil},
	{"flows/outcomes", "flowOutcomeId", nil, nil, nil},
	{"taskmanagement/workitems", "workitemId", []string{"wrapups", "users/{userId}/wrapups"}, []string{"query"}, nil},
}

// Analytics endpoints, built from their subject and kind.
var (
	analyticsSubjects = []string{"conversations", "users", "queues", "flows", "evaluations", "surveys", "bots", "transcripts", "journeys", "resolutions", "knowledge", "taskmanagement"}
	analyticsKinds    = map[string][]string{
		"conversations":  {"aggregates/query", "details/query", "details/jobs", "activity/query", "{conversationId}/details"},
		"users":          {"aggregates/query", "details/query", "details/jobs", "observations/query", "activity/query"},
		"queues":         {"observations/query"},
		"flows":          {"aggregates/query", "observations/query", "activity/query"},
		"evaluations":    {"aggregates/query"},
		"surveys":        {"aggregates/query"},
		"bots":           {"aggregates/query"},
		"transcripts":    {"aggregates/query"},
		"journeys":       {"aggregates/query"},
		"resolutions":    {"aggregates/query"},
		"knowledge":      {"aggregates/query"},
		"taskmanagement": {"aggregates/query"},
	}
)

// Routes at the top of every catalogue, in order: the calls that dominate
// real contact-centre integrations.
var hot = []string{
	"api/v2/users/{userId}",
	"api/v2/conversations/{conversationId}",
	"api/v2/users/{userId}/presences/purecloud",
	"api/v2/routing/queues/{queueId}/members",
	"api/v2/users",
	"api/v2/routing/queues",
	"api/v2/conversations/calls/{conversationId}",
	"api/v2/users/{userId}/routingstatus",
	"api/v2/analytics/conversations/details/query",
	"api/v2/users/me",
	"api/v2/groups/{groupId}/members",
	"api/v2/presencedefinitions",
	"api/v2/analytics/queues/observations/query",
	"api/v2/users/search",
	"api/v2/analytics/conversations/aggregates/query",
}

// catalogue returns every route template, hot ones first in their fixed
// order, the rest in an order shuffled by r.
func catalogue(r *rng) []template {
	var all []template
	add := func(uri string, mix methodMix, query bool) {
		t := template{uri: uri, query: query}
		for _, m := range mix {
			t.methods = append(t.methods, m.method)
			t.weights = append(t.weights, m.weight)
		}
		all = append(all, t)
	}
	for _, res := range resources {
		base := "api/v2/" + res.path
		item := base + "/{" + res.param + "}"
		add(base, mixCollection, false)
		add(item, mixItem, false)
		for _, s := range res.subs {
			add(item+"/"+s, mixSub, false)
		}
		for _, a := range res.actions {
			add(base+"/"+a, mixAction, true)
		}
		for _, a := range res.reads {
			add(base+"/"+a, mixRead, false)
		}
	}
	for _, subj := range analyticsSubjects {
		for _, k := range analyticsKinds[subj] {
			uri := "api/v2/analytics/" + subj + "/" + k
			switch {
			case strings.HasSuffix(k, "/jobs"):
				add(uri, mixAction, true)
				add(uri+"/{jobId}", mixRead, false)
				add(uri+"/{jobId}/results", mixRead, true)
			case strings.HasSuffix(k, "/query"):
				add(uri, mixAction, true)
			default:
				add(uri, mixRead, true)
			}
		}
	}
	add("api/v2/analytics/reporting/exports", mixCollection, true)
	add("api/v2/analytics/reporting/exports/metadata", mixRead, false)
	add("api/v2/tokens/me", methodMix{{"GET", 4}, {"DELETE", 1}}, false)
	add("api/v2/organizations/me", mixRead, false)
	add("api/v2/notifications/availabletopics", mixRead, false)
	add("api/v2/date", mixRead, false)

	// Hot routes first, in the order listed; the rest shuffled so that each
	// seed has its own long tail.
	pos := make(map[string]int, len(hot))
	for i, h := range hot {
		pos[h] = i
	}
	out := make([]template, len(hot), len(all))
	var rest []template
	for _, t := range all {
		if i, ok := pos[t.uri]; ok {
			out[i] = t
			delete(pos, t.uri)
		} else {
			rest = append(rest, t)
		}
	}
	if len(pos) != 0 {
		panic("demo: hot route missing from the catalogue") // a programming error in the tables above
	}
	for i := len(rest) - 1; i > 0; i-- {
		j := r.intn(i + 1)
		rest[i], rest[j] = rest[j], rest[i]
	}
	return append(out, rest...)
}

// TemplateCount is the number of distinct route templates the generator knows.
var TemplateCount = len(catalogue(&rng{}))

// clientKind describes a typical integration: where its calls come from and
// how often they act for a user.
type clientKind struct {
	name      string
	platform  string  // the usual platform field of its events
	userShare float64 // fraction of its calls made on behalf of a user
}

var clientKinds = []clientKind{
	{"Acme CRM sync", "Api", 0.35},
	{"WFM exporter", "Api", 0},
	{"Agent desktop", "PureCloud", 1},
	{"Supervisor wallboard", "PureCloud", 0.9},
	{"Salesforce CTI connector", "Api", 0.8},
	{"Data lake ETL", "Api", 0},
	{"Zendesk bridge", "Api", 0.6},
	{"Quality monitor", "", 0.2},
	{"Chatbot gateway", "Api", 0.1},
	{"Outbound dialer", "Api", 0.05},
	{"BI dashboard", "", 0.3},
	{"Recording archiver", "Api", 0},
	{"Survey tool", "", 0.4},
	{"Teams presence sync", "Api", 0.95},
	{"SMS notifier", "Api", 0},
	{"Billing reconciler", "Api", 0},
	{"Audit exporter", "", 0},
	{"Speech analytics feed", "Api", 0.1},
	{"Mobile supervisor app", "PureCloud", 1},
	{"Knowledge sync", "Api", 0.2},
}

// noisyClient is the index of the client that gets throttled in bursts: the
// exporter that polls too eagerly.
const noisyClient = 1

// ClientNames returns the names of the first n demo clients, in the order the
// generator ranks them by traffic. Names repeat with a numeric suffix beyond
// the catalogue.
func ClientNames(n int) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = clientKindOf(i).name
	}
	return names
}

func clientKindOf(i int) clientKind {
	k := clientKinds[i%len(clientKinds)]
	if round := i / len(clientKinds); round > 0 {
		k.name += " #" + strconv.Itoa(round+1)
	}
	return k
}

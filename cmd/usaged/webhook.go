package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/usaged/usaged/client"
	"github.com/usaged/usaged/genesys/wire"
	"github.com/usaged/usaged/internal/cmdline"
	"github.com/usaged/usaged/internal/flagvalue"
	"github.com/usaged/usaged/internal/termout"
	"github.com/usaged/usaged/usage"
)

// The webhook commands act on the webhooks of the organization of the
// client whose token they carry: reads need usage:limit:view, changes
// usage:limit:edit.

const webhookToken = "bearer token: a client access token with usage:limit:view (to read) or usage:limit:edit (to change)"

func (c *cli) newWebhookCommand(name, summary, details string) (*cmdline.Command, *remoteFlags) {
	cmd := c.newCommand(name, summary, details)
	return cmd, addRemoteFlags(cmd.Flags, webhookToken)
}

// webhookFlags are the flags of create and update.
type webhookFlags struct {
	url     *string
	events  flagvalue.List
	enabled *bool
}

func addWebhookFlags(cmd *cmdline.Command) *webhookFlags {
	f := &webhookFlags{events: flagvalue.List{usage.NotificationLimitThreshold}}
	f.url = cmd.Flags.String("url", "", "the `URL` notifications are posted to (http or https), required")
	cmd.Flags.Var(&f.events, "events", "comma-separated event `types` to subscribe to: "+strings.Join(usage.NotificationTypes, ", "))
	f.enabled = cmd.Flags.Bool("enabled", true, "whether notifications are sent to it")
	return f
}

func (f *webhookFlags) check() error {
	if err := required("--url is required", *f.url == ""); err != nil {
		return err
	}
	e := usage.WebhookEndpoint{URL: *f.url, EventTypes: f.events}
	err := e.Validate()
	var ue *usage.Error
	if errors.As(err, &ue) && ue.Field == "eventTypes" {
		return cmdline.UsageError{Err: fmt.Errorf("--events: %w", err)}
	}
	if err != nil {
		return cmdline.UsageError{Err: fmt.Errorf("--url: %w", err)}
	}
	return nil
}

func (f *webhookFlags) request() wire.WebhookRequest {
	return wire.WebhookRequest{URL: f.url, EventTypes: append([]string{}, f.events...), Enabled: f.enabled}
}

func printWebhook(w io.Writer, h wire.Webhook) error {
	fmt.Fprintf(w, "  id       %s\n  url      %s\n  events   %s\n  enabled  %v\n  created  %s\n  updated  %s\n",
		h.ID, h.URL, strings.Join(h.EventTypes, ", "), h.Enabled, h.DateCreated, h.DateModified)
	return nil
}

func (c *cli) webhookCreateCommand() *cmdline.Command {
	cmd, remote := c.newWebhookCommand("webhook create", "create a webhook of the token's organization and print its signing secret", "")
	f := addWebhookFlags(cmd)
	cmd.Run = admin[wire.Webhook]{
		clientToken: true,
		check:       f.check,
		call: func(ctx context.Context, api *client.Client) (wire.Webhook, error) {
			return api.CreateWebhook(ctx, f.request())
		},
		text: func(w io.Writer, h wire.Webhook) error {
			fmt.Fprintln(w, "created webhook")
			printWebhook(w, h)
			fmt.Fprintf(w, "  secret   %s\n\nThe secret is shown only now: verify the webhook-signature of each request with it.\n", h.Secret)
			return nil
		},
	}.run(c, remote, formatFlag(cmd))
	return cmd
}

func (c *cli) webhookListCommand() *cmdline.Command {
	cmd, remote := c.newWebhookCommand("webhook list", "list the webhooks of the token's organization", "")
	rows := termout.Table("ID\tURL\tEVENTS\tENABLED\tCREATED\t", "%s\t%s\t%s\t%v\t%s\t\n", func(h wire.Webhook) []any {
		return []any{h.ID, h.URL, strings.Join(h.EventTypes, ","), h.Enabled, h.DateCreated}
	})
	cmd.Run = admin[wire.WebhookEntities]{
		clientToken: true,
		call: func(ctx context.Context, api *client.Client) (wire.WebhookEntities, error) {
			hs, err := api.Webhooks(ctx)
			return wire.WebhookEntities{Entities: hs, Total: len(hs)}, err
		},
		text: func(w io.Writer, v wire.WebhookEntities) error { return rows(w, v.Entities) },
	}.run(c, remote, formatFlag(cmd))
	return cmd
}

// idFlag adds --id, the webhook's id.
func idFlag(cmd *cmdline.Command) *string { return cmd.Flags.String("id", "", "webhook id, required") }

func (c *cli) webhookGetCommand() *cmdline.Command {
	cmd, remote := c.newWebhookCommand("webhook get", "show a webhook", "")
	id := idFlag(cmd)
	cmd.Run = admin[wire.Webhook]{
		clientToken: true,
		check:       func() error { return required("--id is required", *id == "") },
		call:        func(ctx context.Context, api *client.Client) (wire.Webhook, error) { return api.Webhook(ctx, *id) },
		text:        printWebhook,
	}.run(c, remote, formatFlag(cmd))
	return cmd
}

func (c *cli) webhookUpdateCommand() *cmdline.Command {
	cmd, remote := c.newWebhookCommand("webhook update", "replace a webhook's URL, event types and enabled; its secret stays", "")
	id := idFlag(cmd)
	f := addWebhookFlags(cmd)
	cmd.Run = admin[wire.Webhook]{
		clientToken: true,
		check: func() error {
			if err := required("--id is required", *id == ""); err != nil {
				return err
			}
			return f.check()
		},
		call: func(ctx context.Context, api *client.Client) (wire.Webhook, error) {
			return api.UpdateWebhook(ctx, *id, f.request())
		},
		text: func(w io.Writer, h wire.Webhook) error {
			fmt.Fprintln(w, "updated webhook")
			return printWebhook(w, h)
		},
	}.run(c, remote, formatFlag(cmd))
	return cmd
}

func (c *cli) webhookDeleteCommand() *cmdline.Command {
	cmd, remote := c.newWebhookCommand("webhook delete", "delete a webhook and its delivery log", "")
	id := idFlag(cmd)
	cmd.Run = admin[struct{}]{
		clientToken: true,
		check:       func() error { return required("--id is required", *id == "") },
		call: func(ctx context.Context, api *client.Client) (struct{}, error) {
			return struct{}{}, api.DeleteWebhook(ctx, *id)
		},
		text: termout.Printed("deleted webhook %s\n", func(struct{}) []any { return []any{*id} }),
	}.run(c, remote, nil)
	return cmd
}

var deliveryRows = termout.Table("ID\tTIME\tNOTIFICATION\tTYPE\tATTEMPT\tSTATUS\tLATENCY\tERROR\t", "%s\t%s\t%s\t%s\t%d\t%s\t%dms\t%s\t\n",
	func(d wire.WebhookDelivery) []any {
		status := "-"
		if d.StatusCode != 0 {
			status = fmt.Sprint(d.StatusCode)
		}
		attempt := d.EventType
		if d.Replay {
			attempt += " (replay)"
		}
		return []any{d.ID, d.DateCreated, d.NotificationID, attempt, d.Attempt, status, d.LatencyMs, d.Error}
	})

func (c *cli) webhookDeliveriesCommand() *cmdline.Command {
	cmd, remote := c.newWebhookCommand("webhook deliveries", "list a webhook's delivery log, newest first",
		"Prints a page; the cursor of the next, if any, is printed after it (pass it as --after), or --all prints every page.")
	id := idFlag(cmd)
	size := cmd.Flags.Int("page-size", 0, "attempts per page, 1 to 1000; 0: the server's default (100)")
	after := cmd.Flags.String("after", "", "the `cursor` of the page before, as the previous page printed it")
	all := cmd.Flags.Bool("all", false, "print every page")
	cmd.Run = admin[wire.WebhookDeliveryPage]{
		clientToken: true,
		check:       func() error { return required("--id is required", *id == "") },
		call: func(ctx context.Context, api *client.Client) (wire.WebhookDeliveryPage, error) {
			p, err := api.WebhookDeliveries(ctx, *id, *size, *after)
			for *all && err == nil && p.Cursors != nil && p.Cursors.After != "" {
				var next wire.WebhookDeliveryPage
				next, err = api.WebhookDeliveries(ctx, *id, *size, p.Cursors.After)
				p.Entities, p.Cursors, p.NextURI = append(p.Entities, next.Entities...), next.Cursors, next.NextURI
			}
			return p, err
		},
		text: func(w io.Writer, p wire.WebhookDeliveryPage) error {
			if err := deliveryRows(w, p.Entities); err != nil {
				return err
			}
			if p.Cursors != nil && p.Cursors.After != "" {
				fmt.Fprintf(w, "more: --after %s\n", p.Cursors.After)
			}
			return nil
		},
	}.run(c, remote, formatFlag(cmd))
	return cmd
}

func (c *cli) webhookReplayCommand() *cmdline.Command {
	cmd, remote := c.newWebhookCommand("webhook replay", "send a delivery's notification to its webhook again, now, with the same webhook-id", "")
	id := idFlag(cmd)
	delivery := cmd.Flags.String("delivery", "", "delivery id, from webhook deliveries, required")
	cmd.Run = admin[wire.WebhookDelivery]{
		clientToken: true,
		check:       func() error { return required("--id and --delivery are required", *id == "", *delivery == "") },
		call: func(ctx context.Context, api *client.Client) (wire.WebhookDelivery, error) {
			return api.ReplayWebhookDelivery(ctx, *id, *delivery)
		},
		text: func(w io.Writer, d wire.WebhookDelivery) error { return deliveryRows(w, []wire.WebhookDelivery{d}) },
	}.run(c, remote, formatFlag(cmd))
	return cmd
}

func (c *cli) webhookTestCommand() *cmdline.Command {
	cmd, remote := c.newWebhookCommand("webhook test", "send a webhook.test notification to a webhook now and print the attempt", "")
	id := idFlag(cmd)
	cmd.Run = admin[wire.WebhookDelivery]{
		clientToken: true,
		check:       func() error { return required("--id is required", *id == "") },
		call: func(ctx context.Context, api *client.Client) (wire.WebhookDelivery, error) {
			return api.TestWebhook(ctx, *id)
		},
		text: func(w io.Writer, d wire.WebhookDelivery) error { return deliveryRows(w, []wire.WebhookDelivery{d}) },
	}.run(c, remote, formatFlag(cmd))
	return cmd
}

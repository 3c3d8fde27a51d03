package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"

	ucli "github.com/urfave/cli/v2"

	"github.com/macronode/macronode/pkg/admin"
)

func reloadCommand(env Env) *ucli.Command {
	return &ucli.Command{
		Name:      "reload",
		Usage:     "make the running node re-read its configuration, and say what changed",
		UsageText: "macronode reload [--config PATH] [--http-addr ADDR]",
		Description: "Asks the node (POST /api/v1/reload) and waits for its answer: the fields that\n" +
			"changed, those applied at once, and those that need `macronode restart SERVICE`\n" +
			"(restart_required). A refused configuration (HTTP 422) exits 1 listing each\n" +
			"field error; the node keeps its old configuration. systemd's ExecReload runs it.\n\n" +
			"Example:\n   macronode reload\n" +
			"   reloaded\n" +
			"   changed:          log_level, services.index.listen\n" +
			"   applied:          log_level\n" +
			"   restart_required: services.index.listen",
		Flags: clientFlags(),
		Action: func(c *ucli.Context) error {
			if c.Args().Present() {
				return usageErr("reload takes no arguments")
			}
			cl, _, err := connect(c, env)
			if err != nil {
				return err
			}
			defer cl.close()
			body, err := cl.raw(c.Context, http.MethodPost, "/api/v1/reload", nil)
			var ae *apiError
			if errors.As(err, &ae) && ae.Status == http.StatusUnprocessableEntity {
				printReloadRefused(env.Stderr, ae)
				return silent(ExitFailure)
			}
			if err != nil {
				return failure(fmt.Errorf("reload: %w", err))
			}
			if err := printReloaded(env.Stdout, body); err != nil {
				return failure(fmt.Errorf("reload: %w", err))
			}
			return nil
		},
	}
}

// printReloaded prints a 200 reload answer: its status, the three lists,
// then any other field the node added, as compact JSON.
func printReloaded(w io.Writer, body []byte) error {
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(body, &doc); err != nil {
		return fmt.Errorf("unexpected answer: %w", err)
	}
	var status string
	_ = json.Unmarshal(doc["status"], &status) // absent: printed as "reloaded"
	if status == "" {
		status = "reloaded"
	}
	fmt.Fprintln(w, status)
	known := []string{"status", "changed", "applied", "restart_required"}
	for _, k := range known[1:] {
		var list []string
		if err := json.Unmarshal(orNull(doc[k]), &list); err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
		fmt.Fprintf(w, "%-17s %s\n", k+":", listOrNone(list))
	}
	var extra []string
	for k := range doc {
		if !slices.Contains(known, k) {
			extra = append(extra, k)
		}
	}
	slices.Sort(extra)
	for _, k := range extra {
		var b bytes.Buffer
		if err := json.Compact(&b, doc[k]); err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
		fmt.Fprintf(w, "%-17s %s\n", k+":", b.String())
	}
	return nil
}

// printReloadRefused prints a 422 answer: the message, then each field
// error with who set the value.
func printReloadRefused(w io.Writer, ae *apiError) {
	var doc admin.ReloadError
	if json.Unmarshal(ae.Raw, &doc) != nil || doc.Error == "" {
		fmt.Fprintf(w, "macronode: reload refused: %v\n", ae)
		return
	}
	fmt.Fprintf(w, "macronode: reload refused: %s\n", doc.Error)
	for _, fe := range doc.Errors {
		where := fe.Field
		if fe.Source != "" {
			where += " (" + fe.Source + ")"
		}
		if where == "" {
			where = "config"
		}
		fmt.Fprintf(w, "  %s: %s\n", where, fe.Message)
	}
}

func orNull(raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 {
		return json.RawMessage("null")
	}
	return raw
}

func listOrNone(list []string) string {
	if len(list) == 0 {
		return "-"
	}
	return strings.Join(list, ", ")
}

// verso-grafana-lint checks Grafana dashboard JSON files against Grafana's own dashboard
// schema, as published in the Apache-2.0 Go types of github.com/grafana/grafana-foundation-sdk
// (generated from the CUE schemas in Grafana's repository; Grafana itself is AGPL and is not
// built here). It exists because deploy/observability/grafana-dashboard.json is written by
// hand: the tests check its layout and its PromQL, and this checks that Grafana would read it
// as written.
//
// For each file it does what the SDK's strict decoding does, then the schema's constraints:
//   - (*dashboard.Dashboard).UnmarshalJSONStrict: rejects unknown fields ("unexpected field"),
//     values of the wrong type, and missing required fields, at every level. Panel options
//     and fieldConfig.defaults.custom are decoded with the panel type's own schema (stat,
//     timeseries, table, ...) once plugins.RegisterDefaultPlugins has registered them, and
//     queries with their datasource's schema (prometheus, ...).
//   - Dashboard.Validate: the schema's value constraints (ranges such as
//     fiscalYearStartMonth < 12) on the decoded dashboard.
//   - one check of its own: every panel (rows' nested panels too) has a type the SDK knows,
//     since the options of an unknown panel type are decoded as free-form JSON, unchecked.
//
// Usage: verso-grafana-lint FILE...
// Each problem is printed on its own line as "FILE: path: message" (exit 1 if any); a clean
// file prints "FILE: ok: N panels" (N counts rows and the panels inside collapsed rows).
// Exit 2 on a usage error.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: verso-grafana-lint FILE...")
		os.Exit(2)
	}
	plugins.RegisterDefaultPlugins()
	failed := false
	for _, file := range os.Args[1:] {
		problems, panels := lint(file)
		for _, p := range problems {
			fmt.Printf("%s: %s\n", file, p)
		}
		if len(problems) > 0 {
			failed = true
		} else {
			fmt.Printf("%s: ok: %d panels\n", file, panels)
		}
	}
	if failed {
		os.Exit(1)
	}
}

// lint returns the file's problems, one line each, and how many panels it holds.
func lint(file string) ([]string, int) {
	raw, err := os.ReadFile(file)
	if err != nil {
		return []string{err.Error()}, 0
	}
	problems := lines(new(dashboard.Dashboard).UnmarshalJSONStrict(raw))
	// The values come from a second, lenient decode of the same types: in v0.0.22 the strict
	// decoder drops every panel it has decoded (PanelOrRowPanel returns its empty error list
	// as a non-nil error before keeping the panel), which would leave Validate and the type
	// check below nothing to look at. A file it cannot decode has its problems reported above.
	var d dashboard.Dashboard
	if err := json.Unmarshal(raw, &d); err != nil {
		if len(problems) == 0 {
			problems = lines(err)
		}
		return problems, 0
	}
	problems = append(problems, lines(d.Validate())...)
	panels := 0
	check := func(path, typ string) {
		panels++
		if _, known := cog.ConfigForPanelcfgVariant(typ); !known {
			problems = append(problems, fmt.Sprintf(
				"%s.type: unknown panel type %q (its options would go unchecked)", path, typ))
		}
	}
	for i, p := range d.Panels {
		path := "panels[" + strconv.Itoa(i) + "]"
		switch {
		case p.Panel != nil:
			check(path, p.Panel.Type)
		case p.RowPanel != nil:
			panels++
			for j, nested := range p.RowPanel.Panels {
				check(path+".panels["+strconv.Itoa(j)+"]", nested.Type)
			}
		}
	}
	return problems, panels
}

// lines splits the SDK's errors (a list of "path: message") into one problem each; any other
// error (a file that is not JSON at all) is one problem. UnmarshalJSONStrict returns its list
// even when it is empty (a non-nil error holding no problem): that is no problem.
func lines(err error) []string {
	if err == nil {
		return nil
	}
	var build cog.BuildErrors
	if errors.As(err, &build) {
		out := make([]string, 0, len(build))
		for _, e := range build {
			out = append(out, e.Error())
		}
		return out
	}
	return strings.Split(err.Error(), "\n")
}

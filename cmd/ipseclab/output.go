package main

import (
	"encoding/json"
	"os"
)

// printJSONOr writes v as JSON on stdout with --json, or has table print it
// for a person: the two forms of every verb that lists something.
func printJSONOr(asJSON bool, v any, table func()) error {
	if asJSON {
		return json.NewEncoder(os.Stdout).Encode(v)
	}
	table()
	return nil
}

// Package netem is what a lab file says about a link's impairments, in
// tc-netem(8)'s vocabulary and units: the settings, their parsing, printing,
// YAML and JSON forms, their validation and the patterns of their JSON
// Schema. Package impair applies them to links; this package is apart from it
// because it needs nothing of Linux, so that a lab file decodes and validates
// on any OS.
//
// Netem holds one direction's settings; Params holds both directions and the
// link's own settings (MTU, down). They decode from a lab file's `impair:`
// block (Params.UnmarshalYAML, with errors at the exact YAML node), from
// command-line words (ParseChange, Flags, Change.Set), and print as `tc qdisc
// show` prints a netem qdisc (Netem.String). A Change merges into the current
// settings field by field; see Change for the rule, which the CLI's help can
// quote.
package netem

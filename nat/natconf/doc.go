// Package natconf is what a lab file says about a NAT box: the `nat:` block of
// a `kind: nat` node (Config), its YAML decoding with positions, its
// validation and its JSON Schema. Package nat builds the box from it; this
// package is apart from it because it needs nothing of Linux, so that a lab
// file decodes and validates on any OS.
package natconf

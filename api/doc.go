// Package api holds the public types of grappe's REST API: the JSON bodies
// that clients send and receive. They are the external contract described in
// DESIGN.md; fields are only ever added, never renamed.
package api

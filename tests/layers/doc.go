// Package layers keeps docs/architecture.md true: its tests read the
// package table and the import diagram there and check them against what
// `go list` says the code imports. Every package must have a row; a
// package imports only packages of earlier rows; shared and client packages
// (what publishers and clients link) never depend on a server package; and
// the diagram's arrows are exactly the imports between the packages it
// shows. A failure names the import and the rule it breaks: move the code,
// or change the page if the design changed.
package layers

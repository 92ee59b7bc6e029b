// Package control is band's control API: HTTP/JSON over a unix socket, with
// the peer's credentials checked on every request, and the typed client
// bandctl uses.
package control

import (
	"time"
)

// Routes, versioned.
const (
	PathBans   = "/v1/bans"
	PathStatus = "/v1/status"
	PathReload = "/v1/reload"
)

// DefaultSocket is where band listens unless configured otherwise.
const DefaultSocket = "/run/band/band.sock"

// Ban is one active ban as the API shows it.
type Ban struct {
	Addr   string    `json:"addr"` // address or prefix
	Jail   string    `json:"jail"`
	Start  time.Time `json:"start"`
	Expiry time.Time `json:"expiry"`
	Hits   int       `json:"hits"`
	Reason string    `json:"reason,omitempty"`
	Origin string    `json:"origin"` // "jail" or "manual"
}

// BanRequest asks for a manual ban.
type BanRequest struct {
	Addr   string `json:"addr"`             // address or prefix
	For    string `json:"for,omitempty"`    // duration, e.g. "1h"; default the jail's bantime or 1h
	Jail   string `json:"jail,omitempty"`   // an existing jail, to label the ban and take its bantime
	Reason string `json:"reason,omitempty"` // free text
	Force  bool   `json:"force,omitempty"`  // ban even an address in ignoreip
}

// BanResponse reports a manual ban.
type BanResponse struct {
	Ban     Ban  `json:"ban"`
	Already bool `json:"already"` // the address was already banned
}

// UnbanRequest lifts bans: the addresses given, or all (of one jail).
type UnbanRequest struct {
	Addrs []string `json:"addrs,omitempty"`
	All   bool     `json:"all,omitempty"`
	Jail  string   `json:"jail,omitempty"`
}

// UnbanResponse lists what was lifted.
type UnbanResponse struct {
	Unbanned []string `json:"unbanned"`
	NotFound []string `json:"not_found,omitempty"` // given but not banned (not an error)
}

// Status is the daemon's state.
type Status struct {
	Version string       `json:"version"`
	Started time.Time    `json:"started"`
	Uptime  string       `json:"uptime"`
	Backend string       `json:"backend"`
	State   StateInfo    `json:"state"`
	Sources []SourceInfo `json:"sources"`
	Jails   []JailInfo   `json:"jails"`
}

// StateInfo describes the state file.
type StateInfo struct {
	Path  string    `json:"path,omitempty"`
	Saved time.Time `json:"saved,omitempty"` // last checkpoint of positions and windows
	Error string    `json:"error,omitempty"` // the last write error (a full disk), if any
}

// SourceInfo is one log source.
type SourceInfo struct {
	Name        string     `json:"name"`
	Path        string     `json:"path"`
	Format      string     `json:"format"`
	Lines       uint64     `json:"lines"`
	ParseErrors uint64     `json:"parse_errors"`
	Files       []FileInfo `json:"files"`
}

// FileInfo is one followed file.
type FileInfo struct {
	Path       string  `json:"path"`
	Offset     int64   `json:"offset"`
	Size       int64   `json:"size"`
	LagBytes   int64   `json:"lag_bytes"`
	LagSeconds float64 `json:"lag_seconds"`
}

// JailInfo is one jail.
type JailInfo struct {
	Name       string `json:"name"`
	Kind       string `json:"kind"`
	Limit      string `json:"limit"`
	BanTime    string `json:"bantime"`
	Matches    uint64 `json:"matches"`
	ActiveBans int    `json:"active_bans"`
	TotalBans  uint64 `json:"total_bans"`
}

// Error is the body of every failed request.
type Error struct {
	Code    string `json:"code"` // machine-readable, see the Code constants
	Message string `json:"error"`
}

// Error codes.
const (
	CodeBadRequest  = "bad_request"
	CodeNotFound    = "not_found"   // e.g. no such jail
	CodeIgnored     = "ignored"     // the address is whitelisted; --force bans it
	CodeProtected   = "protected"   // loopback or the host's own address: never banned
	CodeForbidden   = "forbidden"   // the peer may not change state
	CodeUnavailable = "unavailable" // e.g. reload failed
	CodeInternal    = "internal"
)

func (e *Error) Error() string { return e.Message }

package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Service is what the API exposes; the daemon implements it.
type Service interface {
	List(jail, addr string) ([]Ban, error)
	Ban(ctx context.Context, r BanRequest) (BanResponse, error)
	Unban(ctx context.Context, r UnbanRequest) (UnbanResponse, error)
	Status() Status
	Reload(ctx context.Context) error
}

// Options configure a Server.
type Options struct {
	Socket string // path of the unix socket
	// Group may change state besides root (a group name or numeric id);
	// the socket is created mode 0660 owned by root and this group.
	Group string
}

// Server serves the API on a unix socket.
type Server struct {
	log  *slog.Logger
	svc  Service
	opts Options
	gid  int // the allowed group, -1 for root only
	srv  *http.Server
	ln   net.Listener
}

type credKey struct{}

// Peer is the credentials of the process at the other end of the socket.
type Peer struct {
	PID, UID, GID int
}

// Listen creates the socket and returns a server ready to Serve. A stale
// socket left by a dead daemon is replaced; a live one is an error.
func Listen(log *slog.Logger, svc Service, opts Options) (*Server, error) {
	if opts.Socket == "" {
		opts.Socket = DefaultSocket
	}
	gid, err := lookupGroup(opts.Group)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(opts.Socket), 0o755); err != nil {
		return nil, fmt.Errorf("creating the control socket's directory: %w", err)
	}
	if c, err := net.DialTimeout("unix", opts.Socket, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("another band is already listening on %s", opts.Socket)
	}
	os.Remove(opts.Socket)
	// The socket is created with no permissions for others at all, then
	// opened to the group: there is never a moment it is world-writable.
	old := syscall.Umask(0o177)
	ln, err := net.Listen("unix", opts.Socket)
	syscall.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", opts.Socket, err)
	}
	if gid > 0 {
		if err := os.Chown(opts.Socket, os.Geteuid(), gid); err != nil {
			ln.Close()
			return nil, fmt.Errorf("giving %s to group %s: %w", opts.Socket, opts.Group, err)
		}
	}
	if err := os.Chmod(opts.Socket, 0o660); err != nil {
		ln.Close()
		return nil, fmt.Errorf("setting the mode of %s: %w", opts.Socket, err)
	}
	s := &Server{log: log.With("component", "control"), svc: svc, opts: opts, gid: gid, ln: ln}
	s.srv = &http.Server{
		Handler:           s.routes(),
		ReadHeaderTimeout: 5 * time.Second,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			if p, ok := peerOf(c); ok {
				return context.WithValue(ctx, credKey{}, p)
			}
			return ctx
		},
	}
	return s, nil
}

// Serve serves until ctx is done, then removes the socket.
func (s *Server) Serve(ctx context.Context) error {
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		s.srv.Shutdown(sctx)
	}()
	err := s.srv.Serve(s.ln)
	os.Remove(s.opts.Socket)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

func lookupGroup(name string) (int, error) {
	if name == "" || name == "root" || name == "0" {
		return 0, nil
	}
	if id, err := strconv.Atoi(name); err == nil {
		return id, nil
	}
	g, err := user.LookupGroup(name)
	if err != nil {
		return -1, fmt.Errorf("socket_group %q: %w", name, err)
	}
	return strconv.Atoi(g.Gid)
}

func peerOf(c net.Conn) (Peer, bool) {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return Peer{}, false
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return Peer{}, false
	}
	var cred *syscall.Ucred
	var cerr error
	raw.Control(func(fd uintptr) {
		cred, cerr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	})
	if cerr != nil || cred == nil {
		return Peer{}, false
	}
	return Peer{PID: int(cred.Pid), UID: int(cred.Uid), GID: int(cred.Gid)}, true
}

// mayChange reports whether the peer may change state: root, or a member
// (primary or supplementary) of the configured group.
func (s *Server) mayChange(r *http.Request) bool {
	p, ok := r.Context().Value(credKey{}).(Peer)
	if !ok {
		return false
	}
	if p.UID == 0 {
		return true
	}
	if s.gid <= 0 {
		return false
	}
	if p.GID == s.gid {
		return true
	}
	for _, g := range supplementaryGroups(p.PID) {
		if g == s.gid {
			return true
		}
	}
	return false
}

// supplementaryGroups reads a process's groups from /proc.
func supplementaryGroups(pid int) []int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "Groups:"); ok {
			var out []int
			for _, f := range strings.Fields(rest) {
				if g, err := strconv.Atoi(f); err == nil {
					out = append(out, g)
				}
			}
			return out
		}
	}
	return nil
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+PathBans, s.handleList)
	mux.HandleFunc("POST "+PathBans, s.guard(s.handleBan))
	mux.HandleFunc("DELETE "+PathBans, s.guard(s.handleUnban))
	mux.HandleFunc("GET "+PathStatus, s.handleStatus)
	mux.HandleFunc("POST "+PathReload, s.guard(s.handleReload))
	return mux
}

func (s *Server) guard(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.mayChange(r) {
			group := "root"
			if s.gid > 0 {
				group = s.opts.Group
			}
			p, _ := r.Context().Value(credKey{}).(Peer)
			s.log.Warn("refused a state change", "uid", p.UID, "pid", p.PID, "path", r.URL.Path)
			writeError(w, http.StatusForbidden, CodeForbidden,
				fmt.Sprintf("permission denied: only root or members of group %s may change band's state", group))
			return
		}
		h(w, r)
	}
}

func (s *Server) handleList(w http.ResponseWriter, r *http.Request) {
	bans, err := s.svc.List(r.URL.Query().Get("jail"), r.URL.Query().Get("addr"))
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, bans)
}

func (s *Server) handleBan(w http.ResponseWriter, r *http.Request) {
	var req BanRequest
	if !readJSON(w, r, &req) {
		return
	}
	resp, err := s.svc.Ban(r.Context(), req)
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) handleUnban(w http.ResponseWriter, r *http.Request) {
	var req UnbanRequest
	if !readJSON(w, r, &req) {
		return
	}
	resp, err := s.svc.Unban(r.Context(), req)
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) handleStatus(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.svc.Status())
}

func (s *Server) handleReload(w http.ResponseWriter, r *http.Request) {
	if err := s.svc.Reload(r.Context()); err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, struct{}{})
}

func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, CodeBadRequest, "bad request body: "+err.Error())
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, Error{Code: code, Message: msg})
}

// writeErr maps a service error: an *Error keeps its code; anything else is
// internal.
func writeErr(w http.ResponseWriter, err error) {
	var e *Error
	if !errors.As(err, &e) {
		writeError(w, http.StatusInternalServerError, CodeInternal, err.Error())
		return
	}
	status := map[string]int{
		CodeBadRequest: http.StatusBadRequest, CodeNotFound: http.StatusNotFound,
		CodeIgnored: http.StatusConflict, CodeProtected: http.StatusConflict,
		CodeForbidden: http.StatusForbidden, CodeUnavailable: http.StatusServiceUnavailable,
	}[e.Code]
	if status == 0 {
		status = http.StatusInternalServerError
	}
	writeJSON(w, status, e)
}

// Errorf returns an API error with a code.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

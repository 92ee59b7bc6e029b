package control

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"syscall"
	"time"
)

// Client talks to a running band.
type Client struct {
	socket string
	http   *http.Client
}

// ErrNotRunning means nothing listens on the socket.
var ErrNotRunning = errors.New("band is not running")

// ErrPermission means the socket refused this user.
var ErrPermission = errors.New("permission denied")

// NewClient returns a client for the daemon listening on socket.
func NewClient(socket string) *Client {
	if socket == "" {
		socket = DefaultSocket
	}
	return &Client{
		socket: socket,
		http: &http.Client{
			Timeout: 30 * time.Second,
			Transport: &http.Transport{
				DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
					var d net.Dialer
					return d.DialContext(ctx, "unix", socket)
				},
			},
		},
	}
}

func (c *Client) do(ctx context.Context, method, path string, query url.Values, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	u := "http://band" + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return c.dialError(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var e Error
		if json.NewDecoder(resp.Body).Decode(&e) != nil || e.Message == "" {
			return fmt.Errorf("band answered %s", resp.Status)
		}
		return &e
	}
	if out == nil {
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

func (c *Client) dialError(err error) error {
	switch {
	case errors.Is(err, os.ErrNotExist), errors.Is(err, syscall.ENOENT):
		return fmt.Errorf("%w: no socket at %s", ErrNotRunning, c.socket)
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("%w: nothing listens on %s", ErrNotRunning, c.socket)
	case errors.Is(err, os.ErrPermission), errors.Is(err, syscall.EACCES):
		return fmt.Errorf("%w: cannot open %s", ErrPermission, c.socket)
	}
	return fmt.Errorf("talking to band on %s: %w", c.socket, err)
}

// List returns active bans, optionally of one jail or covering one address.
func (c *Client) List(ctx context.Context, jail, addr string) ([]Ban, error) {
	q := url.Values{}
	if jail != "" {
		q.Set("jail", jail)
	}
	if addr != "" {
		q.Set("addr", addr)
	}
	var out []Ban
	err := c.do(ctx, http.MethodGet, PathBans, q, nil, &out)
	return out, err
}

// Ban asks for a manual ban.
func (c *Client) Ban(ctx context.Context, r BanRequest) (BanResponse, error) {
	var out BanResponse
	err := c.do(ctx, http.MethodPost, PathBans, nil, r, &out)
	return out, err
}

// Unban lifts bans.
func (c *Client) Unban(ctx context.Context, r UnbanRequest) (UnbanResponse, error) {
	var out UnbanResponse
	err := c.do(ctx, http.MethodDelete, PathBans, nil, r, &out)
	return out, err
}

// Status returns the daemon's state.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var out Status
	err := c.do(ctx, http.MethodGet, PathStatus, nil, nil, &out)
	return out, err
}

// Reload makes the daemon re-read its configuration.
func (c *Client) Reload(ctx context.Context) error {
	return c.do(ctx, http.MethodPost, PathReload, nil, struct{}{}, nil)
}

package pipeline

import (
	"net/netip"
	"time"

	"github.com/band-project/band/rules"
)

// Counters returns the pipeline's counters by name ("lines/SOURCE",
// "errors/SOURCE", "matches/JAIL", "bans/JAIL"), for a checkpoint.
func (p *Pipeline) Counters() map[string]uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]uint64, 2*(len(p.sources)+len(p.jails)))
	for name, s := range p.sources {
		out["lines/"+name] = s.lines.Load()
		out["errors/"+name] = s.errors.Load()
	}
	for name, js := range p.jails {
		out["matches/"+name] = js.matches.Load()
		out["bans/"+name] = js.bans.Load()
	}
	return out
}

// RestoreCounters sets counters saved by Counters.
func (p *Pipeline) RestoreCounters(c map[string]uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for name, s := range p.sources {
		s.lines.Store(c["lines/"+name])
		s.errors.Store(c["errors/"+name])
	}
	for name, js := range p.jails {
		js.matches.Store(c["matches/"+name])
		js.bans.Store(c["bans/"+name])
	}
}

// Window is a saved detector window.
type Window struct {
	Jail  string
	Addr  netip.Addr
	Sub   uint64
	Times []int64
}

// Windows returns the open windows of match jails at now. Rate jails'
// windows last seconds and are keyed by a per-process hash, so they are not
// worth keeping across a restart.
func (p *Pipeline) Windows(now time.Time) []Window {
	p.mu.Lock()
	defer p.mu.Unlock()
	snap := p.det.Snapshot(now, func(name string) bool {
		js := p.jails[name]
		return js != nil && js.jail.Kind == rules.Match
	})
	out := make([]Window, len(snap))
	for i, w := range snap {
		out[i] = Window{Jail: w.Jail, Addr: w.Key.Addr, Sub: w.Key.Sub, Times: w.Times}
	}
	return out
}

// RestoreWindows puts saved windows back; windows of jails that no longer
// exist are dropped.
func (p *Pipeline) RestoreWindows(ws []Window) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, w := range ws {
		js := p.jails[w.Jail]
		if js == nil || js.jail.Kind != rules.Match {
			continue
		}
		p.det.Restore(js.jail, rules.Key{Addr: w.Addr, Sub: w.Sub}, w.Times)
	}
}

// LongestWindow is the longest findtime or window of the enabled jails.
// It does not lock: Horizon functions call it from inside Line.
func (p *Pipeline) LongestWindow() time.Duration { return time.Duration(p.longest.Load()) }

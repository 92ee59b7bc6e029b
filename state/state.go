// Package state keeps what band must not forget across a restart or a crash
// in one bbolt file under state_dir: active bans, each offender's ban
// history, each log's position, and the detector's open windows.
//
// bbolt is used because it is an embedded, pure-Go, single-file store with
// ACID transactions (a crash leaves either the old or the new checkpoint,
// never half of one), no server to run, and fast memory-mapped reads for
// loading 100k bans at start; etcd has kept it for years.
package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/band-project/band/bans"
)

// FileName is the state file's name inside state_dir.
const FileName = "band.db"

var (
	bucketBans      = []byte("bans")
	bucketHistory   = []byte("history")
	bucketPositions = []byte("positions")
	bucketWindows   = []byte("windows")
	bucketCounters  = []byte("counters")
	bucketMeta      = []byte("meta")
	allBuckets      = [][]byte{bucketBans, bucketHistory, bucketPositions, bucketWindows, bucketCounters, bucketMeta}
)

// Position is where reading of a log file resumes.
type Position struct {
	Source    string `json:"source"`
	Path      string `json:"path"`
	Dev       uint64 `json:"dev"`
	Inode     uint64 `json:"inode"`
	Offset    int64  `json:"offset"`
	FirstLine uint64 `json:"first_line"` // hash of the file's first line, to detect replacement
}

// Window is one detector key's hits within its window.
type Window struct {
	Jail  string  `json:"jail"`
	Addr  string  `json:"addr"`
	Sub   uint64  `json:"sub,omitempty"`
	Times []int64 `json:"times"` // unix nanoseconds
}

// Checkpoint is what is saved together, in one transaction, so that
// positions, windows and counters always agree.
type Checkpoint struct {
	Positions []Position        `json:"positions"`
	Windows   []Window          `json:"windows"`
	Counters  map[string]uint64 `json:"counters"`
	Saved     time.Time         `json:"saved"`
}

// Store is the state file. Ban changes are queued by the book (Put, Delete,
// SaveHistory never block on the disk) and written by Flush in one
// transaction; Flush is called periodically and before bans are reported.
type Store struct {
	log  *slog.Logger
	db   *bolt.DB
	path string

	flushMu sync.Mutex // serialises Flush
	mu      sync.Mutex
	bans    map[netip.Prefix]*bans.Ban // nil value: delete
	history map[netip.Prefix][]bans.Offence
	lastErr error
}

var _ bans.Journal = (*Store)(nil)

// Open opens (or creates) the state file in dir. A file that cannot be read
// as a state file is moved aside (band.db.corrupt-TIME) with a log line, and
// an empty store is started: band must protect the server rather than
// refuse to start.
func Open(log *slog.Logger, dir string) (*Store, error) {
	log = log.With("component", "state")
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("creating state directory: %w", err)
	}
	path := filepath.Join(dir, FileName)
	db, err := open(path)
	if err != nil {
		if errors.Is(err, bolt.ErrTimeout) {
			return nil, fmt.Errorf("opening %s: another band holds it", path)
		}
		// A file band may not open is not a damaged one: never move it.
		if errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.EROFS) {
			return nil, fmt.Errorf("opening %s: %w", path, err)
		}
		aside := fmt.Sprintf("%s.corrupt-%s", path, time.Now().UTC().Format("20060102T150405"))
		if rerr := os.Rename(path, aside); rerr != nil {
			return nil, fmt.Errorf("opening %s: %v; moving it aside: %w", path, err, rerr)
		}
		log.Error("state file unreadable; moved aside, starting with an empty ban book", "path", path, "moved_to", aside, "err", err)
		if db, err = open(path); err != nil {
			return nil, fmt.Errorf("creating %s: %w", path, err)
		}
	}
	return &Store{log: log, db: db, path: path, bans: map[netip.Prefix]*bans.Ban{}, history: map[netip.Prefix][]bans.Offence{}}, nil
}

func open(path string) (db *bolt.DB, err error) {
	defer func() {
		// bbolt panics on some forms of corruption; treat them as errors.
		if r := recover(); r != nil {
			err = fmt.Errorf("corrupt state file: %v", r)
			if db != nil {
				db.Close()
				db = nil
			}
		}
	}()
	db, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return nil, err
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		// Read every record once: a file whose pages are damaged fails here,
		// at start, rather than later.
		err = db.View(func(tx *bolt.Tx) error {
			for _, name := range allBuckets {
				if err := tx.Bucket(name).ForEach(func(k, v []byte) error { return nil }); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// Path is the state file's path.
func (s *Store) Path() string { return s.path }

// Close flushes and closes the file.
func (s *Store) Close() error {
	ferr := s.Flush()
	if err := s.db.Close(); err != nil {
		return err
	}
	return ferr
}

// PutBan queues a ban to be written.
func (s *Store) PutBan(b bans.Ban) {
	s.mu.Lock()
	s.bans[b.Prefix] = &b
	s.mu.Unlock()
}

// DeleteBan queues a ban's removal.
func (s *Store) DeleteBan(p netip.Prefix) {
	s.mu.Lock()
	s.bans[p] = nil
	s.mu.Unlock()
}

// SaveHistory queues an offender's ban history (empty removes it).
func (s *Store) SaveHistory(p netip.Prefix, h []bans.Offence) {
	s.mu.Lock()
	s.history[p] = append([]bans.Offence(nil), h...)
	s.mu.Unlock()
}

// Err returns the last write error (a full disk, say), nil once a write
// succeeds again.
func (s *Store) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastErr
}

// Flush writes queued ban changes in one transaction. On failure (a full
// disk) the changes stay queued, in memory, for the next Flush.
func (s *Store) Flush() error {
	// One flush at a time: a Flush that returns has written everything
	// queued before it was called, even what another Flush had taken.
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	s.mu.Lock()
	if len(s.bans) == 0 && len(s.history) == 0 {
		s.mu.Unlock()
		return nil
	}
	pendingBans, pendingHist := s.bans, s.history
	s.bans, s.history = map[netip.Prefix]*bans.Ban{}, map[netip.Prefix][]bans.Offence{}
	s.mu.Unlock()

	err := s.db.Update(func(tx *bolt.Tx) error {
		bb, hb := tx.Bucket(bucketBans), tx.Bucket(bucketHistory)
		for p, b := range pendingBans {
			k := prefixKey(p)
			if b == nil {
				if err := bb.Delete(k); err != nil {
					return err
				}
				continue
			}
			if err := bb.Put(k, encodeBan(b)); err != nil {
				return err
			}
		}
		for p, h := range pendingHist {
			k := prefixKey(p)
			if len(h) == 0 {
				if err := hb.Delete(k); err != nil {
					return err
				}
				continue
			}
			v, err := json.Marshal(h)
			if err != nil {
				return err
			}
			if err := hb.Put(k, v); err != nil {
				return err
			}
		}
		return nil
	})
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		// Put back what was not written, under anything queued since.
		for p, b := range pendingBans {
			if _, newer := s.bans[p]; !newer {
				s.bans[p] = b
			}
		}
		for p, h := range pendingHist {
			if _, newer := s.history[p]; !newer {
				s.history[p] = h
			}
		}
		if s.lastErr == nil {
			s.log.Error("cannot write the state file; bans are kept in memory and written when it works again", "path", s.path, "err", err)
		}
		s.lastErr = fmt.Errorf("writing %s: %w", s.path, err)
		return s.lastErr
	}
	if s.lastErr != nil {
		s.log.Info("state file writable again", "path", s.path)
	}
	s.lastErr = nil
	return nil
}

// Bans returns the saved bans (expired ones included; the book drops them).
func (s *Store) Bans() ([]bans.Ban, error) {
	var out []bans.Ban
	err := s.db.View(func(tx *bolt.Tx) error {
		out = make([]bans.Ban, 0, tx.Bucket(bucketBans).Stats().KeyN)
		return tx.Bucket(bucketBans).ForEach(func(k, v []byte) error {
			p, ok := keyPrefix(k)
			b, err := decodeBan(v)
			if !ok || err != nil {
				s.log.Warn("skipping an unreadable ban record", "err", err)
				return nil
			}
			b.Prefix = p
			out = append(out, b)
			return nil
		})
	})
	return out, err
}

// History returns every offender's saved ban history.
func (s *Store) History() (map[netip.Prefix][]bans.Offence, error) {
	out := map[netip.Prefix][]bans.Offence{}
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketHistory).ForEach(func(k, v []byte) error {
			p, ok := keyPrefix(k)
			if !ok {
				return nil
			}
			var h []bans.Offence
			if json.Unmarshal(v, &h) == nil {
				out[p] = h
			}
			return nil
		})
	})
	return out, err
}

// SaveCheckpoint writes positions, windows and counters in one transaction,
// replacing the previous checkpoint.
func (s *Store) SaveCheckpoint(c Checkpoint) error {
	c.Saved = time.Now()
	v, err := json.Marshal(c)
	if err != nil {
		return err
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put([]byte("checkpoint"), v)
	})
	if err != nil {
		return fmt.Errorf("writing checkpoint to %s: %w", s.path, err)
	}
	return nil
}

// Checkpoint returns the last checkpoint (zero if none).
func (s *Store) Checkpoint() (Checkpoint, error) {
	var c Checkpoint
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketMeta).Get([]byte("checkpoint"))
		if v == nil {
			return nil
		}
		return json.Unmarshal(v, &c)
	})
	return c, err
}

// prefixKey encodes a prefix as 16 address bytes (IPv4 mapped) and the bits.
func prefixKey(p netip.Prefix) []byte {
	a := p.Addr().As16()
	k := make([]byte, 18)
	copy(k, a[:])
	bits := p.Bits()
	if p.Addr().Is4() {
		k[16] = 4
	} else {
		k[16] = 6
	}
	k[17] = byte(bits)
	return k
}

func keyPrefix(k []byte) (netip.Prefix, bool) {
	if len(k) != 18 {
		return netip.Prefix{}, false
	}
	a := netip.AddrFrom16([16]byte(k[:16]))
	if k[16] == 4 {
		a = a.Unmap()
	}
	return netip.PrefixFrom(a, int(k[17])), true
}

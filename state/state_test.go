package state

import (
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/band-project/band/bans"
)

var discard = slog.New(slog.DiscardHandler)

func TestBansHistoryAndCheckpointSurviveReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(discard, dir)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	b1 := bans.Ban{Prefix: netip.MustParsePrefix("192.0.2.7/32"), Jail: "auth", Start: now, Expiry: now.Add(time.Hour), Hits: 5, Reason: "line", Origin: bans.OriginJail}
	b2 := bans.Ban{Prefix: netip.MustParsePrefix("2001:db8::/64"), Jail: "flood", Start: now, Expiry: now.Add(time.Hour), Origin: bans.OriginManual}
	b3 := bans.Ban{Prefix: netip.MustParsePrefix("198.51.100.9/32"), Jail: "auth", Start: now, Expiry: now.Add(time.Hour)}
	s.PutBan(b1)
	s.PutBan(b2)
	s.PutBan(b3)
	s.DeleteBan(b3.Prefix)
	s.SaveHistory(b1.Prefix, []bans.Offence{{Jail: "auth", At: now}})
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	cp := Checkpoint{
		Positions: []Position{{Path: "/var/log/apache2/access.log", Dev: 1, Inode: 2, Offset: 300, FirstLine: 42}},
		Windows:   []Window{{Jail: "auth", Addr: "192.0.2.8", Times: []int64{1, 2, 3}}},
		Counters:  map[string]uint64{"lines/access": 10},
	}
	if err := s.SaveCheckpoint(cp); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = Open(discard, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.Bans()
	if err != nil || len(got) != 2 {
		t.Fatalf("bans %v, %v; want 2", got, err)
	}
	for _, b := range got {
		want := b1
		if b.Prefix == b2.Prefix {
			want = b2
		}
		if b.Prefix != want.Prefix || b.Jail != want.Jail || !b.Expiry.Equal(want.Expiry) || b.Hits != want.Hits || b.Origin != want.Origin {
			t.Errorf("ban %+v, want %+v", b, want)
		}
	}
	h, _ := s.History()
	if len(h) != 1 || len(h[b1.Prefix]) != 1 || h[b1.Prefix][0].Jail != "auth" {
		t.Errorf("history %v", h)
	}
	c, _ := s.Checkpoint()
	if len(c.Positions) != 1 || c.Positions[0].Offset != 300 || len(c.Windows) != 1 || c.Counters["lines/access"] != 10 {
		t.Errorf("checkpoint %+v", c)
	}
}

func TestCorruptFileMovedAside(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, FileName)
	if err := os.WriteFile(path, []byte(strings.Repeat("not a bbolt file ", 1000)), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Open(discard, dir)
	if err != nil {
		t.Fatalf("a corrupt file stopped the start: %v", err)
	}
	defer s.Close()
	if got, _ := s.Bans(); len(got) != 0 {
		t.Errorf("bans from a corrupt file: %v", got)
	}
	aside, _ := filepath.Glob(filepath.Join(dir, FileName+".corrupt-*"))
	if len(aside) != 1 {
		t.Errorf("corrupt file not moved aside: %v", aside)
	}
}

func TestFailedFlushKeepsChanges(t *testing.T) {
	s, err := Open(discard, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	b := bans.Ban{Prefix: netip.MustParsePrefix("192.0.2.7/32"), Jail: "auth", Expiry: time.Now().Add(time.Hour)}
	s.PutBan(b)
	// Close the database under the store: writes fail as on a full disk.
	s.db.Close()
	if err := s.Flush(); err == nil {
		t.Fatal("Flush on a closed file succeeded")
	}
	if s.Err() == nil {
		t.Error("the write error is not reported")
	}
	s.mu.Lock()
	_, kept := s.bans[b.Prefix]
	s.mu.Unlock()
	if !kept {
		t.Error("a ban that could not be written was dropped")
	}
}

func TestPrefixKey(t *testing.T) {
	for _, s := range []string{"192.0.2.7/32", "198.51.100.0/24", "2001:db8::1/128", "2001:db8::/64", "::ffff:0:0/96"} {
		p := netip.MustParsePrefix(s)
		got, ok := keyPrefix(prefixKey(p))
		if !ok || got != p {
			t.Errorf("round trip of %v gave %v", p, got)
		}
	}
}

// BenchmarkRestore100k measures a restart's work on the state file with
// 100k active bans: open, read every ban, and rebuild the book.
func BenchmarkRestore100k(b *testing.B) {
	dir := b.TempDir()
	s, err := Open(discard, dir)
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	for i := 0; i < 100000; i++ {
		a := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, byte(i >> 16), byte(i >> 8), byte(i)})
		s.PutBan(bans.Ban{Prefix: netip.PrefixFrom(a, 128), Jail: "flood", Start: now, Expiry: now.Add(time.Hour), Hits: 31, Reason: "198.51.100.66 - - [25/Nov/2026:10:00:00 +0000] \"GET /search HTTP/1.1\" 200 512", Origin: bans.OriginJail})
	}
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		s, err := Open(discard, dir)
		if err != nil {
			b.Fatal(err)
		}
		saved, err := s.Bans()
		if err != nil || len(saved) != 100000 {
			b.Fatalf("%d bans, %v", len(saved), err)
		}
		hist, _ := s.History()
		book := bans.New(discard, nil, bans.Options{Journal: s})
		if n := len(book.Restore(saved, hist)); n != 100000 {
			b.Fatalf("restored %d", n)
		}
		s.Close()
	}
}

func TestUnreadableFileIsNotMovedAside(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root reads any file")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, FileName)
	os.WriteFile(path, nil, 0o000)
	if _, err := Open(discard, dir); err == nil {
		t.Fatal("opened a file without permission")
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("the file was moved: %v", err)
	}
}

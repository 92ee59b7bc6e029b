package state

import (
	"encoding/binary"
	"errors"
	"time"

	"github.com/band-project/band/bans"
)

// banVersion is the first byte of an encoded ban.
const banVersion = 1

// encodeBan writes a ban compactly (the prefix is the record's key):
// version, start and expiry in unix nanoseconds, hits, then origin, jail and
// reason as length-prefixed strings. Loading 100k bans at start is then a
// matter of milliseconds.
func encodeBan(b *bans.Ban) []byte {
	out := make([]byte, 0, 1+8+8+4+3*2+len(b.Origin)+len(b.Jail)+len(b.Reason))
	out = append(out, banVersion)
	out = binary.BigEndian.AppendUint64(out, uint64(b.Start.UnixNano()))
	out = binary.BigEndian.AppendUint64(out, uint64(b.Expiry.UnixNano()))
	out = binary.BigEndian.AppendUint32(out, uint32(b.Hits))
	for _, s := range []string{string(b.Origin), b.Jail, b.Reason} {
		if len(s) > 0xffff {
			s = s[:0xffff]
		}
		out = binary.BigEndian.AppendUint16(out, uint16(len(s)))
		out = append(out, s...)
	}
	return out
}

var errShortBan = errors.New("truncated ban record")

func decodeBan(v []byte) (bans.Ban, error) {
	var b bans.Ban
	if len(v) < 21 || v[0] != banVersion {
		return b, errShortBan
	}
	b.Start = time.Unix(0, int64(binary.BigEndian.Uint64(v[1:])))
	b.Expiry = time.Unix(0, int64(binary.BigEndian.Uint64(v[9:])))
	b.Hits = int(binary.BigEndian.Uint32(v[17:]))
	v = v[21:]
	var strs [3]string
	for i := range strs {
		if len(v) < 2 {
			return b, errShortBan
		}
		n := int(binary.BigEndian.Uint16(v))
		if len(v) < 2+n {
			return b, errShortBan
		}
		strs[i] = string(v[2 : 2+n])
		v = v[2+n:]
	}
	b.Origin, b.Jail, b.Reason = bans.Origin(strs[0]), strs[1], strs[2]
	return b, nil
}

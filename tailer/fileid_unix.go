//go:build unix

package tailer

import (
	"os"
	"syscall"
)

// fileID identifies a file independently of its name.
type fileID struct{ dev, ino uint64 }

func fileIDOf(fi os.FileInfo) fileID {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fileID{}
	}
	// Dev and Ino are not uint64 on every unix.
	return fileID{dev: uint64(st.Dev), ino: uint64(st.Ino)}
}

// links returns the number of names fi has; 0 once the file was removed.
func links(fi os.FileInfo) uint64 {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 1
	}
	return uint64(st.Nlink)
}

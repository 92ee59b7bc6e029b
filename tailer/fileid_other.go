//go:build !unix

package tailer

import "os"

// fileID identifies a file independently of its name. Outside unix there is
// no device and inode: every file looks the same, so rename rotation is not
// detected there (band runs on Linux).
type fileID struct{ dev, ino uint64 }

func fileIDOf(os.FileInfo) fileID { return fileID{} }

func links(os.FileInfo) uint64 { return 1 }

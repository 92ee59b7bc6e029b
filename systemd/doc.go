// Package systemd holds band's unit file, band.service; its tests check the
// unit with systemd-analyze (verify, and the sandbox's exposure score).
package systemd

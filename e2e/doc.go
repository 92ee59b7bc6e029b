// Package e2e holds band's end-to-end scenario: Debian's Apache, tuned for
// ~4000 connections, serving legitimate clients in a network namespace while
// a flood, a scanner and a password brute-forcer are banned in the kernel by
// the real band binary. The package has only tests; they need root and
// apache2, and skip without root.
package e2e

//go:build armbe || arm64be || m68k || mips || mips64 || mips64p32 || ppc || ppc64 || s390 || s390x || shbe || sparc || sparc64

package ring

// Segments are little-endian (docs/layout.md), and this package accesses
// their words atomically in the machine's own byte order: built for a
// big-endian machine it would write segments that follow no documented
// layout, and misread every other writer's. So it does not build there; the
// compiler's message is the name below ("undefined: ...").
var _ = shmring_refuses_big_endian_machines_segments_are_little_endian_see_docs_layout_md

/* ringread: a consumer for a shmring SPSC ring written from docs/layout.md
 * alone, as a check that the document is enough. It validates the segment
 * header and the ring descriptor, prints every pending message on its own
 * line, and releases them by storing the consumer position. It reads plain
 * SPSC rings (version 1, no flags) and header-commit ones (version 2, flag
 * bit 3), and refuses everything else.
 * Usage: ringread PATH.  Exit 0 on success, 1 on a refused segment. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static uint32_t crc32c(const uint8_t *p, size_t n) {
	uint32_t c = 0xFFFFFFFFu;
	while (n--) {
		c ^= *p++;
		for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1)));
	}
	return c ^ 0xFFFFFFFFu;
}
/* The layout is little-endian; this check runs on little-endian hosts only. */
static uint64_t u64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }
static uint32_t u32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static int refuse(const char *why) { fprintf(stderr, "ringread: %s\n", why); return 1; }

int main(int argc, char **argv) {
	if (argc != 2) return refuse("usage: ringread PATH");
	int fd = open(argv[1], O_RDWR | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) return refuse("open failed");
	struct stat st;
	if (fstat(fd, &st) != 0 || st.st_size < 4096) return refuse("file too small");
	uint8_t h[4096];
	if (pread(fd, h, sizeof h, 0) != (ssize_t)sizeof h) return refuse("short header");
	if (memcmp(h, "SHMSEG\0\1", 8) != 0) return refuse("bad magic");
	if (u32(h + 8) != 0x01020304u) return refuse("byte order");
	if (u32(h + 12) != 1) return refuse("header version");
	if (u32(h + 72) != crc32c(h, 72)) return refuse("header checksum");
	uint64_t body = u64(h + 32), total = u64(h + 40);
	if (u64(h + 16) != 4096 || u64(h + 24) != 4096 || total != 4096 + body || (uint64_t)st.st_size != total)
		return refuse("geometry");
	uint8_t *m = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED) return refuse("mmap");
	uint8_t *r = m + 4096; /* the region */
	if (u64(r) != 0x00474E49524D4853ull) return refuse("ring magic");
	uint32_t version = u32(r + 8);
	uint64_t flags = u64(r + 40);
	int hc = version == 2 && flags == 8; /* header commit */
	if (!(version == 1 && flags == 0) && !hc) return refuse("ring version or flags this reader does not know");
	if (u32(r + 12) != 1) return refuse("kind not spsc");
	if (u32(r + 60) != crc32c(r, 60)) return refuse("ring checksum");
	uint64_t cap = u64(r + 16), maxmsg = u64(r + 24), dataoff = u64(r + 32);
	if (cap < 1024 || (cap & (cap - 1)) || maxmsg > cap / 8 || dataoff != 4096 ||
	    u64(r + 48) != 0 || u32(r + 56) != 0 || body < dataoff + cap)
		return refuse("ring geometry");
	uint64_t *prod = (uint64_t *)(r + 128), *cons = (uint64_t *)(r + 256);
	uint8_t *data = r + dataoff;
	uint64_t p = __atomic_load_n(prod, __ATOMIC_ACQUIRE);
	uint64_t c = __atomic_load_n(cons, __ATOMIC_RELAXED);
	if (p - c > cap || (p & 7) || (c & 7)) return refuse("positions");
	/* Plain: read up to the producer position. Header commit: read while
	 * the header at the position is non-zero, never a capacity or more
	 * past the position released last. */
	uint64_t end = hc ? c + cap : p;
	while (c != end) {
		uint64_t i = c & (cap - 1);
		uint64_t hdr = __atomic_load_n((uint64_t *)(data + i), __ATOMIC_ACQUIRE);
		if (hc && hdr == 0) break;
		uint64_t len = hdr & 0xFFFFFFFFu, type = (hdr >> 48) & 0xFF;
		uint64_t size = (8 + len + 7) & ~7ull;
		if ((hdr >> 56) || size > end - c || i + size > cap) return refuse("record header");
		if (type == 1) {
			if (len > maxmsg) return refuse("record length");
			fwrite(data + i + 8, 1, len, stdout);
			fputc('\n', stdout);
		} else if (type != 2) {
			return refuse("record type");
		}
		c += size;
	}
	__atomic_store_n(cons, c, __ATOMIC_RELEASE);
	return 0;
}

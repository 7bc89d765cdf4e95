/* ringread: a producer and consumer for every kind of shmring ring, written
 * from docs/layout.md alone, as a check that the document is enough to read
 * AND write a ring from another language. Each comment "§..." names the
 * part of the document a piece follows.
 *
 *   ringread PATH
 *       consume every message pending now, print each on its own line, exit
 *       (plain and header-commit SPSC rings only: the original reader).
 *   ringread read PATH END [GATE]
 *       take the consumer role and consume, waiting (parking on the futex
 *       when the ring is empty), until a message whose payload is END has
 *       been delivered. Each message is printed on its own line, prefixed
 *       with its sequence number and a space in rings with sequences.
 *       GATE = "gate": read nothing before a producer has parked (line 6
 *       parked = 1), so that this process must wake it.
 *   ringread write PATH TAG FIRST COUNT [GATE]
 *       take the producer role (SPSC) or a free slot (MPSC) and write the
 *       messages FIRST .. FIRST+COUNT-1 (payload "TAG k ", then k%61 filler
 *       letters), waiting (parking) when the ring is full, or reclaiming
 *       the oldest records in drop-oldest rings. Every 7th message is a
 *       claim of more bytes committed short, every 11th a claim aborted
 *       first (so both kinds of padding are written). GATE = "gate": after
 *       the first half, wait until the consumer sleeps (line 5: parked = 1
 *       and a new park counted), so that the next write must wake it.
 *
 * Exit 0 on success, 1 on a refused segment or a protocol error, 2 on
 * misuse; SIGALRM (60 s) ends a run that cannot finish. Little-endian
 * hosts only (§ preamble). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <linux/membarrier.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "shmring segments are little-endian; this program reads them natively"
#endif

static uint32_t crc32c(const uint8_t *p, size_t n) {
	uint32_t c = 0xFFFFFFFFu;
	while (n--) {
		c ^= *p++;
		for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1)));
	}
	return c ^ 0xFFFFFFFFu;
}
static uint64_t u64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }
static uint32_t u32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static void put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }
static int fail(const char *why) { fprintf(stderr, "ringread: %s\n", why); exit(1); }

/* The ring, as validated from its descriptor. */
static int fd;
static uint8_t *R, *data; /* the region (file offset 4096) and the data area */
static uint64_t cap, mask, maxmsg, E;
static uint32_t kind, slots;
static int ts, seqs, ow, hc, bell;
static char ring_dir[4096]; /* the directory of the path we opened (§Line 15) */
static uid_t ring_uid;      /* the ring file's owner */

/* §Atomicity: shared words only through atomics of their own width. */
static uint64_t *W(uint64_t off) { return (uint64_t *)(R + off); }
static uint32_t *W32(uint64_t off) { return (uint32_t *)(R + off); }
static uint64_t *H(uint64_t pos) { return (uint64_t *)(data + (pos & mask)); }
static uint64_t ld(uint64_t *w) { return __atomic_load_n(w, __ATOMIC_ACQUIRE); }
static void st(uint64_t *w, uint64_t v) { __atomic_store_n(w, v, __ATOMIC_RELEASE); }
static int cas(uint64_t *w, uint64_t old, uint64_t v) {
	return __atomic_compare_exchange_n(w, &old, v, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
}
/* Single-writer counters: load, then release store of the sum (§Line 3). */
static void bump(uint64_t off, uint64_t n) { st(W(off), ld(W(off)) + n); }

/* §3 Data area: header word, sizes. */
static uint64_t mkhdr(uint64_t len, uint64_t slot, uint64_t type) { return len | slot << 32 | type << 48; }
static uint64_t hlen(uint64_t h) { return h & 0xFFFFFFFFu; }
static unsigned htype(uint64_t h) { return (h >> 48) & 0xFF; }
static uint64_t hslot(uint64_t h) { return (h >> 32) & 0xFFFF; }
static uint64_t D(uint64_t len) { return (8 + E + len + 7) & ~7ull; }    /* data / pending */
static uint64_t PADSZ(uint64_t len) { return (8 + len + 7) & ~7ull; }   /* padding */
static uint64_t recsize(uint64_t h) { return htype(h) == 1 ? D(hlen(h)) : PADSZ(hlen(h)); }

enum { PROD = 128, CONS = 256, MSGS_IN = 384, BYTES_IN = 392, DROPS = 408, LAST_SEQ = 432, BEGUN_SEQ = 448,
       MSGS_OUT = 512, BYTES_OUT = 520, HIGH_WATER = 528, ZERO_END = 552, DELIV_SEQ = 560,
       DUPS = 568, LAPPED = 576, CONS_WAIT = 640, PROD_WAIT = 768, RELEASE_LOCK = 904,
       WINDOW = 1024, P_HIGH = 1032, P_LOW = 1040, PRESSURE = 1048, P_CHANGES = 1056,
       SLOTS = 4096 };
enum { S_PID = 0, S_START = 8, S_BEAT = 16, S_IPOS = 24, S_ILEN = 32, S_MSGS = 40, S_BYTES = 48,
       S_DROPS = 64, S_LOST = 80, S_LAST_SEQ = 96, S_DELIV_SEQ = 104, S_PIDNS = 120 };
static uint64_t slotw(uint64_t k, uint64_t off) { return SLOTS + 128 * k + off; }

/* §1 and §2: validate the header page and the descriptor, in the documented
 * order, then map the file. */
static void open_ring(const char *path) {
	fd = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) fail("open failed");
	struct stat sb;
	if (fstat(fd, &sb) != 0 || sb.st_size < 4096) fail("file too small");
	ring_uid = sb.st_uid;
	const char *slash = strrchr(path, '/');
	size_t dl = slash == NULL ? 0 : slash == path ? 1 : (size_t)(slash - path);
	if (dl >= sizeof ring_dir) fail("path too long");
	if (slash == NULL) strcpy(ring_dir, ".");
	else memcpy(ring_dir, path, dl), ring_dir[dl] = 0;
	uint8_t h[4096];
	if (pread(fd, h, sizeof h, 0) != (ssize_t)sizeof h) fail("short header");
	if (memcmp(h, "SHMSEG\0\1", 8) != 0) fail("bad magic");
	if (u32(h + 8) != 0x01020304u) fail("byte order");
	if (u32(h + 12) != 1) fail("header version");
	if (u32(h + 72) != crc32c(h, 72)) fail("header checksum");
	uint64_t body = u64(h + 32), total = u64(h + 40);
	if (u64(h + 16) != 4096 || u64(h + 24) != 4096) fail("geometry");
	if (body > (1ull << 48) || total != 4096 + body) fail("geometry");
	if (u64(h + 64) != 0) fail("header flags");
	if ((uint64_t)sb.st_size < total) fail("truncated");
	if ((uint64_t)sb.st_size != total) fail("geometry");
	uint8_t *m = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED) fail("mmap");
	R = m + 4096;
	if (body < 4096) fail("region too small");
	if (u64(R) != 0x00474E49524D4853ull) fail("ring magic");
	uint32_t version = u32(R + 8);
	if (version != 1 && version != 2) fail("ring version");
	kind = u32(R + 12);
	if (kind != 1 && kind != 2) fail("kind");
	if (u32(R + 60) != crc32c(R, 60)) fail("ring checksum");
	cap = u64(R + 16), maxmsg = u64(R + 24);
	if (cap < 1024 || cap > (1ull << 46) || (cap & (cap - 1))) fail("capacity");
	if (maxmsg > cap / 8 || maxmsg > 0x7FFFFFFFu) fail("max message");
	uint64_t flags = u64(R + 40);
	if (flags & ~31ull) fail("flags");
	ts = flags & 1, seqs = (flags >> 1) & 1, ow = (flags >> 2) & 1, hc = (flags >> 3) & 1, bell = (flags >> 4) & 1;
	if (hc && (kind != 1 || ow)) fail("flags");
	if (version != ((kind == 2 && ow) || hc ? 2u : 1u)) fail("version does not match kind and flags");
	uint64_t slotsoff = u64(R + 48);
	slots = u32(R + 56);
	if (kind == 1 && (slotsoff != 0 || slots != 0)) fail("slots");
	if (kind == 2 && (slotsoff != 4096 || slots < 1 || slots > 4096)) fail("slots");
	uint64_t dataoff = kind == 1 ? 4096 : (4096 + slots * 128ull + 4095) & ~4095ull;
	if (u64(R + 32) != dataoff) fail("data offset");
	if (body < dataoff + cap) fail("region size");
	data = R + dataoff;
	mask = cap - 1;
	E = 8 * (ts + seqs);
}

/* §4: role locks. */
static int lock_range(uint64_t region_off) {
	struct flock l = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 4096 + region_off, .l_len = 128};
	return fcntl(fd, F_OFD_SETLK, &l) == 0;
}
static int held(uint64_t region_off) { /* by another open file description */
	struct flock l = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 4096 + region_off, .l_len = 128};
	if (fcntl(fd, F_OFD_GETLK, &l) != 0) return 1; /* cannot tell: alive */
	return l.l_type != F_UNLCK;
}

/* §Lines 5 and 6: the waiting protocol. */
static int barrier_ok;
static void register_barrier(void) {
	long q = syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0);
	barrier_ok = q >= 0 && (q & MEMBARRIER_CMD_GLOBAL_EXPEDITED) &&
	             syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED, 0) == 0;
}
static void wake(uint64_t line) {
	uint32_t *parked = W32(line + 4), *seq = W32(line), one = 1;
	if (__atomic_load_n(parked, __ATOMIC_RELAXED) == 0) return;
	if (!__atomic_compare_exchange_n(parked, &one, 0, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) return;
	__atomic_add_fetch(seq, 1, __ATOMIC_SEQ_CST);
	syscall(SYS_futex, seq, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
	__atomic_add_fetch(W(line + 16), 1, __ATOMIC_SEQ_CST);
}
/* §Line 15: doorbell. A producer of a ring with flag bit 4 rings the
 * doorbell line 15 names instead of line 5; the path is built from the
 * directory of the ring path we opened and the id, never read from the
 * segment; the file is validated; any failure counts in line 15 and falls
 * back to line 5, and the same id is not tried again for 100 ms. */
enum { BELL_ID = 1920, BELL_WAKES = 1928, BELL_FAILS = 1936 };
static uint64_t bell_id, bell_fail_id;
static uint8_t *bell_mem;
static struct timespec bell_fail_at;
static uint8_t *open_bell(uint64_t id) {
	if (id == bell_id) return bell_mem;
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (id == bell_fail_id && (now.tv_sec - bell_fail_at.tv_sec) * 1000000000ll + (now.tv_nsec - bell_fail_at.tv_nsec) < 100000000ll)
		return NULL;
	if (bell_mem) munmap(bell_mem, 4096), bell_mem = NULL, bell_id = 0;
	char path[4200];
	snprintf(path, sizeof path, "%s/shmring-doorbell-%016llx", ring_dir, (unsigned long long)id);
	int bfd = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	uint8_t *m = MAP_FAILED;
	struct stat sb;
	if (bfd >= 0 && fstat(bfd, &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_size == 4096 && sb.st_uid == ring_uid)
		m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, bfd, 0);
	if (bfd >= 0) close(bfd);
	if (m != MAP_FAILED && memcmp(m, "SHMRDBEL", 8) == 0 && u32(m + 8) == 1 && u64(m + 16) == id) {
		bell_id = id, bell_mem = m;
		return m;
	}
	if (m != MAP_FAILED) munmap(m, 4096);
	__atomic_add_fetch(W(BELL_FAILS), 1, __ATOMIC_SEQ_CST);
	bell_fail_id = id, bell_fail_at = now;
	return NULL;
}
/* §Waking, with bit 4: the producer's wake of the consumer. */
static void wake_consumer(void) {
	if (!bell) {
		wake(CONS_WAIT);
		return;
	}
	uint32_t *parked = W32(CONS_WAIT + 4), *seq = W32(CONS_WAIT), one = 1;
	if (__atomic_load_n(parked, __ATOMIC_RELAXED) == 0) return;
	if (!__atomic_compare_exchange_n(parked, &one, 0, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) return;
	uint64_t id = __atomic_load_n(W(BELL_ID), __ATOMIC_ACQUIRE);
	uint8_t *b = id ? open_bell(id) : NULL;
	__atomic_add_fetch(seq, 1, __ATOMIC_SEQ_CST);
	if (b == NULL) { /* no doorbell, or not one we may ring: line 5 */
		syscall(SYS_futex, seq, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
		__atomic_add_fetch(W(CONS_WAIT + 16), 1, __ATOMIC_SEQ_CST);
		return;
	}
	uint32_t *bseq = (uint32_t *)(b + 64), *bparked = (uint32_t *)(b + 68);
	one = 1;
	if (__atomic_load_n(bparked, __ATOMIC_RELAXED) == 0) return;
	if (!__atomic_compare_exchange_n(bparked, &one, 0, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) return;
	__atomic_add_fetch(bseq, 1, __ATOMIC_SEQ_CST);
	syscall(SYS_futex, bseq, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
	__atomic_add_fetch((uint64_t *)(b + 72), 1, __ATOMIC_SEQ_CST);
	__atomic_add_fetch(W(BELL_WAKES), 1, __ATOMIC_SEQ_CST);
}

/* One sleep: returns 1 if try() succeeded on the re-check. */
static int park(uint64_t line, int (*try)(void)) {
	uint32_t *seq = W32(line), *parked = W32(line + 4);
	uint32_t s = __atomic_load_n(seq, __ATOMIC_SEQ_CST);
	__atomic_store_n(parked, 1, __ATOMIC_SEQ_CST);
	int exact = barrier_ok && syscall(SYS_membarrier, MEMBARRIER_CMD_GLOBAL_EXPEDITED, 0) == 0;
	if (try()) return 1;
	__atomic_add_fetch(W(line + 8), 1, __ATOMIC_SEQ_CST);
	struct timespec t = {0, exact ? 100000000 : 1000000};
	syscall(SYS_futex, seq, FUTEX_WAIT, s, &t, NULL, 0);
	return 0;
}

/* §Line 4 and §Line 8: high watermark, pressure. */
static void raise_hw(uint64_t depth) {
	for (;;) {
		uint64_t cur = ld(W(HIGH_WATER));
		if (depth <= cur || cas(W(HIGH_WATER), cur, depth)) return;
	}
}
static void pressure(int raise, uint64_t depth) {
	uint32_t *pw = W32(PRESSURE);
	uint64_t high = ld(W(P_HIGH)), low = ld(W(P_LOW));
	for (;;) {
		uint32_t old = __atomic_load_n(pw, __ATOMIC_ACQUIRE), v;
		if (raise) {
			if (high == 0 || depth < high || (old & 1)) return;
			v = old | 1;
		} else {
			if (!(old & 1) || (high != 0 && depth > low)) return;
			v = old & ~1u;
		}
		if (__atomic_compare_exchange_n(pw, &old, v, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {
			__atomic_add_fetch(W(P_CHANGES), 1, __ATOMIC_SEQ_CST);
			return;
		}
	}
}
static uint64_t limit(void) {
	uint64_t c = hc ? cap - 8 : cap, w = ld(W(WINDOW));
	return w != 0 && w < c ? w : c;
}

/* §Overwrite rings, MPSC: the release lock. */
static uint64_t my_id;
static void release_range(uint64_t from, uint64_t to) {
	st(W(ZERO_END), to);
	for (uint64_t p = from; p != to; p += 8) st(H(p), 0);
	st(W(CONS), to);
}
static void finish_release(void) {
	uint64_t c = ld(W(CONS)), z = ld(W(ZERO_END));
	if (z == c) return;
	uint64_t p = ld(W(PROD));
	if (z - c > p - c || p - c > cap || (z & 7) || (c & 7)) fail("zeroing mark inconsistent");
	release_range(c, z);
}
static int lock_release(void) {
	for (int i = 0;; i++) {
		uint64_t h = ld(W(RELEASE_LOCK));
		if (h == 0) {
			if (cas(W(RELEASE_LOCK), 0, my_id)) break;
			continue;
		}
		if (h == my_id) break; /* our predecessor in this role died holding it */
		if (i < 256) { sched_yield(); continue; }
		int known = h == (1ull << 32) || h - 1 < slots;
		uint64_t line = h == (1ull << 32) ? CONS : slotw(h - 1, 0);
		if (known && held(line)) return 0;
		if (cas(W(RELEASE_LOCK), h, my_id)) break;
	}
	finish_release();
	return 1;
}
static void unlock_release(void) { st(W(RELEASE_LOCK), 0); }

/* ---------------------------------------------------------------- writing */

static uint64_t pos, ccache, seq, slot;
static char msgbuf[1 << 16];

static uint64_t now_mono(void) {
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000ull + t.tv_nsec;
}
/* Extras then payload of a record at position rec (§Sizes). */
static void fill(uint64_t rec, const char *msg, uint64_t n) {
	uint8_t *r = data + (rec & mask);
	memcpy(r + 8 + E, msg, n);
	if (ts) put64(r + 8, now_mono());
	if (seqs) put64(r + 8 + 8 * ts, seq);
}

enum { OK, FULL, ABORTED };

/* §Writing (SPSC producer). claim >= n is the length reserved: a claim
 * committed short; abort: the claim is abandoned. */
static int spsc_write(const char *msg, uint64_t n, uint64_t claim, int abort) {
	uint64_t size = D(claim), tail = cap - (pos & mask);
	uint64_t total = size > tail ? tail + size : size;
	if (pos + total - ccache > limit()) {
		uint64_t c = ld(W(CONS));
		if (pos - c > cap || (c & 7)) fail("consumer position inconsistent");
		ccache = c;
		raise_hw(pos - c);
		pressure(1, pos + total - c);
		if (pos + total - c > limit()) return FULL;
	}
	uint64_t rec = pos;
	if (size > tail) {
		if (!hc) st(H(pos), mkhdr(tail - 8, 0, 2));
		rec += tail;
	}
	if (abort) return ABORTED; /* nothing published */
	fill(rec, msg, n);
	uint64_t next = rec + D(n);
	if (seqs) st(W(BEGUN_SEQ), seq); /* §Writing (SPSC) 3: begun before the record can be committed */
	if (hc) st(H(next), 0); /* §Header-commit 2: the next header reads zero */
	st(H(rec), mkhdr(n, 0, 1));
	if (hc && size > tail) st(H(pos), mkhdr(tail - 8, 0, 2)); /* §Header-commit 3 */
	pos = next;
	st(W(PROD), pos);
	bump(MSGS_IN, 1), bump(BYTES_IN, n);
	if (seqs) st(W(LAST_SEQ), seq++);
	wake_consumer();
	return OK;
}

/* §Writing (MPSC producer holding slot s). */
static int mpsc_write(const char *msg, uint64_t n, uint64_t claim, int abort) {
	for (;;) {
		uint64_t P = ld(W(PROD));
		uint64_t size = D(claim), tail = cap - (P & mask);
		uint64_t total = size > tail ? tail + size : size;
		if (P - ccache > cap || P + total - ccache > limit()) {
			uint64_t c = ld(W(CONS));
			if (P - c > cap) {
				uint64_t P2 = ld(W(PROD));
				if (ld(W(CONS)) == c && (P2 - c > cap || (c & 7))) fail("positions inconsistent");
				continue;
			}
			ccache = c;
			pressure(1, P + total - c);
			if (P + total - c > limit()) {
				raise_hw(P - c);
				return FULL;
			}
		}
		st(W(slotw(slot, S_ILEN)), total);
		st(W(slotw(slot, S_IPOS)), P);
		if (!cas(W(PROD), P, P + total)) {
			st(W(slotw(slot, S_ILEN)), 0);
			continue;
		}
		uint64_t rec = P;
		if (size > tail) {
			st(H(P), mkhdr(tail - 8, slot, 2));
			rec += tail;
		}
		st(H(rec), mkhdr(claim, slot, 3));
		if (abort) {
			st(H(rec), mkhdr(D(claim) - 8, slot, 2)); /* §Claims: padding of the whole size */
			wake_consumer();
			return ABORTED;
		}
		fill(rec, msg, n);
		uint64_t rest = D(claim) - D(n);
		if (rest) st(H(rec + D(n)), mkhdr(rest - 8, slot, 2));
		bump(slotw(slot, S_MSGS), 1), bump(slotw(slot, S_BYTES), n);
		if (seqs) st(W(slotw(slot, S_LAST_SEQ)), seq++); /* §Writing (MPSC) 6: begun, before the commit */
		st(H(rec), mkhdr(n, slot, 1));
		wake_consumer();
		return OK;
	}
}

/* §Overwrite rings, SPSC producer: reclaim until total bytes fit. */
static int spsc_reclaim(uint64_t claim) {
	uint64_t size = D(claim), tail = cap - (pos & mask);
	uint64_t total = size > tail ? tail + size : size, L = limit();
	for (;;) {
		uint64_t c = ld(W(CONS)), t = c, dropped = 0;
		if (pos - c > cap || (c & 7)) fail("consumer position inconsistent");
		while (pos + total - t > L && t != pos) {
			uint64_t h = ld(H(t)), sz = recsize(h);
			if (htype(h) == 1) dropped++;
			if (sz == 0 || sz > pos - t || (t & mask) + sz > cap) fail("record header while reclaiming");
			t += sz;
		}
		if (pos + total - t > L) return 0;
		if (cas(W(CONS), c, t)) {
			ccache = t;
			bump(DROPS, dropped);
			return 1;
		}
	}
}

/* §Overwrite rings, MPSC producer: reclaim under the release lock. */
static void mpsc_reclaim(uint64_t claim) {
	uint64_t c = ld(W(CONS));
	unsigned t0 = htype(ld(H(c)));
	if (t0 != 1 && t0 != 2 && ld(W(ZERO_END)) == c) return;
	if (!lock_release()) return;
	c = ld(W(CONS));
	uint64_t P = ld(W(PROD));
	if (P - c > cap || (c & 7)) fail("positions inconsistent");
	uint64_t size = D(claim), tail = cap - (P & mask);
	uint64_t total = size > tail ? tail + size : size, L = limit(), t = c, dropped = 0;
	while (P + total - t > L && t != P) {
		uint64_t h = ld(H(t));
		if (htype(h) != 1 && htype(h) != 2) break;
		uint64_t sz = recsize(h);
		if ((h >> 56) || sz > P - t || (t & mask) + sz > cap) fail("record header while reclaiming");
		if (htype(h) == 1) dropped++;
		t += sz;
	}
	if (t != c) {
		release_range(c, t);
		ccache = t;
		bump(slotw(slot, S_DROPS), dropped);
	}
	unlock_release();
}

static const char *w_msg;
static uint64_t w_n, w_claim;
static int w_abort, w_result;
static int try_write(void) {
	w_result = kind == 1 ? spsc_write(w_msg, w_n, w_claim, w_abort) : mpsc_write(w_msg, w_n, w_claim, w_abort);
	return w_result != FULL;
}
/* Write, waiting for room (or reclaiming it in drop-oldest rings). */
static void write_msg(const char *msg, uint64_t n, uint64_t claim, int abort) {
	w_msg = msg, w_n = n, w_claim = claim, w_abort = abort;
	for (int attempt = 0;; attempt++) {
		if (try_write() || abort) return; /* a claim that finds no room is not aborted */
		if (ow && kind == 1) {
			if (!spsc_reclaim(claim)) fail("record cannot fit");
		} else if (ow) {
			mpsc_reclaim(claim);
			if (attempt >= 8) { /* §Overwrite MPSC 5: give up, counted */
				bump(slotw(slot, S_DROPS), 1);
				return;
			}
			sched_yield();
		} else {
			if (park(PROD_WAIT, try_write)) return;
		}
	}
}

static uint64_t start_time(void) {
	char b[4096];
	int f = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
	ssize_t n = f < 0 ? -1 : read(f, b, sizeof b - 1);
	if (f >= 0) close(f);
	if (n <= 0) fail("read /proc/self/stat");
	b[n] = 0;
	char *p = strrchr(b, ')');
	if (!p) fail("parse /proc/self/stat");
	for (int field = 2; field < 22; field++) { /* p is at the end of field 2 */
		p = strchr(p + 1, ' ');
		if (!p) fail("parse /proc/self/stat");
	}
	return strtoull(p + 1, NULL, 10);
}

static int run_write(const char *tag, uint64_t first, uint64_t count, int gate) {
	if (kind == 1) {
		if (!lock_range(PROD)) fail("the producer role is held");
		pos = ld(W(PROD));
		if (pos & 7) fail("producer position not aligned");
		if (hc) { /* §Header-commit 5: resume at the end of the committed chain */
			uint64_t c = ld(W(CONS)), p = pos;
			if (p - c > cap) p = c;
			while (p - c < cap) {
				uint64_t h = ld(H(p));
				if (htype(h) == 0) break;
				uint64_t sz = recsize(h);
				if ((htype(h) != 1 && htype(h) != 2) || (h >> 56) || (p & mask) + sz > cap || p + sz - c > cap)
					fail("committed chain");
				p += sz;
			}
			if (p != pos) st(W(PROD), pos = p);
		}
		ccache = ld(W(CONS));
		if (pos - ccache > cap || (ccache & 7)) fail("positions inconsistent");
		raise_hw(pos - ccache);
		{ /* §Sequences across a producer's death: from the larger of begun and committed */
			uint64_t b = ld(W(BEGUN_SEQ)), l = ld(W(LAST_SEQ));
			seq = (b > l ? b : l) + 1;
		}
	} else {
		for (slot = 0; slot < slots && !lock_range(slotw(slot, 0)); slot++) {}
		if (slot == slots) fail("every producer slot is held");
		my_id = slot + 1;
		struct timespec rt;
		clock_gettime(CLOCK_REALTIME, &rt);
		st(W(slotw(slot, S_PID)), (uint64_t)getpid());
		st(W(slotw(slot, S_START)), start_time());
		/* §Writing (MPSC) Taking the slot 2: the PID namespace, 0 if unreadable. */
		struct stat nsb;
		st(W(slotw(slot, S_PIDNS)), stat("/proc/self/ns/pid", &nsb) == 0 ? (uint64_t)nsb.st_ino : 0);
		st(W(slotw(slot, S_BEAT)), (uint64_t)rt.tv_sec * 1000000000ull + rt.tv_nsec);
		st(W(slotw(slot, S_ILEN)), 0);
		st(W(slotw(slot, S_IPOS)), 0);
		for (;;) {
			uint64_t c = ld(W(CONS)), p = ld(W(PROD));
			if (ld(W(CONS)) != c) continue;
			if (p - c > cap || (c & 7) || (p & 7)) fail("positions inconsistent");
			ccache = c;
			break;
		}
		seq = ld(W(slotw(slot, S_LAST_SEQ))) + 1;
	}
	for (uint64_t k = first; k < first + count; k++) {
		if (gate && k == first + count / 2) {
			/* Wait (bounded by the alarm) for the consumer to go to sleep:
			 * parked set, and a park counted after we began to wait (it
			 * counts a park after its re-check, just before FUTEX_WAIT). */
			uint64_t parks = ld(W(CONS_WAIT + 8));
			while (__atomic_load_n(W32(CONS_WAIT + 4), __ATOMIC_ACQUIRE) == 0 || ld(W(CONS_WAIT + 8)) == parks)
				sched_yield();
		}
		int n = snprintf(msgbuf, sizeof msgbuf, "%s %llu ", tag, (unsigned long long)k);
		for (uint64_t j = 0; j < k % 61; j++) msgbuf[n++] = 'a' + (k + j) % 26;
		if ((uint64_t)n > maxmsg) fail("message larger than the ring's max message");
		uint64_t more = k % 11 == 5 ? (k % 3) * 8 + 1 : k % 7 == 3 ? 13 : 0;
		uint64_t claim = n + more < maxmsg ? n + more : maxmsg;
		if (k % 11 == 5) write_msg(msgbuf, n, claim, 1);
		write_msg(msgbuf, n, claim, 0);
	}
	return 0;
}

/* ---------------------------------------------------------------- reading */

static uint64_t cpos;          /* the consumer's read position */
static const char *endmsg;
static int done;
static uint8_t *copybuf;

/* §Sequences: the duplicate check; returns 1 to skip. */
static int duplicate(uint64_t s, uint64_t h) {
	uint64_t off = DELIV_SEQ;
	if (kind == 2) {
		if (hslot(h) >= slots) return 0;
		off = slotw(hslot(h), S_DELIV_SEQ);
	}
	if (s <= ld(W(off))) {
		bump(DUPS, 1);
		return 1;
	}
	st(W(off), s);
	return 0;
}
static void deliver(const uint8_t *extras, uint64_t h) {
	uint64_t n = hlen(h);
	if (seqs) printf("%llu ", (unsigned long long)u64(extras + 8 * ts));
	fwrite(extras + E, 1, n, stdout);
	fputc('\n', stdout);
	if (endmsg && n == strlen(endmsg) && memcmp(extras + E, endmsg, n) == 0) done = 1;
}

/* §Reading, and §Header-commit rings: one batch; returns messages delivered. */
static int read_batch(void) {
	uint64_t start = cpos, bytes = 0;
	int n = 0;
	uint64_t p = 0;
	if (!hc) {
		p = ld(W(PROD));
		if (p - cpos > cap || (p & 7)) fail("producer position inconsistent");
		if (p != cpos) raise_hw(p - cpos);
		pressure(0, p - cpos);
	}
	while (!done) {
		uint64_t avail = hc ? cap - (cpos - start) : p - cpos;
		if (avail == 0) break;
		uint64_t i = cpos & mask, h = ld(H(cpos));
		unsigned t = htype(h);
		if (t == 0 || t == 3) {
			if (kind == 1 && (!hc || t == 3)) fail("uncommitted record header in an spsc ring");
			break;
		}
		uint64_t size = recsize(h);
		if ((h >> 56) || size > avail || i + size > cap) fail("record header");
		if (t == 1) {
			if (hlen(h) > maxmsg) fail("record length");
			if (!(seqs && duplicate(u64(data + i + 8 + 8 * ts), h))) {
				deliver(data + i + 8, h);
				n++, bytes += hlen(h);
			}
		} else if (t != 2) {
			fail("record type");
		}
		cpos += size;
	}
	if (cpos != start) {
		if (kind == 2) release_range(start, cpos);
		else st(W(CONS), cpos);
		if (hc) {
			uint64_t pp = ld(W(PROD)); /* sample the depth every batch: simple */
			if (pp - cpos <= cap && !(pp & 7)) {
				raise_hw(pp - start);
				pressure(0, pp - cpos);
			}
		}
	}
	if (n) bump(MSGS_OUT, n), bump(BYTES_OUT, bytes);
	if (cpos != start) wake(PROD_WAIT); /* released room, delivered or not (§Waking) */
	return n;
}

/* §Overwrite rings: one record per release, from a copy. */
static int read_overwrite(void) {
	int n = 0, released = 0;
	uint64_t bytes = 0;
	while (!done) {
		uint64_t cp = ld(W(CONS));
		if (cp != cpos) {
			uint64_t p = ld(W(PROD));
			if (p - cp > cap || (cp & 7)) {
				if (ld(W(CONS)) != cp) continue;
				fail("consumer position inconsistent");
			}
			cpos = cp;
		}
		uint64_t p = ld(W(PROD));
		if (p == cpos) break;
		if (p - cpos > cap || (p & 7)) {
			if (ld(W(CONS)) != cpos) continue;
			fail("producer position inconsistent");
		}
		uint64_t i = cpos & mask, h = ld(H(cpos));
		unsigned t = htype(h);
		if (kind == 2 && (t == 0 || t == 3)) break; /* not committed yet */
		uint64_t size = recsize(h);
		int bad = (h >> 56) || size > p - cpos || i + size > cap || (t == 1 && hlen(h) > maxmsg) ||
		          (t != 1 && t != 2);
		int copied = !bad && t == 1;
		if (copied) memcpy(copybuf, data + i + 8, E + hlen(h));
		if (kind == 1) {
			if (bad) {
				__atomic_thread_fence(__ATOMIC_SEQ_CST); /* the copy's loads before the check */
				if (ld(W(CONS)) != cpos) continue;
				fail("record header");
			}
			if (!cas(W(CONS), cpos, cpos + size)) {
				if (copied) bump(LAPPED, 1);
				continue;
			}
		} else {
			if (!lock_release()) break;
			if (ld(W(CONS)) != cpos) {
				unlock_release();
				if (copied) bump(LAPPED, 1);
				continue;
			}
			if (bad) fail("record header");
			release_range(cpos, cpos + size);
			unlock_release();
		}
		cpos += size;
		released = 1;
		if (copied && !(seqs && duplicate(u64(copybuf + 8 * ts), h))) {
			deliver(copybuf, h);
			n++, bytes += hlen(h);
		}
	}
	if (n) bump(MSGS_OUT, n), bump(BYTES_OUT, bytes);
	if (released) wake(PROD_WAIT); /* released room, delivered or not (§Waking) */
	return n;
}

static int try_read(void) { return (ow ? read_overwrite() : read_batch()) > 0 || done; }

static int run_read(int gate) {
	if (!lock_range(CONS)) fail("the consumer role is held");
	if (bell) st(W(BELL_ID), 0); /* §Line 15: a dead set's id must not outlive its role lock */
	my_id = 1ull << 32;
	cpos = ld(W(CONS));
	if (cpos & 7) fail("consumer position not aligned");
	uint64_t p = ld(W(PROD));
	if (p - cpos > cap && !hc) fail("positions inconsistent");
	copybuf = malloc(E + maxmsg + 1);
	if (kind == 2 && ow) {
		if (lock_release()) unlock_release();
		cpos = ld(W(CONS));
	} else if (kind == 2) { /* §Reading: finish a dead predecessor's release */
		uint64_t z = ld(W(ZERO_END));
		if (z != cpos && z - cpos <= p - cpos && !(z & 7)) {
			release_range(cpos, z);
			cpos = z;
		}
	}
	if (gate)
		while (__atomic_load_n(W32(PROD_WAIT + 4), __ATOMIC_ACQUIRE) == 0) sched_yield();
	while (!done) {
		if (try_read()) continue;
		park(CONS_WAIT, try_read);
	}
	/* §Who clears parked: the consumer takes its own announcement back. */
	if (__atomic_load_n(W32(CONS_WAIT + 4), __ATOMIC_SEQ_CST)) __atomic_store_n(W32(CONS_WAIT + 4), 0, __ATOMIC_SEQ_CST);
	return 0;
}

/* The original reader: what is pending now, plain and header-commit SPSC. */
static int run_drain(void) {
	if (kind != 1) fail("kind not spsc");
	if (ow || ts || seqs) fail("ring version or flags this reader does not know");
	if (!lock_range(CONS)) fail("the consumer role is held");
	cpos = ld(W(CONS));
	if (cpos & 7) fail("consumer position not aligned");
	read_batch();
	return 0;
}

int main(int argc, char **argv) {
	alarm(60);
	if (argc == 2) {
		open_ring(argv[1]);
		return run_drain();
	}
	if (argc >= 4 && strcmp(argv[1], "read") == 0) {
		open_ring(argv[2]);
		register_barrier();
		endmsg = argv[3];
		int rc = run_read(argc > 4 && strcmp(argv[4], "gate") == 0);
		fflush(stdout);
		return rc;
	}
	if (argc >= 6 && strcmp(argv[1], "write") == 0) {
		open_ring(argv[2]);
		register_barrier();
		return run_write(argv[3], strtoull(argv[4], NULL, 10), strtoull(argv[5], NULL, 10),
		                 argc > 6 && strcmp(argv[6], "gate") == 0);
	}
	fprintf(stderr, "usage: ringread PATH | read PATH END [gate] | write PATH TAG FIRST COUNT [gate]\n");
	return 2;
}

// dbprod: an MPSC producer of a shmring ring with descriptor flag bit 4
// (doorbell), written from docs/layout.md alone (no Go source read).
//
//   dbprod send  RING N PAUSE_MS   write N messages "dbprod <i>", one at a
//                                  time, pausing PAUSE_MS after each
//   dbprod scribble RING MS [ID]   as a co-tenant: store random ids (or ID,
//                                  hex) into line 15 every millisecond for
//                                  MS milliseconds (no role taken)
//
// Every comment names the part of docs/layout.md it follows.
// Build: gcc -O2 -Wall -Wextra -o dbprod dbprod.c
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <libgen.h>
#include <linux/futex.h>
#include <linux/membarrier.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

typedef uint64_t u64;
typedef uint32_t u32;

#define LD64(p) __atomic_load_n((u64 *)(p), __ATOMIC_ACQUIRE)
#define ST64(p, v) __atomic_store_n((u64 *)(p), (u64)(v), __ATOMIC_RELEASE)
#define LD32(p) __atomic_load_n((u32 *)(p), __ATOMIC_ACQUIRE)
#define ADD64(p, v) __atomic_fetch_add((u64 *)(p), (u64)(v), __ATOMIC_SEQ_CST)
#define ADD32(p, v) __atomic_fetch_add((u32 *)(p), (u32)(v), __ATOMIC_SEQ_CST)
#define CAS32(p, o, n) cas32((u32 *)(p), (o), (n))
#define CAS64(p, o, n) cas64((u64 *)(p), (o), (n))

static int cas32(u32 *p, u32 o, u32 n) {
	return __atomic_compare_exchange_n(p, &o, n, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
}
static int cas64(u64 *p, u64 o, u64 n) {
	return __atomic_compare_exchange_n(p, &o, n, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
}

static void die(const char *msg) {
	fprintf(stderr, "dbprod: %s\n", msg);
	exit(1);
}

// ---- CRC-32C (section 1, offset 72: Castagnoli, reflected, init/final xor ~0)
static u32 crctab[256];
static void crcinit(void) {
	for (u32 i = 0; i < 256; i++) {
		u32 c = i;
		for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
		crctab[i] = c;
	}
}
static u32 crc32c(const unsigned char *p, size_t n) {
	u32 c = 0xFFFFFFFFu;
	while (n--) c = crctab[(c ^ *p++) & 0xFF] ^ (c >> 8);
	return c ^ 0xFFFFFFFFu;
}
static u64 rd64(const unsigned char *p) { u64 v; memcpy(&v, p, 8); return v; }
static u32 rd32(const unsigned char *p) { u32 v; memcpy(&v, p, 4); return v; }

static u64 now_ns(clockid_t c) {
	struct timespec ts;
	clock_gettime(c, &ts);
	return (u64)ts.tv_sec * 1000000000ull + (u64)ts.tv_nsec;
}

// ---- the ring
static unsigned char *base, *R, *data;     // file, region (body), data area
static u64 cap, maxmsg, flags, dataoff, E;
static u32 nslots;
static uid_t ring_uid;
static char ringdir[PATH_MAX];
static int registered;                      // membarrier registration

// Section 1 and line 0 validation, in the documented order.
static void open_ring(const char *path, int *fdp) {
	// Go openers refuse a symbolic link (shm: "segment path is a symbolic link"):
	// docs/layout.md does not say so; do the same.
	int fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) { perror(path); exit(1); }
	struct stat st;
	if (fstat(fd, &st) < 0) die("fstat ring");
	// Section 5, "Owner and mode": same euid, no o+w.
	if (st.st_uid != geteuid()) die("ring owned by another user (fs.ErrPermission)");
	if (st.st_mode & 002) die("ring writable by others (fs.ErrPermission)");
	ring_uid = st.st_uid;
	u64 fsize = (u64)st.st_size;
	unsigned char h[4096];
	if (fsize < 4096) die("header: file smaller than 4096 bytes (ErrTooSmall)");          // 1
	if (pread(fd, h, 4096, 0) != 4096) die("read header");
	if (memcmp(h, "SHMSEG\0\x01", 8) != 0) die("header: bad magic (ErrBadMagic)");        // 2
	if (rd32(h + 8) != 0x01020304u) die("header: byte order (ErrByteOrder)");             // 3
	if (rd32(h + 12) != 1) die("header: version (ErrVersion)");                            // 4
	if (crc32c(h, 72) != rd32(h + 72)) die("header: checksum (ErrChecksum)");              // 5
	if (rd64(h + 16) != 4096 || rd64(h + 24) != 4096) die("header: geometry (ErrGeometry)"); // 6
	u64 body = rd64(h + 32), total = rd64(h + 40);
	if (body > (1ull << 48) || total != 4096 + body) die("header: geometry (ErrGeometry)"); // 7
	if (rd64(h + 64) != 0) die("header: flags (ErrVersion)");                              // 8
	if (fsize < total) die("header: truncated (ErrTooSmall)");                              // 9
	if (fsize != total) die("header: size (ErrGeometry)");                                  // 10
	base = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (base == MAP_FAILED) die("mmap ring");
	R = base + 4096;
	// Line 0: descriptor, validation order 1..13.
	if (body < 4096) die("descriptor: region too small (ErrCorrupt)");                     // 1
	if (rd64(R) != 0x00474E49524D4853ull) die("descriptor: magic (ErrCorrupt)");           // 2
	u32 ver = rd32(R + 8), kind = rd32(R + 12);
	if (ver != 1 && ver != 2) die("descriptor: version (ErrIncompatible)");               // 3
	if (kind != 1 && kind != 2) die("descriptor: kind (ErrIncompatible)");                // 4
	if (crc32c(R, 60) != rd32(R + 60)) die("descriptor: checksum (ErrCorrupt)");          // 5
	cap = rd64(R + 16);
	if (cap < 1024 || cap > (1ull << 46) || (cap & (cap - 1))) die("descriptor: capacity (ErrCorrupt)"); // 6
	maxmsg = rd64(R + 24);
	if (maxmsg > cap / 8 || maxmsg > 0x7FFFFFFFull) die("descriptor: max message (ErrCorrupt)"); // 7
	flags = rd64(R + 40);
	if (flags & ~0x1Full) die("descriptor: unknown flag bits (ErrIncompatible)");          // 8
	if ((flags & 8) && (kind != 1 || (flags & 4))) die("descriptor: bit 3 (ErrCorrupt)");  // 9
	u32 want = ((kind == 2 && (flags & 4)) || (flags & 8)) ? 2 : 1;
	if (ver != want) die("descriptor: version for kind and flags (ErrCorrupt)");           // 10
	u64 sto = rd64(R + 48);
	nslots = rd32(R + 56);
	if (kind == 1 ? (sto != 0 || nslots != 0) : (sto != 4096 || nslots < 1 || nslots > 4096))
		die("descriptor: slot table (ErrCorrupt)");                                         // 11
	dataoff = rd64(R + 32);
	u64 wantoff = kind == 1 ? 4096 : ((4096 + (u64)nslots * 128 + 4095) & ~4095ull);
	if (dataoff != wantoff) die("descriptor: data offset (ErrCorrupt)");                   // 12
	if (body < dataoff + cap) die("descriptor: region size (ErrCorrupt)");                 // 13
	// What this program implements: an MPSC producer with the doorbell rule.
	if (kind != 2) die("this example writes MPSC rings only");
	if (flags & 4) die("this example does not implement drop-oldest (flag bit 2)");
	if (!(flags & 16)) fprintf(stderr, "dbprod: note: ring has no doorbell flag (bit 4)\n");
	E = ((flags & 1) ? 8 : 0) + ((flags & 2) ? 8 : 0);
	data = R + dataoff;
	char tmp[PATH_MAX];
	snprintf(tmp, sizeof tmp, "%s", path);
	snprintf(ringdir, sizeof ringdir, "%s", dirname(tmp));
	*fdp = fd;
}

// ---- registration ("Lines 5 and 6", Registration)
static void do_register(void) {
	long q = syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
	registered = q >= 0 && (q & MEMBARRIER_CMD_GLOBAL_EXPEDITED) &&
		syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED, 0, 0) == 0;
	if (!registered) fprintf(stderr, "dbprod: membarrier unavailable: a fence per publish\n");
}

static long futex(void *addr, int op, u32 val, const struct timespec *to) {
	return syscall(SYS_futex, addr, op, val, to, NULL, 0);
}

// ---- the doorbell ("Line 15: doorbell", Opening a doorbell)
static unsigned char *db;      // mapped doorbell, for db_id
static u64 db_id;
static u64 bad_id, bad_until;  // do not try a failed id again for 100 ms

static unsigned char *doorbell_for(u64 id) {
	if (db && db_id == id) return db;
	if (db) { munmap(db, 4096); db = NULL; db_id = 0; }
	if (id == bad_id && now_ns(CLOCK_MONOTONIC) < bad_until) return NULL;
	char p[PATH_MAX + 40];
	snprintf(p, sizeof p, "%s/shmring-doorbell-%016llx", ringdir, (unsigned long long)id);
	int fd = open(p, O_RDWR | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	unsigned char *m = MAP_FAILED;
	struct stat st;
	if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 4096 &&
	    st.st_uid == ring_uid && !(st.st_mode & 002))   // owner and mode, as a ring's
		m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (fd >= 0) close(fd);
	if (m != MAP_FAILED && memcmp(m, "SHMRDBEL", 8) == 0 && rd32(m + 8) == 1 && rd64(m + 16) == id) {
		db = m;
		db_id = id;
		return db;
	}
	if (m != MAP_FAILED) munmap(m, 4096);
	ADD64(R + 1936, 1);                      // line 15 failures
	bad_id = id;
	bad_until = now_ns(CLOCK_MONOTONIC) + 100000000ull;
	return NULL;
}

static u64 n_wake_line5, n_wake_db, n_fail_seen;

static void wake_line(unsigned char *line) {
	ADD32(line + 0, 1);
	futex(line + 0, FUTEX_WAKE, INT_MAX, NULL);
	ADD64(line + 16, 1);
}

// "Waking, with bit 4" (and plain "Waking" without the bit).
static void wake_consumer(void) {
	unsigned char *l5 = R + 640;
	if (!registered) __atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (__atomic_load_n((u32 *)(l5 + 4), __ATOMIC_RELAXED) == 0) return;   // 1
	if (!CAS32(l5 + 4, 1, 0)) return;                                         // 2
	u64 id = (flags & 16) ? LD64(R + 1920) : 0;                               // 3
	unsigned char *d = id ? doorbell_for(id) : NULL;
	if (!d) {
		if (id) n_fail_seen++;
		wake_line(l5);
		n_wake_line5++;
		return;
	}
	ADD32(l5 + 0, 1);                                                         // 4
	if (LD32(d + 68) == 1 && CAS32(d + 68, 1, 0)) {                           // 5
		ADD32(d + 64, 1);
		futex(d + 64, FUTEX_WAKE, INT_MAX, NULL);
		ADD64(d + 72, 1);
		ADD64(R + 1928, 1);
		n_wake_db++;
	}
}

// ---- the producer slot ("Writing (MPSC producer holding slot s)")
static unsigned char *S;       // slot
static u32 slot;
static u64 cpos;               // cached consumer position
static u64 seqno;              // last sequence given
static u64 last_hb;

static void slot_add(int off, u64 v) { ST64(S + off, LD64(S + off) + v); }

static void take_slot(int fd) {
	char self[64];
	snprintf(self, sizeof self, "/proc/self/fd/%d", fd);
	for (slot = 0; slot < nslots; slot++) {
		// Section 4: a new open file description per role.
		int lfd = open(self, O_RDWR | O_CLOEXEC);
		if (lfd < 0) die("reopen ring for the slot lock");
		struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET,
			.l_start = 4096 + 4096 + 128 * (off_t)slot, .l_len = 128, .l_pid = 0};
		if (fcntl(lfd, F_OFD_SETLK, &fl) == 0) break;   // 1: keep lfd open
		close(lfd);
	}
	if (slot == nslots) die("no free producer slot");
	S = R + 4096 + 128 * (u64)slot;
	// 2: PID, start time, PID namespace, then heartbeat.
	u64 start = 0;
	FILE *f = fopen("/proc/self/stat", "r");
	if (f) {
		char buf[1024];
		size_t n = fread(buf, 1, sizeof buf - 1, f);
		buf[n] = 0;
		fclose(f);
		char *p = strrchr(buf, ')');
		for (int field = 2; p && field < 22; field++) p = strchr(p + 1, ' ');
		if (p) start = strtoull(p + 1, NULL, 10);
	}
	struct stat ns;
	ST64(S + 0, getpid());
	ST64(S + 8, start);
	ST64(S + 120, stat("/proc/self/ns/pid", &ns) == 0 ? ns.st_ino : 0);
	last_hb = now_ns(CLOCK_REALTIME);
	ST64(S + 16, last_hb);
	// 3: sequences.
	if (flags & 2) {
		seqno = LD64(S + 96);
		if (seqno == UINT64_MAX) die("slot's last sequence begun is 2^64-1 (ErrCorrupt)");
	}
	// 4: a consistent pair of positions.
	for (;;) {
		u64 c = LD64(R + 256), p = LD64(R + 128);
		if (LD64(R + 256) != c) continue;
		if (p - c > cap || (p | c) & 7) die("positions violate the invariant (ErrCorrupt)");
		cpos = c;
		break;
	}
	// 5: withdraw the old intent.
	ST64(S + 32, 0);
	ST64(S + 24, 0);
}

static void heartbeat(void) {
	u64 t = now_ns(CLOCK_REALTIME);
	if (t - last_hb >= 1000000000ull) { ST64(S + 16, t); last_hb = t; }
}

static void set_pressure(void) {
	u32 *w = (u32 *)(R + 1048);
	for (;;) {
		u32 o = LD32(w);
		if (o & 1) return;
		if (CAS32(w, o, o | 1)) { ADD64(R + 1056, 1); return; }
	}
}

static void raise_hwm(u64 d) {
	for (;;) {
		u64 o = LD64(R + 528);
		if (d <= o || CAS64(R + 528, o, d)) return;
	}
}

// "Waiting" on line 6 for room (every sleep with the barrier).
static void wait_room(u64 seen_c) {
	unsigned char *l6 = R + 768;
	u32 s = LD32(l6);
	__atomic_store_n((u32 *)(l6 + 4), 1, __ATOMIC_SEQ_CST);
	int bar = registered && syscall(SYS_membarrier, MEMBARRIER_CMD_GLOBAL_EXPEDITED, 0, 0) == 0;
	if (LD64(R + 256) != seen_c) return;    // re-check: room was released
	ADD64(l6 + 8, 1);
	struct timespec to = {0, bar ? 100000000 : 1000000};
	futex(l6, FUTEX_WAIT, s, &to);
}

static void put64(u64 idx, u64 v) { ST64(data + idx, v); }
static u64 hdr(u64 len, u32 type) { return len | ((u64)slot << 32) | ((u64)type << 48); }

static void write_msg(const void *msg, u64 len) {
	if (len > maxmsg) die("message larger than max message");
	u64 size = (8 + E + len + 7) & ~7ull;
	int counted_full = 0;
	for (;;) {
		heartbeat();
		u64 P = LD64(R + 128);                                      // 1
		if (P & 7) die("producer position not a multiple of 8 (ErrCorrupt)");
		u64 idx = P & (cap - 1), tail = cap - idx;
		u64 total = size <= tail ? size : tail + size;
		u64 win = LD64(R + 1024), L = (win > 0 && win < cap) ? win : cap;
		u64 high = LD64(R + 1032);
		if (P - cpos > cap || P + total - cpos > L ||
		    (high && P + total - cpos >= high && !(LD32(R + 1048) & 1))) {
			u64 c = LD64(R + 256);
			if (c & 7) die("consumer position not a multiple of 8 (ErrCorrupt)");
			if (P - c > cap) {
				u64 P2 = LD64(R + 128);
				if (LD64(R + 256) == c && P2 - c > cap) die("positions violate the invariant (ErrCorrupt)");
				cpos = c;
				continue;
			}
			cpos = c;
			if (high && P + total - c >= high) set_pressure();
			if (total > L - (P - c)) {                          // full
				raise_hwm(P - c);
				if (!counted_full) { slot_add(56, 1); counted_full = 1; }
				wait_room(c);
				continue;
			}
		}
		ST64(S + 32, total);                                    // 2
		ST64(S + 24, P);
		if (!CAS64(R + 128, P, P + total)) {                   // 3
			ST64(S + 32, 0);
			continue;
		}
		u64 at = P;
		if (total != size) {                                    // 4
			put64(idx, hdr(tail - 8, 2));
			at = P + tail;
		}
		u64 i = at & (cap - 1);
		put64(i, hdr(len, 3));                                  // 5
		memcpy(data + i + 8 + E, msg, len);                     // 6
		u64 x = i + 8;
		if (flags & 1) { u64 t = now_ns(CLOCK_MONOTONIC); memcpy(data + x, &t, 8); x += 8; }
		if (flags & 2) { seqno++; memcpy(data + x, &seqno, 8); }
		slot_add(40, 1);
		slot_add(48, len);
		if ((flags & 2) && seqno > LD64(S + 96)) ST64(S + 96, seqno);
		put64(i, hdr(len, 1));                                  // 7
		wake_consumer();                                        // 8
		return;
	}
}

static void sleep_ms(long ms) {
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {}
}

int main(int argc, char **argv) {
	if (argc != 5 && !(argc == 4 && strcmp(argv[1], "scribble") == 0)) {
		fprintf(stderr, "usage: dbprod send RING N PAUSE_MS | dbprod scribble RING MS [ID]\n");
		return 2;
	}
	crcinit();
	int fd;
	open_ring(argv[2], &fd);
	if (strcmp(argv[1], "scribble") == 0) {
		u64 fixed = argc == 5 ? strtoull(argv[4], NULL, 16) : 0;
		// A co-tenant with write access: random ids into line 15, no role.
		if (!(flags & 16)) die("scribble wants a doorbell ring");
		u64 end = now_ns(CLOCK_MONOTONIC) + strtoull(argv[3], NULL, 10) * 1000000ull, n = 0;
		srandom((unsigned)getpid() ^ (unsigned)now_ns(CLOCK_REALTIME));
		while (now_ns(CLOCK_MONOTONIC) < end) {
			u64 id = fixed ? fixed : ((u64)random() << 33) ^ ((u64)random() << 2) ^ (u64)random();
			ST64(R + 1920, id);
			n++;
			sleep_ms(1);
		}
		printf("scribbled %llu ids\n", (unsigned long long)n);
		return 0;
	}
	if (strcmp(argv[1], "send") != 0) die("unknown command");
	do_register();
	take_slot(fd);
	u64 n = strtoull(argv[3], NULL, 10);
	long pause = strtol(argv[4], NULL, 10);
	for (u64 k = 1; k <= n; k++) {
		char m[64];
		int len = snprintf(m, sizeof m, "dbprod %llu", (unsigned long long)k);
		write_msg(m, (u64)len);
		if (pause > 0) sleep_ms(pause);
	}
	printf("slot %u: wrote %llu; wakes: doorbell %llu, line 5 %llu (after a doorbell failure %llu)\n",
	       slot, (unsigned long long)n, (unsigned long long)n_wake_db,
	       (unsigned long long)n_wake_line5, (unsigned long long)n_fail_seen);
	return 0;
}

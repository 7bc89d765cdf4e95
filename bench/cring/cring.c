/* cring: the hardware reference for shmring's benchmarks. A minimal SPSC
 * ring of fixed 64-byte slots in a shared anonymous mapping, between a
 * forked producer and consumer, each side caching the other's position.
 * The producer publishes its position every BATCH messages (1: every one).
 * Usage: cring N BATCH        prints "msgs_per_sec cpu_ns" (both processes)
 *        cring -loop N BATCH SIZE  one thread writes BATCH records of SIZE
 *                             bytes into a ring of variable-length records
 *                             (lring, below) and reads them back, N in all;
 *                             prints "cpu_ns_per_msg wall_ns_per_msg cpu_ns":
 *                             the ring's own cost per message in one core's
 *                             cache (the thread's CPU time per message)
 *        cring -rt N          two processes ping-pong a word, spinning
 *        cring -hrt N SPINS   the same, each side spinning SPINS pauses and
 *                             then sleeping on a futex (spin then park)
 *        cring -rrt N SPINS   a 64-byte message ping-ponged through two
 *                             rings of 64-byte slots, each side spinning
 *                             (SPINS < 0) or spinning then sleeping
 * The round-trip modes print "p50 p99 p99.9 max cpu" in nanoseconds, cpu
 * being the user and system time of both processes. */
#define _GNU_SOURCE
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SLOTS 16384 /* 1 MiB of 64-byte slots */
#define SIZE 64

struct ring {
	_Alignas(128) _Atomic uint64_t prod;
	_Alignas(128) _Atomic uint64_t cons;
	_Alignas(128) unsigned char data[SLOTS][SIZE];
};

static uint64_t now_ns(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static int cmp(const void *a, const void *b) {
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* A futex shared between processes (no FUTEX_PRIVATE_FLAG). */
static void futex(_Atomic uint32_t *w, int op, uint32_t v) {
	syscall(SYS_futex, w, op, v, NULL, NULL, 0);
}

/* hwait waits until *w == want: spins pauses first, then sleeps, having
 * announced itself in *sleeping. Dekker with hpost: each side stores, then
 * loads the other's word, both sequentially consistent, so either the
 * poster sees the sleeper or the sleeper sees the value. */
static void hwait(_Atomic uint32_t *w, _Atomic uint32_t *sleeping, uint32_t want, long spins) {
	for (long k = 0; k < spins; k++) {
		if (atomic_load_explicit(w, memory_order_acquire) == want) return;
		__builtin_ia32_pause();
	}
	for (;;) {
		atomic_store(sleeping, 1);
		uint32_t v = atomic_load(w);
		if (v == want) break;
		futex(w, FUTEX_WAIT, v);
	}
	atomic_store_explicit(sleeping, 0, memory_order_relaxed);
}

static void hpost(_Atomic uint32_t *w, _Atomic uint32_t *sleeping, uint32_t v) {
	atomic_store(w, v);
	if (atomic_load(sleeping)) futex(w, FUTEX_WAKE, 1);
}

static uint64_t cpu_ns(int who) {
	struct rusage ru;
	getrusage(who, &ru);
	return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000ull +
	       (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000ull;
}

/* report reaps the echoer, prints the round trips' percentiles and the CPU
 * of both processes since cpu0, and returns the exit status (ok: the
 * round trips carried what they should). */
static int report(uint64_t *s, long n, uint64_t cpu0, pid_t pid, int ok) {
	int st;
	waitpid(pid, &st, 0);
	uint64_t cpu = cpu_ns(RUSAGE_SELF) - cpu0 + cpu_ns(RUSAGE_CHILDREN);
	qsort(s, n, sizeof *s, cmp);
	printf("%llu %llu %llu %llu %llu\n", (unsigned long long)s[n / 2], (unsigned long long)s[n * 99 / 100],
	       (unsigned long long)s[n * 999 / 1000], (unsigned long long)s[n - 1], (unsigned long long)cpu);
	return ok && WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : 4;
}

/* roundtrips runs n round trips between this process and a forked echoer
 * and prints the percentiles and the CPU of both; spins < 0: spin only. */
static int roundtrips(long n, long spins) {
	/* ping, pong and the two sleeping flags, each on its own 128-byte pair of lines */
	char *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED) return 1;
	_Atomic uint32_t *ping = (void *)m, *pong = (void *)(m + 128);
	_Atomic uint32_t *ping_sl = (void *)(m + 256), *pong_sl = (void *)(m + 384);
	uint64_t cpu0 = cpu_ns(RUSAGE_SELF);
	pid_t pid = fork();
	if (pid == 0) {
		for (uint32_t i = 1; i <= (uint32_t)n; i++) {
			if (spins < 0) {
				while (atomic_load_explicit(ping, memory_order_acquire) != i) __builtin_ia32_pause();
				atomic_store_explicit(pong, i, memory_order_release);
			} else {
				hwait(ping, ping_sl, i, spins);
				hpost(pong, pong_sl, i);
			}
		}
		_exit(0);
	}
	uint64_t *s = malloc(n * sizeof *s);
	for (uint32_t i = 1; i <= (uint32_t)n; i++) {
		uint64_t t = now_ns();
		if (spins < 0) {
			atomic_store_explicit(ping, i, memory_order_release);
			while (atomic_load_explicit(pong, memory_order_acquire) != i) __builtin_ia32_pause();
		} else {
			hpost(ping, ping_sl, i);
			hwait(pong, pong_sl, i, spins);
		}
		s[i - 1] = now_ns() - t;
	}
	return report(s, n, cpu0, pid, 1);
}

/* A one-way ring for round trips: 64-byte slots as in the throughput ring;
 * its position (also the futex word) and the reader's sleeping flag on
 * lines of their own. The pinger never has two messages in flight, so the
 * consumer position a full ring would need is never consulted. */
struct rtring {
	_Alignas(128) _Atomic uint32_t prod;
	_Alignas(128) _Atomic uint32_t sleeping;
	_Alignas(128) unsigned char data[64][SIZE];
};

static void rsend(struct rtring *r, uint32_t i, const unsigned char *msg, long spins) {
	memcpy(r->data[i % 64], msg, SIZE);
	if (spins < 0)
		atomic_store_explicit(&r->prod, i, memory_order_release);
	else
		hpost(&r->prod, &r->sleeping, i);
}

static void rrecv(struct rtring *r, uint32_t i, unsigned char *buf, long spins) {
	if (spins < 0)
		while (atomic_load_explicit(&r->prod, memory_order_acquire) != i) __builtin_ia32_pause();
	else
		hwait(&r->prod, &r->sleeping, i, spins);
	memcpy(buf, r->data[i % 64], SIZE);
}

/* ringtrips is roundtrips through two rings carrying 64-byte messages. */
static int ringtrips(long n, long spins) {
	struct rtring *a = mmap(NULL, 2 * sizeof *a, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (a == MAP_FAILED) return 1;
	struct rtring *b = a + 1;
	uint64_t cpu0 = cpu_ns(RUSAGE_SELF);
	pid_t pid = fork();
	unsigned char msg[SIZE] = {0}, buf[SIZE];
	if (pid == 0) {
		for (uint32_t i = 1; i <= (uint32_t)n; i++) {
			rrecv(a, i, buf, spins);
			rsend(b, i, buf, spins);
		}
		_exit(0);
	}
	uint64_t *s = malloc(n * sizeof *s), check = 0;
	for (uint32_t i = 1; i <= (uint32_t)n; i++) {
		uint64_t t = now_ns();
		memcpy(msg, &i, sizeof i);
		rsend(a, i, msg, spins);
		rrecv(b, i, buf, spins);
		s[i - 1] = now_ns() - t;
		uint32_t got;
		memcpy(&got, buf, sizeof got);
		check |= got != i;
	}
	return report(s, n, cpu0, pid, !check);
}

/* lring: the minimal ring of variable-length records that the one-core
 * loop measures shmring's path against. 64 KiB of data, as the Go loop's
 * ring; each record an 8-byte header (the payload length in the low 32
 * bits, bit 32 marking padding) and the payload rounded up to 8 bytes; a
 * record that does not fit before the end of the data is preceded by a
 * padding record to the end. The producer's and the consumer's positions
 * (byte counts, never wrapped) sit on lines of their own, stored with
 * release and loaded with acquire; each side caches the other's. The reader
 * checks a record's length against the maximum message and what is
 * published (one compare each), so a bad header cannot send it out of the
 * data. */
#define LCAP (64 * 1024)
#define LMAX 4096
#define LPAD (1ull << 32)

struct lring {
	_Alignas(128) _Atomic uint64_t prod;
	_Alignas(128) _Atomic uint64_t cons;
	_Alignas(128) unsigned char data[LCAP];
};

struct lprod {
	struct lring *r;
	uint64_t pos, cons; /* own position, cached consumer position */
};

struct lcons {
	struct lring *r;
	uint64_t pos;
};

static inline uint64_t lsize(uint64_t len) { return 8 + ((len + 7) & ~7ull); }

/* lwrite appends one record (not yet published); 0: no room. */
static int lwrite(struct lprod *p, const unsigned char *msg, uint64_t len) {
	uint64_t need = lsize(len), off = p->pos % LCAP, tail = LCAP - off;
	uint64_t total = need + (tail < need ? tail : 0);
	if (p->pos + total - p->cons > LCAP) {
		p->cons = atomic_load_explicit(&p->r->cons, memory_order_acquire);
		if (p->pos + total - p->cons > LCAP) return 0;
	}
	if (tail < need) {
		uint64_t h = LPAD | (tail - 8);
		memcpy(p->r->data + off, &h, 8);
		p->pos += tail;
		off = 0;
	}
	memcpy(p->r->data + off, &len, 8);
	memcpy(p->r->data + off + 8, msg, len);
	p->pos += need;
	return 1;
}

static void lpublish(struct lprod *p) {
	atomic_store_explicit(&p->r->prod, p->pos, memory_order_release);
}

/* lread delivers up to max records (adding each payload's first 8 bytes to
 * *sum, as the Go loop's callback does) and releases them with one store;
 * -1: a damaged header. */
static long lread(struct lcons *c, long max, uint64_t *sum) {
	uint64_t end = atomic_load_explicit(&c->r->prod, memory_order_acquire), pos = c->pos;
	long n = 0;
	while (pos < end && n < max) {
		uint64_t off = pos % LCAP, h, v;
		memcpy(&h, c->r->data + off, 8);
		uint64_t len = (uint32_t)h, size = lsize(len);
		if (size > end - pos || off + size > LCAP || (h >> 32 == 0 && len > LMAX) || h >> 33) return -1;
		if (h & LPAD) {
			pos += size;
			continue;
		}
		memcpy(&v, c->r->data + off + 8, 8);
		*sum += v;
		pos += size;
		n++;
	}
	atomic_store_explicit(&c->r->cons, pos, memory_order_release);
	c->pos = pos;
	return n;
}

static uint64_t thread_ns(void) {
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

/* oneloop writes batch records, publishes them, reads them back, until n
 * messages, after a warm-up of n/8; prints the thread's CPU time per
 * message (what the loop costs, whatever else the machine runs), the wall
 * time per message and the process's CPU time (ns). */
static int oneloop(uint64_t n, long batch, uint64_t size) {
	if (batch < 1 || size < 8 || size > LMAX || lsize(size) * batch > LCAP) return 2;
	struct lring *r = mmap(NULL, sizeof *r, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (r == MAP_FAILED) return 1;
	struct lprod p = {r, 0, 0};
	struct lcons c = {r, 0};
	unsigned char *msg = calloc(1, size);
	uint64_t sum = 0, want = 0, t0 = 0, cpu0 = 0;
	for (int pass = 0; pass < 2; pass++) {
		uint64_t total = pass == 0 ? n / 8 : n;
		if (pass == 1) {
			t0 = now_ns();
			cpu0 = thread_ns();
		}
		for (uint64_t i = 0; i < total; i += batch) {
			for (long j = 0; j < batch; j++) {
				uint64_t seq = i + j;
				memcpy(msg, &seq, 8);
				want += seq;
				if (!lwrite(&p, msg, size)) return 3;
			}
			lpublish(&p);
			if (lread(&c, batch, &sum) != batch) return 3;
		}
	}
	uint64_t cpu = thread_ns() - cpu0, t = now_ns() - t0, msgs = (n + batch - 1) / batch * batch;
	if (sum != want) return 4;
	printf("%.3f %.3f %llu\n", (double)cpu / (double)msgs, (double)t / (double)msgs, (unsigned long long)cpu_ns(RUSAGE_SELF));
	return 0;
}

int main(int argc, char **argv) {
	if (argc == 3 && strcmp(argv[1], "-rt") == 0) return roundtrips(atol(argv[2]), -1);
	if (argc == 4 && strcmp(argv[1], "-hrt") == 0) return roundtrips(atol(argv[2]), atol(argv[3]));
	if (argc == 4 && strcmp(argv[1], "-rrt") == 0) return ringtrips(atol(argv[2]), atol(argv[3]));
	if (argc == 5 && strcmp(argv[1], "-loop") == 0)
		return oneloop(strtoull(argv[2], 0, 10), atol(argv[3]), strtoull(argv[4], 0, 10));
	if (argc != 3) {
		fprintf(stderr, "usage: cring N BATCH | cring -loop N BATCH SIZE | cring -rt N | cring -hrt N SPINS | cring -rrt N SPINS\n");
		return 2;
	}
	uint64_t n = strtoull(argv[1], 0, 10), batch = strtoull(argv[2], 0, 10);
	struct ring *r = mmap(NULL, sizeof *r, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (r == MAP_FAILED) return 1;
	memset(r, 0, sizeof *r);
	uint64_t t0 = now_ns(), cpu0 = cpu_ns(RUSAGE_SELF);
	pid_t pid = fork();
	if (pid == 0) { /* consumer */
		uint64_t pos = 0, cached = 0, sum = 0;
		while (pos < n) {
			if (pos == cached) {
				while ((cached = atomic_load_explicit(&r->prod, memory_order_acquire)) == pos) __builtin_ia32_pause();
			}
			while (pos < cached) {
				uint64_t v;
				memcpy(&v, r->data[pos % SLOTS], 8);
				sum += v;
				pos++;
			}
			atomic_store_explicit(&r->cons, pos, memory_order_release);
		}
		_exit(sum == n * (n - 1) / 2 ? 0 : 3);
	}
	unsigned char msg[SIZE] = {0};
	uint64_t pos = 0, cached = 0;
	for (uint64_t i = 0; i < n; i++) {
		if (pos - cached >= SLOTS) {
			while (pos - (cached = atomic_load_explicit(&r->cons, memory_order_acquire)) >= SLOTS) __builtin_ia32_pause();
		}
		memcpy(msg, &i, 8);
		memcpy(r->data[pos % SLOTS], msg, SIZE);
		pos++;
		if (pos % batch == 0 || i == n - 1) atomic_store_explicit(&r->prod, pos, memory_order_release);
	}
	int st;
	waitpid(pid, &st, 0);
	double secs = (now_ns() - t0) / 1e9;
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) return 4;
	printf("%.0f %llu\n", n / secs, (unsigned long long)(cpu_ns(RUSAGE_SELF) - cpu0 + cpu_ns(RUSAGE_CHILDREN)));
	return 0;
}

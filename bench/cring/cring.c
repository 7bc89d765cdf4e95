/* cring: the hardware reference for shmring's benchmarks. A minimal SPSC
 * ring of fixed 64-byte slots in a shared anonymous mapping, between a
 * forked producer and consumer, each side caching the other's position.
 * The producer publishes its position every BATCH messages (1: every one).
 * Usage: cring N BATCH      prints "msgs_per_sec"
 *        cring -rt N        prints the round-trip median in ns (spin) */
#define _GNU_SOURCE
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
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

int main(int argc, char **argv) {
	if (argc == 3 && strcmp(argv[1], "-rt") == 0) {
		long n = atol(argv[2]);
		_Atomic uint64_t *w = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		_Atomic uint64_t *ping = w, *pong = w + 16;
		pid_t pid = fork();
		if (pid == 0) {
			for (uint64_t i = 1; i <= (uint64_t)n; i++) {
				while (atomic_load_explicit(ping, memory_order_acquire) != i) __builtin_ia32_pause();
				atomic_store_explicit(pong, i, memory_order_release);
			}
			_exit(0);
		}
		uint64_t *s = malloc(n * sizeof *s);
		for (uint64_t i = 1; i <= (uint64_t)n; i++) {
			uint64_t t = now_ns();
			atomic_store_explicit(ping, i, memory_order_release);
			while (atomic_load_explicit(pong, memory_order_acquire) != i) __builtin_ia32_pause();
			s[i - 1] = now_ns() - t;
		}
		waitpid(pid, NULL, 0);
		qsort(s, n, sizeof *s, cmp);
		printf("%llu\n", (unsigned long long)s[n / 2]);
		return 0;
	}
	if (argc != 3) {
		fprintf(stderr, "usage: cring N BATCH | cring -rt N\n");
		return 2;
	}
	uint64_t n = strtoull(argv[1], 0, 10), batch = strtoull(argv[2], 0, 10);
	struct ring *r = mmap(NULL, sizeof *r, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (r == MAP_FAILED) return 1;
	memset(r, 0, sizeof *r);
	uint64_t t0 = now_ns();
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
	printf("%.0f\n", n / secs);
	return 0;
}

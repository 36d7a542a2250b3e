/*
 * benchtool.c - the small file workloads of the skyfs benchmark.
 *
 * tests/bench/run.sh compiles this file with cc into $BUILD/bench/benchtool
 * and times each call from the outside (date +%s.%N), so the tool itself
 * measures nothing; it only does one workload exactly and checks what it
 * read, so that a file system that returns wrong bytes cannot look fast.
 *
 *     benchtool gen FILE BYTES SEED
 *         Writes BYTES pseudo-random bytes (xorshift64*, seeded) to FILE.
 *     benchtool hash FILE
 *         Reads FILE (or "-" for stdin) to the end in 1 MiB reads and prints
 *         "BYTES XXH3" - the byte count and the XXH3-64 of the content.
 *     benchtool randread LOCAL REMOTE COUNT SEED
 *         COUNT 4 KiB preads of REMOTE at seeded random 4 KiB-aligned
 *         offsets, each compared with the same range of LOCAL (the
 *         reference copy; its reads are not the workload).  Exits 1 on the
 *         first short read or mismatch.
 *     benchtool smallfiles DIR COUNT BYTES SEED
 *         Creates DIR/f0000 ... each holding BYTES pseudo-random bytes
 *         (open, write, close: one file after the other).
 *
 * Exit status 0 on success, 1 on a failure (one line on stderr), 2 on a
 * usage error.  Used only by tests/bench/run.sh.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <xxhash.h>

#define BENCH_CHUNK (1u << 20)
#define BENCH_PAGE  4096u

static int bench_fail(const char *what, const char *path)
{
    fprintf(stderr, "benchtool: %s %s: %s\n", what, path, strerror(errno));
    return 1;
}

/* xorshift64*: fast, seedable, good enough for incompressible test data. */
static uint64_t bench_next(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545F4914F6CDD1Dull;
}

static uint64_t bench_seed(const char *text)
{
    uint64_t s = strtoull(text, NULL, 10);
    return s ? s * 0x9E3779B97F4A7C15ull : 0x9E3779B97F4A7C15ull;
}

static void bench_fill(unsigned char *buf, size_t len, uint64_t *state)
{
    for (size_t i = 0; i < len; i += 8) {
        uint64_t v = bench_next(state);
        memcpy(buf + i, &v, len - i < 8 ? len - i : 8);
    }
}

static int bench_write_all(int fd, const unsigned char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

static int bench_gen(const char *path, uint64_t bytes, uint64_t seed)
{
    static unsigned char buf[BENCH_CHUNK];
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return bench_fail("create", path);
    for (uint64_t done = 0; done < bytes; ) {
        size_t len = bytes - done < BENCH_CHUNK ? (size_t)(bytes - done) : BENCH_CHUNK;
        bench_fill(buf, len, &seed);
        if (bench_write_all(fd, buf, len) < 0) {
            bench_fail("write", path);
            close(fd);
            return 1;
        }
        done += len;
    }
    if (close(fd) < 0)
        return bench_fail("close", path);
    return 0;
}

static int bench_hash(const char *path)
{
    static unsigned char buf[BENCH_CHUNK];
    int fd = strcmp(path, "-") == 0 ? 0 : open(path, O_RDONLY);
    if (fd < 0)
        return bench_fail("open", path);
    XXH3_state_t *st = XXH3_createState();
    if (!st || XXH3_64bits_reset(st) == XXH_ERROR) {
        fprintf(stderr, "benchtool: out of memory\n");
        return 1;
    }
    uint64_t total = 0;
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            bench_fail("read", path);
            XXH3_freeState(st);
            return 1;
        }
        if (n == 0)
            break;
        XXH3_64bits_update(st, buf, (size_t)n);
        total += (uint64_t)n;
    }
    printf("%" PRIu64 " %016llx\n", total, (unsigned long long)XXH3_64bits_digest(st));
    XXH3_freeState(st);
    if (fd != 0)
        close(fd);
    return 0;
}

static int bench_pread_page(int fd, unsigned char *buf, off_t off)
{
    size_t got = 0;
    while (got < BENCH_PAGE) {
        ssize_t n = pread(fd, buf + got, BENCH_PAGE - got, off + (off_t)got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        got += (size_t)n;
    }
    return 0;
}

static int bench_randread(const char *local, const char *remote, long count, uint64_t seed)
{
    unsigned char want[BENCH_PAGE], got[BENCH_PAGE];
    struct stat st;
    int lfd = open(local, O_RDONLY);
    if (lfd < 0 || fstat(lfd, &st) < 0)
        return bench_fail("open", local);
    int rfd = open(remote, O_RDONLY);
    if (rfd < 0)
        return bench_fail("open", remote);
    uint64_t pages = (uint64_t)st.st_size / BENCH_PAGE;
    int rc = 0;
    for (long i = 0; i < count && pages > 0 && rc == 0; i++) {
        off_t off = (off_t)(bench_next(&seed) % pages * BENCH_PAGE);
        if (bench_pread_page(rfd, got, off) < 0)
            rc = bench_fail("read", remote);
        else if (bench_pread_page(lfd, want, off) < 0)
            rc = bench_fail("read", local);
        else if (memcmp(want, got, BENCH_PAGE) != 0) {
            fprintf(stderr, "benchtool: %s: wrong bytes at offset %lld\n", remote,
                    (long long)off);
            rc = 1;
        }
    }
    close(lfd);
    close(rfd);
    return rc;
}

static int bench_smallfiles(const char *dir, long count, size_t bytes, uint64_t seed)
{
    unsigned char *buf = malloc(bytes ? bytes : 1);
    char path[4096];
    int rc = 0;
    if (!buf) {
        fprintf(stderr, "benchtool: out of memory\n");
        return 1;
    }
    for (long i = 0; i < count && rc == 0; i++) {
        snprintf(path, sizeof path, "%s/f%04ld", dir, i);
        bench_fill(buf, bytes, &seed);
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0)
            rc = bench_fail("create", path);
        else if (bench_write_all(fd, buf, bytes) < 0) {
            rc = bench_fail("write", path);
            close(fd);
        } else if (close(fd) < 0)
            rc = bench_fail("close", path);
    }
    free(buf);
    return rc;
}

static int bench_usage(void)
{
    fprintf(stderr, "usage: benchtool gen FILE BYTES SEED | hash FILE|- |\n"
                    "       randread LOCAL REMOTE COUNT SEED | smallfiles DIR COUNT BYTES SEED\n");
    return 2;
}

int main(int argc, char **argv)
{
    if (argc == 5 && strcmp(argv[1], "gen") == 0)
        return bench_gen(argv[2], strtoull(argv[3], NULL, 10), bench_seed(argv[4]));
    if (argc == 3 && strcmp(argv[1], "hash") == 0)
        return bench_hash(argv[2]);
    if (argc == 6 && strcmp(argv[1], "randread") == 0)
        return bench_randread(argv[2], argv[3], strtol(argv[4], NULL, 10), bench_seed(argv[5]));
    if (argc == 6 && strcmp(argv[1], "smallfiles") == 0)
        return bench_smallfiles(argv[2], strtol(argv[3], NULL, 10),
                                (size_t)strtoull(argv[4], NULL, 10), bench_seed(argv[5]));
    return bench_usage();
}

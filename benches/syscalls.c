// What the system calls of a tick cost on this machine, in a tight loop (warm caches):
// process_vm_readv by number of pieces and pages, and reading a thread's state from
// /proc. The sampler's batching (pieces under a page apart are merged) and its choice
// of /proc file (wchan over stat) follow from these numbers.
// usage: syscalls PID ADDR   (ADDR: the start of a readable region of PID of 40 KiB or
// more, e.g. its [heap]; PID's first thread is asked for its state, and so is a thread
// of this program that sleeps)
// build: gcc -O2 -pthread -o /tmp/syscalls benches/syscalls.c
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define CALLS 100000

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static char buf[64 * 4096];

// PIECES pieces of LEN bytes, STRIDE bytes apart, from ADDR on.
static void readv_case(int pid, unsigned long addr, int pieces, long stride, long len) {
    struct iovec local[64], remote[64];
    for (int i = 0; i < pieces; i++) {
        local[i].iov_base = buf + i * 4096;
        local[i].iov_len = len;
        remote[i].iov_base = (void *)(addr + i * stride);
        remote[i].iov_len = len;
    }
    double t = now();
    for (int k = 0; k < CALLS; k++)
        if (process_vm_readv(pid, local, pieces, remote, pieces, 0) < 0) {
            perror("process_vm_readv");
            exit(1);
        }
    printf("process_vm_readv, %2d piece(s) of %5ld B, %5ld B apart: %5.2f us\n", pieces, len,
           stride, (now() - t) / CALLS * 1e6);
}

static void pread_case(int pid, int tid, const char *file) {
    char path[64], s[512];
    snprintf(path, sizeof path, "/proc/%d/task/%d/%s", pid, tid, file);
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        perror(path);
        return;
    }
    double t = now();
    for (int k = 0; k < CALLS; k++) pread(fd, s, sizeof s, 0);
    printf("pread of %-34s %5.2f us (%s)\n", path, (now() - t) / CALLS * 1e6,
           tid == pid ? "target's first thread" : "a sleeping thread");
    close(fd);
}

static int sleeper_tid;

static void *sleeper(void *unused) {
    (void)unused;
    __atomic_store_n(&sleeper_tid, gettid(), __ATOMIC_RELEASE);
    for (;;) pause();
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s PID ADDR\n", argv[0]);
        return 2;
    }
    int pid = atoi(argv[1]);
    unsigned long addr = strtoul(argv[2], 0, 0);
    readv_case(pid, addr, 1, 0, 64);
    readv_case(pid, addr, 1, 0, 4096);
    readv_case(pid, addr, 1, 0, 10 * 4096);
    readv_case(pid, addr, 10, 64, 64);
    readv_case(pid, addr, 10, 4096, 64);
    pthread_t thread;
    pthread_create(&thread, NULL, sleeper, NULL);
    while (!__atomic_load_n(&sleeper_tid, __ATOMIC_ACQUIRE)) usleep(1000);
    usleep(10000);
    pread_case(pid, pid, "stat");
    pread_case(pid, pid, "wchan");
    pread_case(getpid(), sleeper_tid, "stat");
    pread_case(getpid(), sleeper_tid, "wchan");
    return 0;
}

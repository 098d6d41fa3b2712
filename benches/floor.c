// Cost floor of a sampling tick on this machine: sleep to the next tick (with the same
// 1 ns timer slack as pyscry), then optionally one pread of a thread's stat file and one
// process_vm_readv of the given regions of the target.
// usage: floor RATE SECONDS PID ADDR PIECES [STAT]
//   PIECES: a number N: N 64-byte regions on N consecutive pages from ADDR (a readable
//           address in PID); 0: no read;
//           or a list ADDR+LEN,ADDR+LEN,... (hex addresses; ADDR is then ignored): the
//           very regions a pyscry tick reads (see `strace -e process_vm_readv`).
//   STAT 0: no pread of the stat file, as when pyscry samples one thread, which holds
//           the GIL and so is known to run (default 1).
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/uio.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#define MAX_PIECES 64

int main(int argc, char **argv) {
    if (argc < 6) {
        fprintf(stderr, "usage: %s RATE SECONDS PID ADDR PIECES [STAT]\n", argv[0]);
        return 2;
    }
    double rate = atof(argv[1]), secs = atof(argv[2]);
    int pid = atoi(argv[3]); unsigned long addr = strtoul(argv[4], 0, 0);
    int stat = argc > 6 ? atoi(argv[6]) : 1;
    static char buf[MAX_PIECES][65536];
    struct iovec local[MAX_PIECES], remote[MAX_PIECES];
    int pieces = 0;
    if (strchr(argv[5], '+')) {
        for (char *item = strtok(argv[5], ","); item && pieces < MAX_PIECES; item = strtok(0, ",")) {
            char *plus;
            remote[pieces].iov_base = (void *)strtoul(item, &plus, 16);
            remote[pieces].iov_len = strtoul(plus + 1, 0, 10);
            if (remote[pieces].iov_len > sizeof buf[0]) { fprintf(stderr, "region too long\n"); return 2; }
            pieces++;
        }
    } else {
        pieces = atoi(argv[5]);
        if (pieces > MAX_PIECES) { fprintf(stderr, "at most %d pieces\n", MAX_PIECES); return 2; }
        for (int i = 0; i < pieces; i++) {
            remote[i].iov_base = (void *)(addr + 4096UL * i); remote[i].iov_len = 64;
        }
    }
    for (int i = 0; i < pieces; i++) { local[i].iov_base = buf[i]; local[i].iov_len = remote[i].iov_len; }
    prctl(PR_SET_TIMERSLACK, 1);
    char path[64]; snprintf(path, sizeof path, "/proc/%d/stat", pid);
    int fd = open(path, O_RDONLY);
    struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t);
    long period = (long)(1e9 / rate), n = (long)(rate * secs);
    for (long i = 0; i < n; i++) {
        t.tv_nsec += period; while (t.tv_nsec >= 1000000000) { t.tv_nsec -= 1000000000; t.tv_sec++; }
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &t, 0);
        if (pieces && stat) { char s[512]; pread(fd, s, sizeof s, 0); }
        if (pieces && process_vm_readv(pid, local, pieces, remote, pieces, 0) < 0) { perror("readv"); return 1; }
    }
    struct rusage ru; getrusage(RUSAGE_SELF, &ru);
    double cpu = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
    printf("%.0f Hz, %d pieces%s: %.1f us CPU per tick\n", rate, pieces,
           pieces && !stat ? " (no stat)" : "", cpu / n * 1e6);
    return 0;
}

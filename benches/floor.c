// Cost floor of a sampling tick on this machine: sleep to the next tick (with the same
// 1 ns timer slack as pyscry), then optionally one pread of a thread's stat file and one
// process_vm_readv of N 64-byte regions spread over N pages of the target.
// usage: floor RATE SECONDS PID ADDR PAGES   (ADDR: a readable address in PID; 0 PAGES: no read)
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/uio.h>
#include <sys/prctl.h>
#include <sys/resource.h>
int main(int argc, char **argv) {
    double rate = atof(argv[1]), secs = atof(argv[2]);
    int pid = atoi(argv[3]); unsigned long addr = strtoul(argv[4], 0, 0); int pages = atoi(argv[5]);
    prctl(PR_SET_TIMERSLACK, 1);
    char path[64]; snprintf(path, sizeof path, "/proc/%d/stat", pid);
    int fd = open(path, O_RDONLY);
    struct iovec local[64], remote[64]; char buf[64][64];
    for (int i = 0; i < pages; i++) { local[i].iov_base = buf[i]; local[i].iov_len = 64;
        remote[i].iov_base = (void *)(addr + 4096UL * i); remote[i].iov_len = 64; }
    struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t);
    long period = (long)(1e9 / rate), n = (long)(rate * secs);
    for (long i = 0; i < n; i++) {
        t.tv_nsec += period; while (t.tv_nsec >= 1000000000) { t.tv_nsec -= 1000000000; t.tv_sec++; }
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &t, 0);
        if (pages) { char s[512]; pread(fd, s, sizeof s, 0);
            if (process_vm_readv(pid, local, pages, remote, pages, 0) < 0) { perror("readv"); return 1; } }
    }
    struct rusage ru; getrusage(RUSAGE_SELF, &ru);
    double cpu = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
    printf("%.0f Hz, %d pages: %.1f us CPU per tick\n", rate, pages, cpu / n * 1e6);
    return 0;
}

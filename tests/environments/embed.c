/* A program that embeds CPython: its executable is not python, and the runtime is the
 * libpython it links. It runs the script named by its first argument, with sys.argv
 * set to exactly its arguments (the script, then the rest).
 *
 * Build: gcc embed.c $(python3.X-config --cflags) $(python3.X-config --ldflags --embed)
 *        -Wl,-rpath,LIBDIR -o embedhost
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdio.h>

static int run_script(int argc, char **argv) {
    PyStatus status;
    PyConfig config;
    PyConfig_InitPythonConfig(&config);
    config.parse_argv = 0;
    status = PyConfig_SetBytesArgv(&config, argc - 1, argv + 1);
    if (PyStatus_Exception(status)) {
        goto fail;
    }
    status = Py_InitializeFromConfig(&config);
    if (PyStatus_Exception(status)) {
        goto fail;
    }
    PyConfig_Clear(&config);

    FILE *fp = fopen(argv[1], "r");
    if (fp == NULL) {
        perror(argv[1]);
        return 2;
    }
    int failed = PyRun_SimpleFileExFlags(fp, argv[1], 1, NULL);
    if (Py_FinalizeEx() < 0) {
        return 120;
    }
    return failed ? 1 : 0;

fail:
    PyConfig_Clear(&config);
    Py_ExitStatusException(status);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s SCRIPT [ARG...]\n", argv[0]);
        return 2;
    }
    return run_script(argc, argv);
}

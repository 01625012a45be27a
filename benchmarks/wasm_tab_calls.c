/*
 * Import-call cost for a guest in a browser tab (tests/browser/measure_wasm.py):
 * N calls of unisockets_errno (a synchronous import), N of recv on a bad
 * descriptor (a blocking import that the tab's Python answers at once, EBADF,
 * without suspending) and N of usleep(0) (poll_oneoff, a blocking import that
 * suspends the guest through JSPI for one turn of the tab's event loop).
 * Prints microseconds per call.
 *
 * Usage: wasm_tab_calls [N]   (default 5000)
 */
#define UNISOCKETS_WITH_ALIAS
#include "unisockets.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

__attribute__((import_module("env"), import_name("unisockets_errno"))) int
unisockets_errno(void);

static double now_us(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

int main(int argc, char **argv) {
  int n = argc > 1 ? atoi(argv[1]) : 5000;
  char byte;
  int sink = 0;
  double start = now_us();
  for (int i = 0; i < n; i++) {
    sink += unisockets_errno();
  }
  double middle = now_us();
  for (int i = 0; i < n; i++) {
    sink += (int)recv(-1, &byte, 1, 0);
  }
  double end = now_us();
  for (int i = 0; i < n; i++) {
    usleep(0);
  }
  double slept = now_us();
  printf("sync import: %.2f us\n", (middle - start) / n);
  printf("blocking import, no wait: %.2f us\n", (end - middle) / n);
  printf("blocking import, suspended: %.2f us\n", (slept - end) / n);
  return sink == 0 ? 1 : 0;
}

/*
 * A test guest for datagram sockets in the unisockets WebAssembly host
 * (tests/wasm/test_datagram.py): calls that must fail, one line each,
 * "<what> <return value> <errno name>" (errno name only for -1).
 *
 *   dgram_probe PORT BIG   BIG: a payload size over the node's datagram limit
 */
#define UNISOCKETS_WITH_ALIAS
#include "unisockets.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *errno_name(int code) {
  switch (code) {
  case EADDRINUSE: return "EADDRINUSE";
  case EBADF: return "EBADF";
  case EDESTADDRREQ: return "EDESTADDRREQ";
  case EFAULT: return "EFAULT";
  case EINVAL: return "EINVAL";
  case EMSGSIZE: return "EMSGSIZE";
  case ENOTCONN: return "ENOTCONN";
  case ENOTSUP: return "ENOTSUP";
  case EPROTONOSUPPORT: return "EPROTONOSUPPORT";
  default: return "other";
  }
}

static void report(const char *what, long result) {
  if (result == -1) {
    printf("%s -1 %s\n", what, errno_name(errno));
  } else {
    printf("%s %ld\n", what, result);
  }
}

static char big[70000];

int main(int argc, char **argv) {
  int port = argc > 1 ? atoi(argv[1]) : 4242;
  size_t big_size = argc > 2 ? (size_t)atol(argv[2]) : sizeof(big);
  struct sockaddr_in address;
  memset(&address, 0, sizeof(address));
  address.sin_family = AF_INET;
  address.sin_port = htons((uint16_t)port);

  report("socket-udp-tcp", socket(AF_INET, SOCK_DGRAM, 6));
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  report("send-unconnected", send(fd, "x", 1, 0));
  report("listen", listen(fd, 1));
  report("shutdown-unconnected", shutdown(fd, SHUT_WR));
  report("bind", bind(fd, (struct sockaddr *)&address, sizeof(address)));
  report("bind-again", bind(fd, (struct sockaddr *)&address, sizeof(address)));
  int other = socket(AF_INET, SOCK_DGRAM, 0);
  report("bind-taken", bind(other, (struct sockaddr *)&address, sizeof(address)));
  report("accept", accept(fd, NULL, NULL));
  report("sendto-big", sendto(fd, big, big_size, 0, (struct sockaddr *)&address,
                              sizeof(address)));
  report("sendto-self", sendto(fd, "hi", 2, 0, (struct sockaddr *)&address,
                               sizeof(address)));
  char buffer[16];
  struct sockaddr_in from;
  report("recvfrom-no-length", recvfrom(fd, buffer, sizeof(buffer), 0,
                                        (struct sockaddr *)&from, NULL));
  socklen_t from_length = sizeof(from);
  report("recvfrom", recvfrom(fd, buffer, sizeof(buffer), 0,
                              (struct sockaddr *)&from, &from_length));
  printf("from-port %d length %d\n", ntohs(from.sin_port), (int)from_length);
  close(fd);
  report("send-closed", sendto(fd, "x", 1, 0, (struct sockaddr *)&address,
                               sizeof(address)));
  return 0;
}

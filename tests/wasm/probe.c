/*
 * A test guest for the unisockets WebAssembly host (tests/wasm/).
 * Each command exercises one behaviour and prints one line per result:
 * "<what> <return value> <errno name>" (errno name only for -1).
 *
 *   probe refused HOST PORT      connect where nobody listens
 *   probe bind-twice PORT        bind+listen, then bind the same port again
 *   probe serve PORT             accept once; check sockaddr/length handling and
 *                                that recv never writes past its buffer; print
 *                                every recv result until EOF or error
 *   probe connect HOST PORT      connect, send "ping", print recv results
 *   probe bad-calls              calls that must fail with a given errno
 *   probe linux-values PORT      socket/bind/listen with Linux's constants
 *   probe datagram PORT BIG      datagram calls that must fail, and one that
 *                                works (BIG: a size over the datagram limit)
 *   probe sleep                  sleep for a long time
 *   probe spin                   loop forever without host calls
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
  case EADDRNOTAVAIL: return "EADDRNOTAVAIL";
  case EAFNOSUPPORT: return "EAFNOSUPPORT";
  case EBADF: return "EBADF";
  case EDESTADDRREQ: return "EDESTADDRREQ";
  case EMSGSIZE: return "EMSGSIZE";
  case ECONNREFUSED: return "ECONNREFUSED";
  case ECONNRESET: return "ECONNRESET";
  case EFAULT: return "EFAULT";
  case EINVAL: return "EINVAL";
  case EISCONN: return "EISCONN";
  case ENOTCONN: return "ENOTCONN";
  case ENOTSOCK: return "ENOTSOCK";
  case ENOTSUP: return "ENOTSUP";
  case EPIPE: return "EPIPE";
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
  fflush(stdout);
}

static struct sockaddr_in address_of(const char *host, int port) {
  struct sockaddr_in address;
  memset(&address, 0, sizeof(address));
  address.sin_family = AF_INET;
  address.sin_port = htons((uint16_t)port);
  inet_pton(AF_INET, host, &address.sin_addr);
  return address;
}

static int listening_socket(int port) {
  struct sockaddr_in address = address_of("0.0.0.0", port);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  report("socket", fd);
  report("bind", bind(fd, (struct sockaddr *)&address, sizeof(address)));
  report("listen", listen(fd, 5));
  return fd;
}

static void print_receives(int fd) {
  char buffer[64];
  for (;;) {
    ssize_t received = recv(fd, buffer, sizeof(buffer), 0);
    report("recv", received);
    if (received <= 0) {
      return;
    }
  }
}

static int serve(int port) {
  int fd = listening_socket(port);
  /* A sockaddr_in followed by a canary; the length says only 8 bytes fit. */
  struct {
    struct sockaddr_in address;
    unsigned char canary[8];
  } peer;
  memset(&peer, 0xAB, sizeof(peer));
  socklen_t length = 8;
  int client = accept(fd, (struct sockaddr *)&peer.address, &length);
  report("accept", client);
  if (client == -1) {
    return 1;
  }
  char ip[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &peer.address.sin_addr, ip, sizeof(ip));
  printf("peer family=%u ip=%s length=%u tail_kept=%s canary_kept=%s\n",
         peer.address.sin_family, ip, (unsigned)length,
         ((unsigned char *)&peer.address)[8] == 0xAB ? "yes" : "no",
         peer.canary[0] == 0xAB && peer.canary[7] == 0xAB ? "yes" : "no");

  /* recv into 4 bytes followed by a canary. */
  struct {
    char data[4];
    unsigned char canary[60];
  } small;
  memset(&small, 0xCD, sizeof(small));
  ssize_t received = recv(client, small.data, sizeof(small.data), 0);
  report("recv4", received);
  int intact = 1;
  for (size_t i = 0; i < sizeof(small.canary); i++) {
    intact &= small.canary[i] == 0xCD;
  }
  printf("recv4 data=%.4s canary_kept=%s\n", small.data, intact ? "yes" : "no");
  report("send", send(client, "pong", 4, 0));
  print_receives(client);
  report("send-after", send(client, "late", 4, 0));
  report("close", close(client));
  report("close-again", close(client));
  return 0;
}

static int connect_and_ping(const char *host, int port) {
  struct sockaddr_in address = address_of(host, port);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  report("connect", connect(fd, (struct sockaddr *)&address, sizeof(address)));
  report("send", send(fd, "ping", 4, 0));
  print_receives(fd);
  return 0;
}

static int bad_calls(void) {
  char buffer[8];
  report("send-bad-fd", send(99, "x", 1, 0));
  report("send-stdout", send(1, "x", 1, 0));
  report("socket-bad-family", socket(77, SOCK_STREAM, 0));
  report("socket-bad-protocol", socket(AF_INET, SOCK_STREAM, 99));
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  report("listen-unbound", listen(fd, 1));
  report("accept-unbound", accept(fd, NULL, NULL));
  report("recv-unconnected", recv(fd, buffer, sizeof(buffer), 0));
  report("shutdown-unconnected", shutdown(fd, SHUT_RDWR));
  struct sockaddr_in address = address_of("127.0.0.1", 1);
  report("connect-short-length", connect(fd, (struct sockaddr *)&address, 4));
  report("connect-bad-pointer", connect(fd, (struct sockaddr *)0xFFFFFFF0, 16));
  report("recv-bad-pointer", recv(fd, (void *)0xFFFFFFF0, 64, 0));
  report("close", close(fd));
  report("send-closed", send(fd, "x", 1, 0));
  return 0;
}

static int linux_values(int port) {
  /* AF_INET=2, SOCK_STREAM=1 as a program built with Linux's values passes them. */
  int fd = unisockets_socket(2, 1, 0);
  report("socket", fd);
  struct sockaddr_in address = address_of("127.0.0.1", port);
  address.sin_family = 2;
  report("bind", bind(fd, (struct sockaddr *)&address, sizeof(address)));
  report("listen", listen(fd, 1));
  struct sockaddr_in peer;
  socklen_t length = sizeof(peer);
  int client = accept(fd, (struct sockaddr *)&peer, &length);
  report("accept", client);
  printf("peer family=%u length=%u\n", peer.sin_family, (unsigned)length);
  print_receives(client);
  /* Linux's SHUT_WR is 1 (wasi-libc's SHUT_RD): the peer must see EOF. */
  report("shutdown-linux-wr", shutdown(client, 1));
  return 0;
}

static char big[70000];

static int datagram_calls(int port, size_t big_size) {
  struct sockaddr_in address = address_of("0.0.0.0", port);

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

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: probe COMMAND [ARGS]\n");
    return 2;
  }
  const char *command = argv[1];
  if (strcmp(command, "refused") == 0 && argc == 4) {
    struct sockaddr_in address = address_of(argv[2], atoi(argv[3]));
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    report("connect", connect(fd, (struct sockaddr *)&address, sizeof(address)));
    perror("connect");
    return 0;
  }
  if (strcmp(command, "bind-twice") == 0 && argc == 3) {
    listening_socket(atoi(argv[2]));
    listening_socket(atoi(argv[2]));
    return 0;
  }
  if (strcmp(command, "serve") == 0 && argc == 3) {
    return serve(atoi(argv[2]));
  }
  if (strcmp(command, "connect") == 0 && argc == 4) {
    return connect_and_ping(argv[2], atoi(argv[3]));
  }
  if (strcmp(command, "bad-calls") == 0) {
    return bad_calls();
  }
  if (strcmp(command, "linux-values") == 0 && argc == 3) {
    return linux_values(atoi(argv[2]));
  }
  if (strcmp(command, "datagram") == 0 && argc == 4) {
    return datagram_calls(atoi(argv[2]), (size_t)atol(argv[3]));
  }
  if (strcmp(command, "sleep") == 0) {
    printf("sleeping\n");
    sleep(1000);
    return 0;
  }
  if (strcmp(command, "spin") == 0) {
    printf("spinning\n");
    fflush(stdout);
    volatile unsigned long counter = 0;
    for (;;) {
      counter++;
    }
  }
  fprintf(stderr, "unknown command %s\n", command);
  return 2;
}

/*
 * Echo client: connects to an echo server, sends each line of its standard
 * input and prints what comes back. At the end of its input it shuts down
 * its sending side, prints whatever the server still sends, and exits.
 *
 * Usage: echo_client [HOST [PORT [RETRIES]]]
 *   HOST     the server's address (default 127.0.0.1, as the original's
 *            client: on an overlay node, whichever node bound 127.0.0.1)
 *   PORT     the server's port (default 1234)
 *   RETRIES  how often to retry a refused connect, once a second (default 0)
 */
#define UNISOCKETS_WITH_ALIAS
#include "unisockets.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BUFFER_LENGTH 1024

static int send_all(int fd, const char *data, size_t length) {
  while (length > 0) {
    ssize_t sent = send(fd, data, length, 0);
    if (sent == -1) {
      return -1;
    }
    data += sent;
    length -= (size_t)sent;
  }
  return 0;
}

/* Receives and prints exactly `expected` bytes; returns 0, or -1 on EOF/error. */
static int print_echo(int fd, size_t expected) {
  char buffer[BUFFER_LENGTH];
  while (expected > 0) {
    size_t wanted = expected < sizeof(buffer) ? expected : sizeof(buffer);
    ssize_t received = recv(fd, buffer, wanted, 0);
    if (received == -1) {
      perror("recv");
      return -1;
    }
    if (received == 0) {
      fprintf(stderr, "server closed the connection\n");
      return -1;
    }
    fwrite(buffer, 1, (size_t)received, stdout);
    expected -= (size_t)received;
  }
  fflush(stdout);
  return 0;
}

int main(int argc, char **argv) {
  const char *host = argc > 1 ? argv[1] : "127.0.0.1";
  int port = argc > 2 ? atoi(argv[2]) : 1234;
  int retries = argc > 3 ? atoi(argv[3]) : 0;

  struct sockaddr_in address;
  memset(&address, 0, sizeof(address));
  address.sin_family = AF_INET;
  address.sin_port = htons((uint16_t)port);
  if (inet_pton(AF_INET, host, &address.sin_addr) != 1) {
    fprintf(stderr, "not an IPv4 address: %s\n", host);
    return 2;
  }

  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd == -1) {
    perror("socket");
    return 1;
  }
  while (connect(fd, (struct sockaddr *)&address, sizeof(address)) == -1) {
    if (errno != ECONNREFUSED || retries-- <= 0) {
      perror("connect");
      return 1;
    }
    fprintf(stderr, "connect: %s, retrying in 1 s\n", strerror(errno));
    sleep(1);
  }
  fprintf(stderr, "connected to %s:%d\n", host, port);

  char line[BUFFER_LENGTH];
  while (fgets(line, sizeof(line), stdin) != NULL) {
    size_t length = strlen(line);
    if (send_all(fd, line, length) == -1) {
      perror("send");
      return 1;
    }
    if (print_echo(fd, length) == -1) {
      return 1;
    }
  }

  if (shutdown(fd, SHUT_WR) == -1) {
    perror("shutdown");
    return 1;
  }
  char rest[BUFFER_LENGTH];
  ssize_t received;
  while ((received = recv(fd, rest, sizeof(rest), 0)) > 0) {
    fwrite(rest, 1, (size_t)received, stdout);
  }
  if (received == -1) {
    perror("recv");
    return 1;
  }
  close(fd);
  fprintf(stderr, "disconnected from %s:%d\n", host, port);
  return 0;
}

/*
 * UDP echo client: sends each line of its standard input as one datagram to
 * a UDP echo server and prints the datagram that comes back.
 *
 * Datagrams may be lost, and the runner has no receive timeout yet (no
 * SO_RCVTIMEO, no poll() on sockets): a line whose echo is lost leaves the
 * client waiting. On a LAN or loopback link that is rare; a real protocol
 * over UDP numbers its messages and retries from a timer.
 *
 * Usage: udp_echo_client HOST [PORT]
 *   HOST     the server node's address, e.g. 10.0.0.1
 *   PORT     the server's port (default 1234)
 */
#define UNISOCKETS_WITH_ALIAS
#include "unisockets.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BUFFER_LENGTH 1024

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: udp_echo_client HOST [PORT]\n");
    return 2;
  }
  const char *host = argv[1];
  int port = argc > 2 ? atoi(argv[2]) : 1234;

  struct sockaddr_in server;
  memset(&server, 0, sizeof(server));
  server.sin_family = AF_INET;
  server.sin_port = htons((uint16_t)port);
  if (inet_pton(AF_INET, host, &server.sin_addr) != 1) {
    fprintf(stderr, "not an IPv4 address: %s\n", host);
    return 2;
  }

  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (fd == -1) {
    perror("socket");
    return 1;
  }
  /* connect: the server is the default destination, and only its datagrams arrive. */
  if (connect(fd, (struct sockaddr *)&server, sizeof(server)) == -1) {
    perror("connect");
    return 1;
  }

  char line[BUFFER_LENGTH];
  char answer[BUFFER_LENGTH];
  while (fgets(line, sizeof(line), stdin) != NULL) {
    if (send(fd, line, strlen(line), 0) == -1) {
      perror("send");
      return 1;
    }
    ssize_t received = recv(fd, answer, sizeof(answer), 0);
    if (received == -1) {
      perror("recv");
      return 1;
    }
    fwrite(answer, 1, (size_t)received, stdout);
    fflush(stdout);
  }
  close(fd);
  return 0;
}

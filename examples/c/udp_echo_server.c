/*
 * UDP echo server: binds a datagram socket and sends every datagram back to
 * its sender, as it came (one datagram in, the same datagram out).
 *
 * Usage: udp_echo_server [PORT [COUNT]]
 *   PORT   the port to bind (default 1234), on this node's address
 *   COUNT  exit after echoing this many datagrams (default 0: never)
 */
#define UNISOCKETS_WITH_ALIAS
#include "unisockets.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BUFFER_LENGTH 65536

static char buffer[BUFFER_LENGTH];

int main(int argc, char **argv) {
  int port = argc > 1 ? atoi(argv[1]) : 1234;
  long count = argc > 2 ? atol(argv[2]) : 0;

  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (fd == -1) {
    perror("socket");
    return 1;
  }
  struct sockaddr_in address;
  memset(&address, 0, sizeof(address));
  address.sin_family = AF_INET;
  address.sin_port = htons((uint16_t)port);
  if (bind(fd, (struct sockaddr *)&address, sizeof(address)) == -1) {
    perror("bind");
    return 1;
  }
  fprintf(stderr, "echoing datagrams on port %d\n", port);

  for (long echoed = 0; count == 0 || echoed < count; echoed++) {
    struct sockaddr_in client;
    socklen_t client_length = sizeof(client);
    ssize_t received = recvfrom(fd, buffer, sizeof(buffer), 0,
                                (struct sockaddr *)&client, &client_length);
    if (received == -1) {
      perror("recvfrom");
      return 1;
    }
    if (sendto(fd, buffer, (size_t)received, 0, (struct sockaddr *)&client,
               client_length) == -1) {
      perror("sendto");
      return 1;
    }
  }
  close(fd);
  return 0;
}

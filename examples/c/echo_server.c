/*
 * Echo server: accepts connections one after another and sends every byte
 * it receives back, until the client shuts down its side.
 *
 * Usage: echo_server [HOST [PORT [CLIENTS]]]
 *   HOST     address to bind (default 127.0.0.1, as the original's server;
 *            on an overlay node an ordinary overlay address that this node
 *            then holds, reachable from every node of the subnet; 0.0.0.0
 *            is this node's own address)
 *   PORT     port to bind (default 1234)
 *   CLIENTS  exit after serving this many clients (default 0: forever)
 */
#define UNISOCKETS_WITH_ALIAS
#include "unisockets.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BACKLOG 5
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

static void serve(int client_fd, const char *peer) {
  char buffer[BUFFER_LENGTH];
  for (;;) {
    ssize_t received = recv(client_fd, buffer, sizeof(buffer), 0);
    if (received == -1) {
      fprintf(stderr, "recv from %s: %s\n", peer, strerror(errno));
      return;
    }
    if (received == 0) {
      return;
    }
    if (send_all(client_fd, buffer, (size_t)received) == -1) {
      fprintf(stderr, "send to %s: %s\n", peer, strerror(errno));
      return;
    }
  }
}

int main(int argc, char **argv) {
  const char *host = argc > 1 ? argv[1] : "127.0.0.1";
  int port = argc > 2 ? atoi(argv[2]) : 1234;
  int clients = argc > 3 ? atoi(argv[3]) : 0;

  struct sockaddr_in address;
  memset(&address, 0, sizeof(address));
  address.sin_family = AF_INET;
  address.sin_port = htons((uint16_t)port);
  if (inet_pton(AF_INET, host, &address.sin_addr) != 1) {
    fprintf(stderr, "not an IPv4 address: %s\n", host);
    return 2;
  }

  int server_fd = socket(AF_INET, SOCK_STREAM, 0);
  if (server_fd == -1) {
    perror("socket");
    return 1;
  }
  if (bind(server_fd, (struct sockaddr *)&address, sizeof(address)) == -1) {
    perror("bind");
    return 1;
  }
  if (listen(server_fd, BACKLOG) == -1) {
    perror("listen");
    return 1;
  }
  printf("listening on %s:%d\n", host, port);

  for (int served = 0; clients == 0 || served < clients; served++) {
    struct sockaddr_in client_address;
    socklen_t client_address_length = sizeof(client_address);
    int client_fd = accept(server_fd, (struct sockaddr *)&client_address,
                           &client_address_length);
    if (client_fd == -1) {
      perror("accept");
      return 1;
    }
    char peer[INET_ADDRSTRLEN + 8];
    char ip[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &client_address.sin_addr, ip, sizeof(ip));
    snprintf(peer, sizeof(peer), "%s:%u", ip, ntohs(client_address.sin_port));
    printf("accepted %s\n", peer);

    serve(client_fd, peer);

    if (shutdown(client_fd, SHUT_RDWR) == -1) {
      perror("shutdown");
    }
    if (close(client_fd) == -1) {
      perror("close");
    }
    printf("closed %s\n", peer);
  }
  close(server_fd);
  return 0;
}

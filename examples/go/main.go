//go:build wasip1

// Echo client in Go: connects to an echo server, sends each line of its
// standard input and prints what comes back; at the end of its input it
// shuts down its sending side and prints what the server still sends.
//
// Usage: echo_client [HOST [PORT]] (default 127.0.0.1 1234, as the original's
// client: on an overlay node, whichever node bound 127.0.0.1)
//
// Build: GOOS=wasip1 GOARCH=wasm go build -o echo_client_go.wasm .
package main

import (
	"bufio"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strconv"
)

func fail(what string, err error) {
	fmt.Fprintf(os.Stderr, "%s: %v\n", what, err)
	os.Exit(1)
}

// writeAll sends all of data.
func writeAll(fd int32, data []byte) error {
	for len(data) > 0 {
		sent, err := send(fd, data)
		if err != nil {
			return err
		}
		data = data[sent:]
	}
	return nil
}

// readExactly receives len(buffer) bytes.
func readExactly(fd int32, buffer []byte) error {
	for got := 0; got < len(buffer); {
		received, err := recv(fd, buffer[got:])
		if err != nil {
			return err
		}
		if received == 0 {
			return io.ErrUnexpectedEOF
		}
		got += received
	}
	return nil
}

func main() {
	host, port := "127.0.0.1", uint64(1234)
	if len(os.Args) > 1 {
		host = os.Args[1]
	}
	if len(os.Args) > 2 {
		var err error
		if port, err = strconv.ParseUint(os.Args[2], 10, 16); err != nil {
			fail("port", err)
		}
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || !ip.Is4() {
		fail("host", fmt.Errorf("not an IPv4 address: %q", host))
	}
	server := netip.AddrPortFrom(ip, uint16(port))

	fd, err := socket()
	if err != nil {
		fail("socket", err)
	}
	if err := connect(fd, server); err != nil {
		fail("connect", err)
	}
	fmt.Fprintf(os.Stderr, "connected to %v\n", server)

	input := bufio.NewReader(os.Stdin)
	for {
		line, readErr := input.ReadBytes('\n')
		if len(line) > 0 {
			if err := writeAll(fd, line); err != nil {
				fail("send", err)
			}
			echo := make([]byte, len(line))
			if err := readExactly(fd, echo); err != nil {
				fail("recv", err)
			}
			os.Stdout.Write(echo)
		}
		if readErr == io.EOF {
			break
		}
		if readErr != nil {
			fail("stdin", readErr)
		}
	}

	if err := shutdownWrite(fd); err != nil {
		fail("shutdown", err)
	}
	buffer := make([]byte, 1024)
	for {
		received, err := recv(fd, buffer)
		if err != nil {
			fail("recv", err)
		}
		if received == 0 {
			break
		}
		os.Stdout.Write(buffer[:received])
	}
	fmt.Fprintf(os.Stderr, "disconnected from %v\n", server)
}

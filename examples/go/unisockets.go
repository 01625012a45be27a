//go:build wasip1

// The unisockets imports (module "env"), as the C header unisockets.h
// declares them, for Go programs built with GOOS=wasip1 GOARCH=wasm.
package main

import (
	"encoding/binary"
	"net/netip"
	"syscall"
	"unsafe"
)

// wasi-libc's constant values; the host also accepts Linux's.
const (
	afInet     = 1
	sockStream = 6
	shutWr     = 2
)

//go:wasmimport env unisockets_socket
func unisocketsSocket(domain, typ, protocol int32) int32

//go:wasmimport env unisockets_connect
func unisocketsConnect(fd int32, address unsafe.Pointer, length uint32) int32

//go:wasmimport env unisockets_send
func unisocketsSend(fd int32, buffer unsafe.Pointer, length uint32, flags int32) int32

//go:wasmimport env unisockets_recv
func unisocketsRecv(fd int32, buffer unsafe.Pointer, length uint32, flags int32) int32

// unisockets_errno is this host's extension: the errno of the calling
// program's last failed unisockets call (Go programs cannot export errno).
//
//go:wasmimport env unisockets_errno
func unisocketsErrno() int32

//go:wasmimport wasi_snapshot_preview1 sock_shutdown
func sockShutdown(fd int32, how int32) int32

func lastError() error {
	return syscall.Errno(unisocketsErrno())
}

// sockaddrIn is a struct sockaddr_in: family (little-endian), port and
// address (network byte order), zero padding.
func sockaddrIn(address netip.AddrPort) [16]byte {
	var raw [16]byte
	binary.LittleEndian.PutUint16(raw[0:2], afInet)
	binary.BigEndian.PutUint16(raw[2:4], address.Port())
	ip := address.Addr().As4()
	copy(raw[4:8], ip[:])
	return raw
}

func socket() (int32, error) {
	fd := unisocketsSocket(afInet, sockStream, 0)
	if fd == -1 {
		return -1, lastError()
	}
	return fd, nil
}

func connect(fd int32, address netip.AddrPort) error {
	raw := sockaddrIn(address)
	if unisocketsConnect(fd, unsafe.Pointer(&raw[0]), uint32(len(raw))) == -1 {
		return lastError()
	}
	return nil
}

func send(fd int32, data []byte) (int, error) {
	if len(data) == 0 {
		return 0, nil
	}
	sent := unisocketsSend(fd, unsafe.Pointer(&data[0]), uint32(len(data)), 0)
	if sent == -1 {
		return 0, lastError()
	}
	return int(sent), nil
}

func recv(fd int32, buffer []byte) (int, error) {
	received := unisocketsRecv(fd, unsafe.Pointer(&buffer[0]), uint32(len(buffer)), 0)
	if received == -1 {
		return 0, lastError()
	}
	return int(received), nil
}

func shutdownWrite(fd int32) error {
	if errno := sockShutdown(fd, shutWr); errno != 0 {
		return syscall.Errno(errno)
	}
	return nil
}

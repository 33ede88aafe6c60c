// Package wsconn owns a server's WebSocket connection from the hijack to
// the close: the upgrade's hijack, framing, writes (inline when the kernel
// takes them, a writer goroutine otherwise, vectored batches, TLS batches
// joined into one record), parking idle sockets on one epoll set (over
// TLS too), pings and pongs, read limits and deadlines, and close codes. It knows nothing
// of what the messages mean: its owner (package wsrelay) checks origins
// and its own limits before Upgrade, handles each message (Handler) and
// sends frames (Socket.Send). It imports no package of this module; its
// metrics go out through Hooks, which the owner implements.
//
// # Frames
//
// A server's frame is the same bytes for every socket (RFC 6455 §5.1: it
// is unmasked), so a message is framed once, in place (NewFrame, SetText)
// and shared. Frame counts its holders: Send takes over one reference
// and the socket releases it when the frame is written, replaced in the
// queue by a newer message of its Key, or dropped; the last release puts
// the buffer back in a pool. A fan-out Retains before each Send and
// Releases once at the end, so a buffer is reused only when no socket
// still holds it, and a release too many panics instead of corrupting a
// frame on the wire. A socket that keeps up writes at once and lets go,
// so a fan-out to many sockets recycles one buffer per message.
//
// # Who writes, who reads
//
// Only the transport writes to a socket. gorilla/websocket reads, and
// the close frames it writes on its own (a client's close echoed, 1009
// for an oversized message, 1002 for a protocol error) are intercepted on
// the connection it writes to (hijack.go, readerConn) and sent by the
// transport as the socket's last frame; its ping and pong replies are
// replaced by the transport's, which go through the socket's queue. So
// frames never interleave and one lock (the socket's write lock) orders
// every write.
//
// Reading stays with gorilla, measured: an idle socket costs about 1.2 to
// 1.6 KB of heap and no goroutine (BenchmarkIdleConnMemory in wsrelay,
// 1,000 sockets; the same before and after this package was cut out), and
// a 100-byte message read and echoed takes 76 to 120 µs a round trip on a
// loaded 2-core machine with 10 allocations, the client's included
// (BenchmarkReadEcho). Neither leaves a reader of our own much to win,
// and gorilla's reader is tested against fragmentation, control frames
// between fragments, masking and limits; ours would have to be. The
// transport adds what gorilla leaves out: UTF-8 of text messages (1007),
// a read limit that follows the owner's state (Handler.ReadLimit), the
// read deadline of two ping intervals, and the time a message has been
// arriving for (Socket.MessageStart).
//
// # Goroutines
//
// A socket's reader goroutine runs while the client has something to
// read; an idle socket is parked with the idle poller and holds none
// (park.go). A writer goroutine runs only while the socket's queue is
// non-empty (writer.go). Every one is counted by the Transport's
// WaitGroup (Wait); Close stops the poller once every socket has ended.
//
// # TLS
//
// Caddy terminates TLS in the process, so a wss:// socket reads and
// writes through a *tls.Conn, and gets the plain socket's economy where
// crypto/tls allows, measured with BenchmarkIdleConnMemoryTLS, Fanout(TLS)
// and ReadEcho(TLS) (noisy, on a shared 2-core machine):
//
//   - Parking. crypto/tls buffers input the descriptor no longer shows
//     (decrypted bytes, ciphertext read ahead, handshake bytes) and has no
//     API to say so; tlsInput reads those buffers' lengths by reflection,
//     its layout checked once, and a socket parks on the TCP descriptor
//     under the TLS only when all are empty (else its reader reads on).
//     Reading through a buffer of a whole record (16 KiB) would not do
//     instead: a record read leaves the next ones read ahead as
//     ciphertext. A parked TLS socket also drops the tls.Conn's empty
//     input buffers, which keep the handshake's size forever otherwise.
//     An idle TLS socket went from 15.2 KB (reader goroutine, 4.1 KB of
//     it stack) to 9.4 KB parked, and 5.3 KB with the buffers dropped
//     (heap and stacks, 1,000 sockets; a plain one is 1.6 KB); the rest
//     is crypto/tls's per-connection state (its Conn, two AES-GCM keys).
//   - Inline writes. A tls.Conn has no non-blocking write, and a write
//     whose deadline passes mid-record breaks the connection for good, so
//     a short deadline cannot play EAGAIN's part. Instead the sender asks
//     the kernel (SO_MEMINFO, Linux) whether the socket's queued memory
//     leaves room for the record, which is exactly when Linux's write
//     does not wait, and writes it itself if so; else the frame goes to
//     the writer goroutine as before. The TLS fan-out went from 8 to 3
//     allocations and from 810 to 544 B a delivery, the client's reads
//     included (plain: 2 and 520 B); its time is within this machine's
//     noise, as the read-echo round trip's is. The kernel is asked once
//     per burst, its answer spent by each write (roomCheck), and the
//     write deadline is left standing between writes (standingDeadline):
//     per frame, the two had cost a quarter of the gateway's CPU at
//     10,000 TLS clients, which now pay plain's cost and the record's
//     encryption.
//   - Batches. What queues up is joined into one record (writer.go).
//
// # Platforms
//
// Three things are platform-specific, each with a portable fallback: the
// idle poller needs epoll (idlepoll_linux.go; elsewhere an idle socket's
// reader waits in gorilla), the inline write is a non-blocking write(2)
// (rawwrite_unix.go; elsewhere every frame goes through the writer
// goroutine), and the inline TLS write asks Linux for the send memory
// (tlsroom_linux.go; elsewhere TLS frames go through the writer). The
// build tag nellis_portable forces the fallbacks on Linux, so that `make
// test` runs this package's and wsrelay's tests against them too.
package wsconn

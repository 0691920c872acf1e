"""A TCP proxy that tests can cut and restore, to play a broker outage for one client
while the real broker keeps running for everyone else."""
import socket

import eventlet


class TcpProxy:
    def __init__(self, upstream_host, upstream_port):
        self.upstream = (upstream_host, upstream_port)
        self.listener = eventlet.listen(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.connections = []
        self.cut_off = False
        self._acceptor = eventlet.spawn(self._accept)

    def cut(self):
        """The broker 'goes away': every open connection drops, new ones are refused."""
        self.cut_off = True
        for sock in self.connections:
            # shutdown, not close: the piping greenthreads see EOF and close their own
            # sockets, so no file descriptor is freed while eventlet still watches it.
            _shutdown(sock)
        self.connections.clear()

    def restore(self):
        self.cut_off = False

    def close(self):
        self.cut()
        self._acceptor.kill()
        self.listener.close()

    def _accept(self):
        while True:
            client, _ = self.listener.accept()
            if self.cut_off:
                _close(client)
                continue
            try:
                server = eventlet.connect(self.upstream)
            except OSError:
                _close(client)
                continue
            self.connections += [client, server]
            eventlet.spawn(self._pipe, client, server)
            eventlet.spawn(self._pipe, server, client)

    def _pipe(self, source, target):
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                target.sendall(data)
        except OSError:
            pass
        finally:
            _shutdown(target)  # the other pipe greenthread closes `target` when it sees EOF
            source.close()


def _shutdown(sock):
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def _close(sock):
    _shutdown(sock)
    sock.close()

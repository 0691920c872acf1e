"""`bench_echo`: the callee of the service-to-service RPC measurement. It does nothing but
answer, so what is measured is the RPC machinery, not work behind it."""
from common.runtime.rpc import rpc


class EchoService:
    name = "bench_echo"

    @rpc
    def ping(self, payload=None):
        return payload

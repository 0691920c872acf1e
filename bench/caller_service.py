"""`bench_caller`: the caller of the service-to-service RPC measurement. It calls `bench_echo`
through the project's own RPC dependency (common.runtime.rpc.TimedServiceRpc, as every service does),
so an improvement to that class shows here. Driven over HTTP: each `GET /drive` runs one loop
of sequential calls in one worker; N parallel drives are N calls in flight."""
import json
import time

import eventlet
from nameko.web.handlers import http

from common.runtime.rpc import TimedServiceRpc


class CallerService:
    name = "bench_caller"

    echo = TimedServiceRpc("bench_echo")

    @http("GET", "/drive")
    def drive(self, request):
        """?calls=N&start_at=EPOCH: wait until start_at (so parallel drives start together),
        then make N calls; answers the wall-clock window and each call's latency."""
        calls = int(request.args.get("calls", 100))
        start_at = float(request.args.get("start_at", 0))
        delay = start_at - time.time()
        if delay > 0:
            eventlet.sleep(delay)
        latencies = []
        started = time.time()
        for number in range(calls):
            sent = time.perf_counter()
            self.echo.ping(number)
            latencies.append(time.perf_counter() - sent)
        finished = time.time()
        return json.dumps({"started": started, "finished": finished, "latencies": latencies})

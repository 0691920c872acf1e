"""RPC between services: our typed errors cross the wire as themselves, and every call
has a deadline, so a stopped or stuck service becomes 503/504 instead of a hang."""
import eventlet
import nameko
from kombu.exceptions import OperationalError
from nameko.exceptions import UnknownService, deserialize_to_instance
from nameko.rpc import ReplyListener, ServiceRpc

from common import errors

for _error in (*errors.EXPECTED_ERRORS, errors.ServiceUnavailable, errors.ServiceTimeout,
               errors.PayloadTooLarge):
    deserialize_to_instance(_error)


class StartupSafeReplyListener(ReplyListener):
    """nameko's reply listener, minus a startup race: a call made before its reply queue
    was first declared made the 'lost replies' check look for a queue that did not exist
    yet, and ReplyQueueExpiredWithPendingReplies killed the whole container. On the first
    consume nothing can have been lost; on reconnects the check stands."""

    _declared = False

    def check_for_lost_replies(self):
        if not self._declared:
            self._declared = True
            return
        super().check_for_lost_replies()


class TimedServiceRpc(ServiceRpc):
    """`ServiceRpc` whose calls raise ServiceTimeout after RPC_TIMEOUT seconds and
    ServiceUnavailable when the service or the broker cannot be reached."""

    reply_listener = StartupSafeReplyListener()

    def setup(self):
        super().setup()
        self.timeout = float(nameko.config.get("RPC_TIMEOUT", 10))

    def get_dependency(self, worker_ctx):
        return TimedClient(super().get_dependency(worker_ctx), self.target_service, self.timeout)


class TimedClient:
    def __init__(self, client, service_name, timeout):
        self._client = client
        self._service_name = service_name
        self._timeout = timeout

    def within(self, seconds):
        """The same client with another deadline (e.g. a short one for health checks)."""
        return TimedClient(self._client, self._service_name, seconds)

    def __getattr__(self, method_name):
        method = getattr(self._client, method_name)

        def call(*args, **kwargs):
            return call_with_deadline(method, self._service_name, self._timeout, *args, **kwargs)

        call.__name__ = method_name
        return call


def call_with_deadline(method, service_name, timeout, *args, **kwargs):
    deadline = errors.ServiceTimeout(f"The {service_name} service did not answer in time",
                                     {"service": service_name})
    try:
        with eventlet.Timeout(timeout, deadline):
            return method.call_async(*args, **kwargs).result()
    except UnknownService:
        raise errors.ServiceUnavailable(f"The {service_name} service is not running",
                                        {"service": service_name}) from None
    except (OperationalError, ConnectionError) as error:
        raise errors.ServiceUnavailable("The message broker is unreachable",
                                        {"service": service_name}) from error

"""The provider of local runs without credentials: the message goes to the log, nowhere else."""
import logging
import uuid

log = logging.getLogger(__name__)


class ConsoleProvider:
    def __init__(self, channel):
        self.channel = channel

    def __repr__(self):
        return "the console"

    def send(self, message):
        message_id = f"console-{uuid.uuid4().hex}"
        if self.channel == "email":
            log.info("email %s to %s: %s\n%s", message_id, message.to, message.subject, message.text)
        else:
            log.info("sms %s to %s: %s", message_id, message.to, message.body)
        return message_id

"""Celery's filesystem transport (the embedded broker) with messages that appear in the queue folder whole.

kombu's filesystem channel creates a message file and then writes it. A worker polling the folder can move and read
the file in between: it finds an empty payload, the JSON error is unrecoverable and the worker exits, and the message
is gone. Here a message is written under a name no queue matches, then renamed into place, which is atomic within a
folder, so a reader sees either no file or the whole message.
"""

from __future__ import annotations

import os
import uuid
from time import monotonic

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps

PARTIAL_SUFFIX = ".part"  # "<ms>_<uuid>.<queue>.msg.part" never matches a queue's "<queue>.msg"


class Channel(filesystem.Channel):
    def _put(self, queue, payload, **kwargs):
        """Put ``payload`` onto ``queue``: written in full under a partial name, then renamed into the queue."""
        name = os.path.join(self.data_folder_out, f"{int(round(monotonic() * 1000))}_{uuid.uuid4()}.{queue}.msg")
        try:
            with open(name + PARTIAL_SUFFIX, "wb") as partial:
                partial.write(str_to_bytes(dumps(payload)))
            os.replace(name + PARTIAL_SUFFIX, name)
        except OSError as exc:
            raise ChannelError(f"Cannot add file {name!r} to directory") from exc


class Transport(filesystem.Transport):
    Channel = Channel


TRANSPORT = f"{__name__}:Transport"

"""nameko's @timer with its interval read from config when the service starts, so tests
and deployments can change it (the stock decorator fixes it at import time)."""
import nameko
from nameko.timer import Timer

from common.config import section


class ConfiguredTimer(Timer):
    def __init__(self, config_section, key, default, **kwargs):
        super().__init__(interval=default, **kwargs)
        self.config_section = config_section
        self.key = key

    def setup(self):
        self.interval = float(section(nameko.config, self.config_section).get(self.key, self.interval))
        super().setup()


configured_timer = ConfiguredTimer.decorator

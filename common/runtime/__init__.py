"""nameko extensions: the dependencies, entrypoints and transports services are
built from (README.md says what each replaces and why). Domain code never imports it."""
